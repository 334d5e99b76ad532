"""Merge, split and bulk actions: no message lost or duplicated, full audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import (
    Agent,
    AuditEvent,
    Message,
    MessageKind,
    Priority,
    Ticket,
    TicketStatus,
    ticket_participants,
)
from helpdesk.services import bulk, tags, ticket_merge, tickets
from helpdesk.services.bulk import BulkChange
from helpdesk.services.errors import ServiceError
from helpdesk.services.events import EventRecorder
from tests.conftest import MakeTicket


def message_ids(session: Session, ticket: Ticket) -> list[int]:
    return list(
        session.scalars(
            select(Message.id).where(Message.ticket_id == ticket.id).order_by(Message.id)
        )
    )


def test_merge_moves_everything_and_keeps_a_pointer(
    session: Session, make_ticket: MakeTicket, agent: Agent, events: EventRecorder
) -> None:
    target = make_ticket(
        sender="ana@example.com", subject="Printer broken", message_id="t1@x"
    ).ticket
    source = make_ticket(
        sender="bob@example.com",
        subject="Printer still broken",
        message_id="s1@x",
        cc=["cc@example.com"],
    ).ticket
    tags.set_tags(session, source, ["hardware"], agent)
    tickets.reply_to_ticket(session, source, agent, "Which model?")
    session.commit()
    before = message_ids(session, target) + message_ids(session, source)
    total = session.scalar(select(func.count()).select_from(Message))
    events.events.clear()

    ticket_merge.merge_tickets(session, source, target, agent)
    session.commit()

    moved = message_ids(session, target)
    assert sorted(moved) == sorted(before)  # nothing lost, nothing doubled
    # Only the pointer note was added, on the source.
    assert session.scalar(select(func.count()).select_from(Message)) == total + 1
    [note] = session.scalars(select(Message).where(Message.ticket_id == source.id)).all()
    assert note.kind == MessageKind.SYSTEM and f"#{target.number}" in note.body_text
    assert target.message_count == len(moved) and source.message_count == 1
    assert source.merged_into_id == target.id and source.status == TicketStatus.CLOSED
    assert [t.name for t in target.tags] == ["hardware"]
    participants = set(
        session.scalars(
            select(ticket_participants.c.customer_id).where(
                ticket_participants.c.ticket_id == target.id
            )
        )
    )
    assert source.customer_id in participants and len(participants) == 2  # bob and the Cc
    history = session.scalars(
        select(AuditEvent.action).where(AuditEvent.ticket_id == target.id)
    ).all()
    assert "ticket.merged" in history and "message.reply" in history  # the source's history moved
    assert sorted(e.payload["id"] for e in events.events if e.name == "ticket.updated") == sorted(
        [source.id, target.id]
    )

    # Mail continuing the source thread lands in the target.
    follow_up = make_ticket(sender="bob@example.com", subject="Re: Printer", in_reply_to="s1@x")
    assert follow_up.ticket.id == target.id
    # And so does a portal reply naming the source ticket.
    portal = make_ticket(sender="bob@example.com", channel="portal", ticket_id=source.id)
    assert portal.ticket.id == target.id


@pytest.mark.parametrize("case", ["self", "merged-source", "merged-target"])
def test_merge_refuses_nonsense(
    session: Session, make_ticket: MakeTicket, agent: Agent, case: str
) -> None:
    a = make_ticket(sender="a@example.com").ticket
    b = make_ticket(sender="b@example.com").ticket
    c = make_ticket(sender="c@example.com").ticket
    ticket_merge.merge_tickets(session, b, c, agent)
    with pytest.raises(ServiceError):
        if case == "self":
            ticket_merge.merge_tickets(session, a, a, agent)
        elif case == "merged-source":
            ticket_merge.merge_tickets(session, b, a, agent)
        else:
            ticket_merge.merge_tickets(session, a, b, agent)


def test_split_moves_one_message_to_a_new_ticket(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    t = make_ticket(sender="ana@example.com", subject="Two questions", message_id="m1@x").ticket
    second = make_ticket(
        sender="ana@example.com", in_reply_to="m1@x", text="Also: my invoice?"
    ).message
    session.commit()
    new = ticket_merge.split_message(session, second, agent)
    session.commit()
    assert message_ids(session, new) == [second.id]
    assert second.id not in message_ids(session, t)
    assert new.customer_id == t.customer_id and new.number == t.number + 1
    assert t.message_count == 1 and new.message_count == 1
    with pytest.raises(ServiceError):
        ticket_merge.split_message(session, second, agent)  # now the only message of its ticket
    note = tickets.add_note(session, t, agent, "internal")
    with pytest.raises(ServiceError):
        ticket_merge.split_message(session, note, agent)


def test_bulk_update_applies_each_change_with_audit(
    session: Session, make_ticket: MakeTicket, agent: Agent, events: EventRecorder
) -> None:
    ids = [make_ticket(sender=f"c{i}@example.com").ticket.id for i in range(20)]
    events.events.clear()
    bulk.bulk_update(
        session,
        ids,
        BulkChange(
            assignee_id=agent.id,
            status=TicketStatus.PENDING,
            priority=Priority.HIGH,
            add_tags=("vip",),
        ),
        agent,
    )
    session.commit()
    rows = session.scalars(select(Ticket).where(Ticket.id.in_(ids))).all()
    assert {(t.assignee_id, t.status, t.priority) for t in rows} == {
        (agent.id, TicketStatus.PENDING, Priority.HIGH)
    }
    assert all([x.name for x in t.tags] == ["vip"] for t in rows)
    audits = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.ticket_id.in_(ids))
    )
    assert audits == 20 * (1 + 4)  # created + four changes each
    assert sorted(e.payload["id"] for e in events.events if e.name == "ticket.updated") == sorted(
        ids
    )
    with pytest.raises(ServiceError):
        bulk.bulk_update(session, [], BulkChange(status=TicketStatus.OPEN), agent)
    with pytest.raises(ServiceError):
        bulk.bulk_update(session, [ids[0], 999999], BulkChange(status=TicketStatus.OPEN), agent)
