"""The exact view counters stay equal to a real COUNT through every kind of change."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Ticket, TicketStatus
from helpdesk.models.views import TicketCount
from helpdesk.services import bulk, counts, ticket_merge, tickets
from helpdesk.services.agents import create_agent
from helpdesk.services.bulk import BulkChange
from helpdesk.services.queue import VIEWS, QueueFilter, base_query
from helpdesk.services.views import count_view
from tests.conftest import MakeTicket


def scanned(session: Session, view: str, agent: Agent) -> int:
    q = base_query(session, QueueFilter(view=view), agent)
    return int(session.scalar(q.with_only_columns(func.count(), maintain_column_froms=True)) or 0)


def assert_counts_exact(session: Session, agents: list[Agent]) -> None:
    for agent in agents:
        together = counts.builtin_counts(session, agent.id)  # the sidebar's one read
        for view in VIEWS:
            real = scanned(session, view, agent)
            assert count_view(session, QueueFilter(view=view), agent) == real, view
            if view == "breaching":  # moves with the clock: counted, never kept in counters
                assert view not in together
                continue
            assert together[view] == real, view


def test_counters_follow_every_change(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    bea = create_agent(session, "bea@example.com", "Bea", "password123")
    ts = [make_ticket(sender=f"c{i}@example.com", message_id=f"m{i}@x").ticket for i in range(8)]
    assert_counts_exact(session, [agent, bea])
    tickets.assign_ticket(session, ts[0], agent, agent)
    tickets.assign_ticket(session, ts[1], bea, agent)
    tickets.assign_ticket(session, ts[1], agent, agent)  # reassigned
    tickets.set_status(session, ts[2], TicketStatus.PENDING, agent)
    tickets.set_status(session, ts[3], TicketStatus.RESOLVED, agent)
    session.commit()
    assert_counts_exact(session, [agent, bea])
    bulk.bulk_update(
        session,
        [t.id for t in ts[4:8]],
        BulkChange(assignee_id=bea.id, status=TicketStatus.OPEN),
        agent,
    )
    tickets.assign_ticket(session, ts[0], None, agent)  # unassigned again
    ticket_merge.merge_tickets(session, ts[5], ts[6], agent)  # source closes
    session.commit()
    assert_counts_exact(session, [agent, bea])
    make_ticket(sender="c3@example.com", in_reply_to="m3@x")  # customer reopens a resolved one
    second = make_ticket(sender="c7@example.com", in_reply_to="m7@x").message
    ticket_merge.split_message(session, second, agent)
    session.commit()
    assert_counts_exact(session, [agent, bea])


def test_rolled_back_changes_do_not_count(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    t = make_ticket().ticket
    tickets.set_status(session, t, TicketStatus.RESOLVED, agent)
    session.flush()
    session.rollback()
    assert_counts_exact(session, [agent])


def test_recount_repairs_rows_written_around_the_orm(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    make_ticket()
    session.execute(TicketCount.__table__.delete())
    session.commit()
    assert count_view(session, QueueFilter(view="open"), agent) == 0  # broken on purpose
    counts.recount(session)
    session.commit()
    assert_counts_exact(session, [agent])
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1
