"""Ticket verbs: numbers, outbox replies, notes, assignment, status, tags, audit, events."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import (
    Agent,
    AuditEvent,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Priority,
    Ticket,
    TicketStatus,
)
from helpdesk.services import tags, tickets
from helpdesk.services.agents import create_agent
from helpdesk.services.conversations import ticket_id_from_message_id
from helpdesk.services.errors import Conflict, ServiceError
from helpdesk.services.events import EventRecorder
from tests.conftest import MakeTicket


def audit_actions(session: Session, ticket: Ticket) -> list[str]:
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.ticket_id == ticket.id)
            .order_by(AuditEvent.id)
        )
    )


def test_ticket_numbers_are_human_and_sequential(make_ticket: MakeTicket) -> None:
    numbers = [make_ticket(sender=f"c{i}@example.com").ticket.number for i in range(3)]
    assert numbers == [1001, 1002, 1003]
    assert make_ticket().ticket.display_number == "#1004"


def test_reply_is_queued_in_the_outbox_with_threading_headers(
    session: Session, make_ticket: MakeTicket, agent: Agent, events: EventRecorder
) -> None:
    received = make_ticket(message_id="first@customer.example", text="My parcel is late")
    t = received.ticket
    events.events.clear()

    reply = tickets.reply_to_ticket(session, t, agent, "Sorry! It ships today.")
    session.commit()

    assert reply.direction == Direction.OUTBOUND
    assert reply.delivery_status == DeliveryStatus.QUEUED
    assert reply.recipients == ["customer@example.com"]
    assert reply.in_reply_to == "first@customer.example"
    assert reply.references == ["first@customer.example"]
    # Our Message-ID names its ticket and is signed.
    assert ticket_id_from_message_id(reply.message_id or "") == t.id
    assert t.status == TicketStatus.OPEN  # new -> open on the first answer
    assert t.first_response_at is not None
    assert t.message_count == 2
    assert audit_actions(session, t)[-2:] == ["ticket.status", "message.reply"]
    assert events.names() == ["ticket.message", "ticket.updated"]
    assert events.events[-1].payload["status"] == "open"
    assert events.events[-1].rooms == ("agents",)


def test_reply_can_set_status_and_rejects_empty_text(
    session: Session, ticket: Ticket, agent: Agent
) -> None:
    tickets.reply_to_ticket(
        session, ticket, agent, "Please send a photo.", status=TicketStatus.PENDING
    )
    assert ticket.status == TicketStatus.PENDING and ticket.active
    with pytest.raises(ServiceError):
        tickets.reply_to_ticket(session, ticket, agent, "   ")


def test_stale_version_is_a_conflict(session: Session, ticket: Ticket, agent: Agent) -> None:
    seen = ticket.version
    tickets.add_note(session, ticket, agent, "Looking into it")
    with pytest.raises(Conflict):
        tickets.reply_to_ticket(session, ticket, agent, "Hello", expected_version=seen)
    tickets.reply_to_ticket(session, ticket, agent, "Hello", expected_version=ticket.version)


def test_note_is_internal_and_never_queued(session: Session, ticket: Ticket, agent: Agent) -> None:
    note = tickets.add_note(session, ticket, agent, "Customer is a VIP")
    session.commit()
    assert note.internal and note.kind == MessageKind.NOTE
    assert note.delivery_status is None


def test_assign_status_priority_tags_are_audited(
    session: Session, ticket: Ticket, agent: Agent, events: EventRecorder
) -> None:
    other = create_agent(session, "b@example.com", "Bea", "password123")
    v0 = ticket.version
    tickets.assign_ticket(session, ticket, other, agent)
    tickets.set_status(session, ticket, "resolved", agent)
    tickets.set_priority(session, ticket, Priority.URGENT, agent)
    tags.set_tags(session, ticket, ["Billing", " refund request ", "billing"], agent)
    session.commit()

    assert ticket.assignee_id == other.id
    assert ticket.status == TicketStatus.RESOLVED and not ticket.active
    assert ticket.resolved_at is not None
    assert ticket.priority == Priority.URGENT
    assert [t.name for t in ticket.tags] == ["billing", "refund-request"]
    assert ticket.version == v0 + 4
    assert audit_actions(session, ticket)[-4:] == [
        "ticket.assignee",
        "ticket.status",
        "ticket.priority",
        "ticket.tags",
    ]
    status_event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "ticket.status")
    ).one()
    assert status_event.data == {"from": "new", "to": "resolved"}
    assert status_event.actor_agent_id == agent.id
    # One transaction, one event per ticket, with the final state.
    [update] = [e for e in events.events if e.name == "ticket.updated"]
    assert update.payload["status"] == "resolved" and update.payload["tags"] == [
        "billing",
        "refund-request",
    ]
    assert update.payload["assignee"] == {"id": other.id, "name": "Bea"}

    # No-op changes write nothing.
    before = len(audit_actions(session, ticket))
    tickets.set_status(session, ticket, "resolved", agent)
    tags.set_tags(session, ticket, ["refund-request", "billing"], agent)
    assert len(audit_actions(session, ticket)) == before


def test_reopening_clears_resolved_at(session: Session, ticket: Ticket, agent: Agent) -> None:
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    tickets.set_status(session, ticket, TicketStatus.OPEN, agent)
    assert ticket.resolved_at is None and ticket.active


def test_bad_values_are_user_errors(session: Session, ticket: Ticket, agent: Agent) -> None:
    with pytest.raises(ServiceError):
        tickets.set_priority(session, ticket, 9, agent)
    with pytest.raises(ServiceError):
        tags.set_tags(session, ticket, ["x" * 65], agent)
    with pytest.raises(ValueError):
        tickets.set_status(session, ticket, "archived", agent)


def test_events_are_not_sent_when_the_transaction_rolls_back(
    session: Session, ticket: Ticket, agent: Agent, events: EventRecorder
) -> None:
    events.events.clear()
    tickets.set_status(session, ticket, TicketStatus.PENDING, agent)
    session.rollback()
    assert events.events == []
    assert session.get(Ticket, ticket.id).status == TicketStatus.NEW  # type: ignore[union-attr]


def test_html_of_messages_is_sanitized(session: Session, make_ticket: MakeTicket) -> None:
    received = make_ticket(
        text="hi",
        html='<p onclick="steal()">Hi<script>alert(1)</script><a href="javascript:x">y</a></p>',
    )
    html = received.message.body_html or ""
    assert "script" not in html and "onclick" not in html and "javascript" not in html
    assert "<p>Hi" in html


def test_data_urls_survive_only_as_raster_image_sources(
    session: Session, make_ticket: MakeTicket
) -> None:
    """A ``data:`` link can carry a whole page (a phishing form, a script in text/html); only an
    image's source may be ``data:``, and only a raster image (an SVG is a document)."""
    page = "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
    pixel = "data:image/png;base64,iVBORw0KGgo="
    html = (
        f'<p><a href="{page}">invoice</a> <a href=" DATA:text/html,x">b</a>'
        f'<img src="{pixel}" alt="logo">'
        '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" alt="svg">'
        '<img src="data:text/html,x" alt="page"></p>'
    )
    stored = make_ticket(text="see the invoice", html=html).message.body_html or ""
    assert "text/html" not in stored and "DATA:" not in stored and "svg+xml" not in stored
    assert f'src="{pixel}"' in stored and ">invoice</a>" in stored


def test_messages_are_listed_in_order(session: Session, ticket: Ticket, agent: Agent) -> None:
    tickets.add_note(session, ticket, agent, "one")
    tickets.reply_to_ticket(session, ticket, agent, "two")
    session.commit()
    bodies = session.scalars(
        select(Message.body_text).where(Message.ticket_id == ticket.id).order_by(Message.id)
    ).all()
    assert bodies[1:] == ["one", "two"]
