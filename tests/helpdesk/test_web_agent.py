"""The queue and the ticket page as an agent uses them."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import (
    Agent,
    Attachment,
    DeliveryStatus,
    Message,
    MessageKind,
    Ticket,
    TicketStatus,
)
from helpdesk.services import tickets
from tests.conftest import AgentClient, MakeTicket


def test_queue_lists_open_tickets_with_customer_and_channel(
    agent_client: AgentClient, make_ticket: MakeTicket
) -> None:
    make_ticket(
        sender="sarah@example.com", sender_name="Sarah Jones", subject="Invoice charged twice"
    )
    make_ticket(
        sender="karim@example.com", sender_name="করিম", subject="ডেলিভারি কবে?", channel="portal"
    )
    page = agent_client.get("/agent/queue").get_data(as_text=True)
    assert "Invoice charged twice" in page and "Sarah Jones" in page
    assert "ডেলিভারি কবে?" in page and "করিম" in page
    assert "#1001" in page and "#1002" in page
    assert page.index("#1002") < page.index("#1001")  # most recently updated first


def test_queue_filters_and_bad_input(agent_client: AgentClient, make_ticket: MakeTicket) -> None:
    make_ticket(subject="by mail")
    make_ticket(subject="by chat", channel="chat", sender="visitor-1")
    page = agent_client.get("/agent/queue?view=all&channel=chat").get_data(as_text=True)
    assert "by chat" in page and "by mail" not in page
    bad = agent_client.get("/agent/queue?view=all&status=bogus")
    assert bad.status_code == 400 and "Invalid filter" in bad.get_data(as_text=True)
    assert agent_client.get("/agent/queue?after=%%%").status_code == 400


def test_queue_pages_with_a_cursor(
    agent_client: AgentClient, make_ticket: MakeTicket, app: object
) -> None:
    app.config["QUEUE_PAGE_SIZE"] = 2  # type: ignore[attr-defined]
    for i in range(5):
        make_ticket(subject=f"ticket-{i}", sender=f"c{i}@example.com")
    seen: list[str] = []
    url = "/agent/queue?view=all"
    while url:
        page = agent_client.get(url).get_data(as_text=True)
        seen += re.findall(r">(ticket-\d)</a>", page)
        m = re.search(r'rel="next" href="([^"]+)"', page)
        url = m.group(1).replace("&amp;", "&") if m else ""
    assert seen == [f"ticket-{i}" for i in (4, 3, 2, 1, 0)]


def test_ticket_page_shows_the_conversation(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    t = make_ticket(
        text="My parcel is late", html="<p>My parcel is <b>late</b><script>x()</script></p>"
    ).ticket
    tickets.add_note(session, t, agent, "Check the courier")
    session.commit()
    page = agent_client.get(f"/agent/tickets/{t.number}").get_data(as_text=True)
    assert "My parcel is <b>late</b>" in page
    assert "<script>x()" not in page
    assert "Check the courier" in page and "Internal note" in page
    assert "opened the ticket via Email" in page  # history


def test_reply_from_the_ticket_page(
    agent_client: AgentClient, session: Session, ticket: Ticket
) -> None:
    response = agent_client.post(
        f"/agent/tickets/{ticket.number}/reply",
        {
            "reply-body": "We are on it!",
            "reply-status": "pending",
            "reply-version": str(ticket.version),
            "reply-attachments": (io.BytesIO(b"id,total\n1,20\n"), "order.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    session.expire_all()
    reply = session.scalars(select(Message).where(Message.direction == "outbound")).one()
    assert reply.body_text == "We are on it!"
    assert reply.delivery_status == DeliveryStatus.QUEUED
    assert [a.filename for a in reply.attachments] == ["order.csv"]
    assert session.get(Ticket, ticket.id).status == TicketStatus.PENDING  # type: ignore[union-attr]
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "We are on it!" in page and "Queued" in page and "order.csv" in page


def test_stale_reply_is_stopped_and_the_text_kept(
    agent_client: AgentClient, session: Session, ticket: Ticket, agent: Agent
) -> None:
    seen_version = ticket.version
    tickets.reply_to_ticket(session, ticket, agent, "Colleague answered first")
    session.commit()
    response = agent_client.post(
        f"/agent/tickets/{ticket.number}/reply",
        {"reply-body": "My long careful answer", "reply-version": str(seen_version)},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "My long careful answer" in page  # nothing typed is lost
    assert "Another reply arrived while you were writing" in page
    # "Send anyway" resends with the version the agent has now seen, not the stale one.
    reviewed = re.search(r'name="reply-version" type="hidden" value="(\d+)"', page)
    assert reviewed and int(reviewed.group(1)) > seen_version
    resend = {"reply-body": "My long careful answer", "confirm_conflict": "1"}
    stale = agent_client.post(
        f"/agent/tickets/{ticket.number}/reply", {**resend, "reply-version": str(seen_version)}
    )
    assert stale.status_code == 409  # confirming is not a blanket pass for later changes
    confirmed = agent_client.post(
        f"/agent/tickets/{ticket.number}/reply", {**resend, "reply-version": reviewed.group(1)}
    )
    assert confirmed.status_code == 302


def test_empty_reply_is_a_clear_error(agent_client: AgentClient, ticket: Ticket) -> None:
    response = agent_client.post(f"/agent/tickets/{ticket.number}/reply", {"reply-body": ""})
    assert response.status_code == 400
    assert "Write a reply before sending." in response.get_data(as_text=True)


def test_properties_from_the_ticket_page(
    agent_client: AgentClient, session: Session, ticket: Ticket, agent: Agent
) -> None:
    n = ticket.number
    agent_client.post(f"/agent/tickets/{n}/assign", {"assign-assignee": "me"})
    agent_client.post(f"/agent/tickets/{n}/status", {"status-status": "resolved"})
    agent_client.post(f"/agent/tickets/{n}/priority", {"priority-priority": "3"})
    agent_client.post(f"/agent/tickets/{n}/tags", {"tags-tags": "billing, VIP"})
    agent_client.post(f"/agent/tickets/{n}/note", {"note-body": "called the customer"})
    session.expire_all()
    t = session.get(Ticket, ticket.id)
    assert t is not None
    assert t.assignee_id == agent.id and t.status == TicketStatus.RESOLVED and t.priority == 3
    assert [x.name for x in t.tags] == ["billing", "vip"]
    note = session.scalars(select(Message).where(Message.kind == MessageKind.NOTE)).one()
    assert note.internal and note.body_text == "called the customer"
    assert (
        agent_client.post(f"/agent/tickets/{n}/status", {"status-status": "lost"}).status_code
        == 400
    )
    assert (
        agent_client.post(f"/agent/tickets/{n}/assign", {"assign-assignee": "999"}).status_code
        == 400
    )


def test_unknown_ticket_is_404(agent_client: AgentClient) -> None:
    assert agent_client.get("/agent/tickets/99999").status_code == 404
    assert agent_client.get("/api/ui/tickets/99999").status_code == 404


def test_bengali_interface(agent_client: AgentClient, ticket: Ticket) -> None:
    agent_client.post("/language", {"lang": "bn", "next": "/agent/queue"})
    page = agent_client.get("/agent/queue").get_data(as_text=True)
    assert '<html lang="bn">' in page
    assert "সব খোলা" in page  # "All open"
    assert "নতুন" in page  # status "New"
    ticket_page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "উত্তর পাঠান" in ticket_page  # "Send reply"


def test_api_lists_and_shows_tickets(agent_client: AgentClient, make_ticket: MakeTicket) -> None:
    make_ticket(subject="first")
    make_ticket(subject="second", sender="x@example.com")
    data = agent_client.get("/api/ui/tickets?view=all&limit=1").get_json()
    assert [t["subject"] for t in data["tickets"]] == ["second"]
    more = agent_client.get(f"/api/ui/tickets?view=all&limit=1&after={data['next']}").get_json()
    assert [t["subject"] for t in more["tickets"]] == ["first"]
    one = agent_client.get("/api/ui/tickets/1001").get_json()
    assert one["customer_email"] == "customer@example.com" and len(one["messages"]) == 1
    bad = agent_client.get("/api/ui/tickets?status=nope")
    assert bad.status_code == 400 and "error" in bad.get_json()


def test_attachments_are_served_only_to_who_may_see_them(
    agent_client: AgentClient, client: FlaskClient, session: Session, make_ticket: MakeTicket
) -> None:
    from helpdesk.inbound import InboundAttachment

    make_ticket(
        attachments=[InboundAttachment("evil.html", "text/html", b"<script>alert(1)</script>")]
    )
    att = session.scalars(select(Attachment)).one()
    url = f"/attachments/{att.id}/evil.html"
    assert client.get(url).status_code == 404  # anonymous: not found, not "forbidden"
    response = agent_client.get(url)
    assert response.status_code == 200
    # Never rendered as HTML in our origin.
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.get_data() == b"<script>alert(1)</script>"
    response.close()
