"""Merge, split and bulk changes from the agent UI."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Message, Ticket, TicketStatus
from tests.conftest import AgentClient, MakeTicket


def test_merge_from_the_ticket_page(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    a = make_ticket(sender="a@example.com", subject="first").ticket
    b = make_ticket(sender="a@example.com", subject="duplicate").ticket
    response = agent_client.post(f"/agent/tickets/{b.number}/merge", {"target": f"#{a.number}"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/{a.number}")
    page = agent_client.get(f"/agent/tickets/{a.number}").get_data(as_text=True)
    assert "was merged into" in page and "duplicate" in page
    session.expire_all()
    assert session.get(Ticket, b.id).merged_into_id == a.id  # type: ignore[union-attr]
    bad = agent_client.post(f"/agent/tickets/{a.number}/merge", {"target": "abc"})
    assert bad.status_code == 400 and "Enter a ticket number" in bad.get_data(as_text=True)
    assert (
        agent_client.post(f"/agent/tickets/{a.number}/merge", {"target": "99999"}).status_code
        == 404
    )


def test_split_from_the_ticket_page(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    t = make_ticket(message_id="m1@x").ticket
    second = make_ticket(in_reply_to="m1@x", text="A separate question").message
    page = agent_client.get(f"/agent/tickets/{t.number}").get_data(as_text=True)
    assert f"/agent/messages/{second.id}/split" in page
    response = agent_client.post(f"/agent/messages/{second.id}/split")
    assert response.status_code == 302
    session.expire_all()
    moved = session.get(Message, second.id)
    assert moved is not None and moved.ticket_id != t.id


def test_bulk_assign_and_status_from_the_queue(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    ids = [make_ticket(sender=f"c{i}@example.com").ticket.id for i in range(20)]
    queue = agent_client.get("/agent/queue").get_data(as_text=True)
    assert 'id="bulk-form"' in queue and f'name="ticket" value="{ids[0]}"' in queue
    response = agent_client.post(
        "/agent/bulk",
        {
            "ticket": [str(i) for i in ids],
            "assignee": "me",
            "status": "pending",
            "next": "/agent/queue?view=all",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/agent/queue?view=all"
    session.expire_all()
    rows = session.scalars(select(Ticket).where(Ticket.id.in_(ids))).all()
    assert {(t.assignee_id, t.status) for t in rows} == {(agent.id, TicketStatus.PENDING)}
    assert "20 tickets updated." in agent_client.get("/agent/queue?view=all").get_data(as_text=True)


def test_bulk_merge_and_empty_selection(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    target = make_ticket(sender="a@example.com").ticket
    others = [make_ticket(sender=f"o{i}@example.com").ticket.id for i in range(3)]
    agent_client.post(
        "/agent/bulk",
        {"ticket": [str(i) for i in others], "action": "merge", "target": str(target.number)},
    )
    session.expire_all()
    assert {session.get(Ticket, i).merged_into_id for i in others} == {target.id}  # type: ignore[union-attr]
    agent_client.post("/agent/bulk", {"status": "open"})
    assert "Select at least one ticket." in agent_client.get("/agent/queue").get_data(as_text=True)
