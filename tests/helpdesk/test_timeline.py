"""One customer timeline (helpdesk/services/timeline.py, the customer and organization pages):
every source in one order, pages without gaps or repeats, filters, the organization's customers
together, agents only, Bengali dates, and the statements a page costs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from channels.chat.lifecycle import start_chat
from channels.chat.models import ChatSession
from channels.portal import magic
from helpdesk.extensions import db
from helpdesk.models import Agent, AuditEvent, Message, TicketStatus
from helpdesk.services import organizations, tasks, tickets, timeline
from tests.conftest import AgentClient, MakeTicket, bn

T0 = datetime(2024, 3, 10, 9, 0, tzinfo=UTC)


def _at(session: Session, model: Any, row_id: int, when: datetime) -> None:
    """Move a row in time (as an import of old history would have stored it)."""
    session.execute(update(model).where(model.id == row_id).values(created_at=when))


def _history(session: Session, make_ticket: MakeTicket, agent: Agent) -> dict[str, Any]:
    """A customer who wrote by mail, got a reply and a note, had the ticket solved, chatted
    from the pricing page, and has a task: each at a known time."""
    mail = make_ticket("rina@example.com", subject="Invoice", text="Where is my invoice?").ticket
    first = session.scalars(select(Message).where(Message.ticket_id == mail.id)).one()
    reply = tickets.reply_to_ticket(session, mail, agent, "Attached, sorry for the wait.")
    note = tickets.add_note(session, mail, agent, "She pays yearly.")
    tickets.set_status(session, mail, TicketStatus.RESOLVED, agent)
    session.flush()
    status = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "ticket.status", AuditEvent.ticket_id == mail.id
        )
    ).all()
    assert [(e.data["from"], e.data["to"]) for e in status] == [
        ("new", "open"),
        ("open", "resolved"),
    ]
    chat = start_chat(
        session,
        visitor_id="v-rina",
        text="Is the yearly plan cheaper?",
        client_id="client-0001-rina",
        email="rina@example.com",
        page_url="https://shop.example/pricing",
    )
    session.flush()
    customer = mail.customer
    assert chat.customer_id == customer.id
    line = session.scalars(select(Message).where(Message.ticket_id == chat.ticket_id)).one()
    task = tasks.create_task(
        session,
        agent,
        title="Call Rina back",
        due_at=T0 + timedelta(days=30),
        assignee=agent,
        customer=customer,
    )
    session.flush()
    _at(session, Message, first.id, T0)
    _at(session, Message, reply.id, T0 + timedelta(hours=1))
    _at(session, Message, note.id, T0 + timedelta(hours=2))
    # The reply opened the ticket: at the same time as the reply (status sorts before message).
    _at(session, AuditEvent, status[0].id, T0 + timedelta(hours=1))
    _at(session, AuditEvent, status[1].id, T0 + timedelta(hours=3))
    _at(session, ChatSession, chat.id, T0 + timedelta(days=1))
    _at(session, Message, line.id, T0 + timedelta(days=1, seconds=1))
    _at(session, type(task), task.id, T0 + timedelta(days=2))
    session.commit()
    return {"customer": customer, "mail": mail, "chat": chat, "task": task}


def _keys(page: timeline.Page) -> list[tuple[str, str]]:
    return [(e.kind, e.source) for e in page.entries]


def test_every_source_in_one_order(session: Session, make_ticket: MakeTicket, agent: Agent) -> None:
    h = _history(session, make_ticket, agent)
    page = timeline.customer_timeline(session, h["customer"].id)
    assert _keys(page) == [
        ("task", "task_due"),  # due in a month: still open
        ("task", "task_created"),
        ("message", "message"),  # the chat's first line, a second after it began
        ("chat", "chat"),
        ("status", "status"),
        ("note", "message"),
        ("status", "status"),  # opened by the reply, at the same time
        ("message", "message"),  # the agent's reply
        ("message", "message"),  # the first mail
    ]
    chat = page.entries[3]
    assert chat.data["page_url"] == "https://shop.example/pricing" and chat.channel == "chat"
    status = page.entries[4]
    assert status.data["from"] == "open" and status.data["to"] == "resolved"
    assert status.data["actor"] == {"type": "agent", "name": agent.name}
    assert status.ticket is not None and status.ticket.number == h["mail"].number
    reply, first = page.entries[7], page.entries[8]
    assert reply.data["direction"] == "outbound" and reply.data["author"]["name"] == agent.name
    assert reply.data["recipients"] == ["rina@example.com"]
    assert first.data["preview"] == "Where is my invoice?" and first.channel == "email"
    # A customer without a name is their address, as everywhere.
    assert first.data["author"] == {"type": "customer", "name": "rina@example.com"}
    assert (
        page.entries[5].data["preview"] == "She pays yearly." and page.entries[5].channel == "email"
    )
    assert page.next is None
    # A done task shows when it was done, and is no longer due.
    tasks.complete_task(session, h["task"], agent)
    session.commit()
    done = timeline.customer_timeline(session, h["customer"].id, kind="task")
    assert [e.data["event"] for e in done.entries] == ["done", "created"]


def test_filters_by_channel_and_kind(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    h = _history(session, make_ticket, agent)
    cid = h["customer"].id
    chat_only = timeline.customer_timeline(session, cid, channel="chat")
    assert _keys(chat_only) == [("message", "message"), ("chat", "chat")]
    mail_only = timeline.customer_timeline(session, cid, channel="email")
    assert [e.kind for e in mail_only.entries] == ["status", "note", "status", "message", "message"]
    notes = timeline.customer_timeline(session, cid, kind="note")
    assert [e.data["preview"] for e in notes.entries] == ["She pays yearly."]
    chats = timeline.customer_timeline(session, cid, kind="chat")
    assert [e.id for e in chats.entries] == [h["chat"].id]
    messages = timeline.customer_timeline(session, cid, kind="message", channel="email")
    assert [e.data["direction"] for e in messages.entries] == ["outbound", "inbound"]
    status = timeline.customer_timeline(session, cid, kind="status", channel="chat")
    assert status.entries == []


def test_pages_have_no_gaps_or_repeats_across_equal_times(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    made = [make_ticket("same@example.com", text=f"Mail {i}").ticket for i in range(4)]
    for t in made:
        tickets.add_note(session, t, agent, f"Note on {t.number}")
        tickets.set_status(session, t, TicketStatus.PENDING, agent)
    session.flush()
    customer_id = made[0].customer_id
    ids = [t.id for t in made]
    # Everything at the same instant: the order falls back on (source, id).
    session.execute(update(Message).where(Message.ticket_id.in_(ids)).values(created_at=T0))
    session.execute(update(AuditEvent).where(AuditEvent.ticket_id.in_(ids)).values(created_at=T0))
    session.commit()
    everything = timeline.customer_timeline(session, customer_id, limit=100).entries
    assert len(everything) == 4 * 3
    seen: list[tuple[str, int]] = []
    before = None
    pages = 0
    while True:
        page = timeline.customer_timeline(session, customer_id, limit=5, before=before)
        seen.extend((e.source, e.id) for e in page.entries)
        pages += 1
        if page.next is None:
            break
        # The cursor goes through its text form, as the "Older" link carries it.
        before = timeline.decode_cursor(timeline.encode_cursor(page.next))
    assert pages == 3
    assert seen == [(e.source, e.id) for e in everything]
    assert len(set(seen)) == len(seen)
    # The same cursor written at another offset (as a client may) is the same place.
    first = timeline.customer_timeline(session, customer_id, limit=5)
    assert first.next is not None
    dhaka = timeline.Cursor(
        first.next.at.astimezone(ZoneInfo("Asia/Dhaka")), first.next.source, first.next.id
    )
    again = timeline.decode_cursor(timeline.encode_cursor(dhaka))
    second = timeline.customer_timeline(session, customer_id, limit=5, before=again)
    assert [(e.source, e.id) for e in second.entries] == seen[5:10]


def test_organization_timeline_covers_all_its_customers(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    org = organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    a = make_ticket("ana@acme.example", text="From Ana").ticket
    b = make_ticket("bo@acme.example", text="From Bo").ticket
    make_ticket("someone@else.example", text="Not Acme")
    tasks.create_task(
        session, agent, title="Renewal call", due_at=T0, assignee=agent, organization=org
    )
    session.commit()
    assert a.customer.organization_id == org.id == b.customer.organization_id
    page = timeline.organization_timeline(session, org.id, kind="message")
    assert sorted(e.data["preview"] for e in page.entries) == ["From Ana", "From Bo"]
    task_page = timeline.organization_timeline(session, org.id, kind="task")
    assert {e.data["title"] for e in task_page.entries} == {"Renewal call"}


def test_a_bad_cursor_is_refused() -> None:
    for text in ["", "xyz", timeline.encode_cursor(timeline.Cursor(T0, "message", 1))[:-3]]:
        try:
            timeline.decode_cursor(text)
        except timeline.InvalidCursor:
            continue
        raise AssertionError(text)
    forged = timeline.Cursor(T0, "nonsense", 1)
    try:
        timeline.decode_cursor(timeline.encode_cursor(forged))
    except timeline.InvalidCursor:
        pass
    else:
        raise AssertionError("unknown source accepted")


# --- the pages -----------------------------------------------------------------------------------


def _entries(html: str) -> list[str]:
    return re.findall(r'data-kind="(\w+)"', html)


def test_customer_page_shows_the_timeline_and_pages_with_filters(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    h = _history(session, make_ticket, agent)
    url = f"/agent/customers/{h['customer'].id}"
    html = agent_client.get(url).get_data(as_text=True)
    assert "Timeline" in html
    assert _entries(html) == [
        "task",
        "task",
        "message",
        "chat",
        "status",
        "note",
        "status",
        "message",
        "message",
    ]
    assert 'href="https://shop.example/pricing"' in html
    assert "changed status from Open to Resolved" in html
    assert "She pays yearly." in html and "Sunday, March 10, 2024" in html
    assert f'href="/agent/tickets/{h["mail"].number}"' in html
    # Filter chips keep each other; the email chip shows the email channel's entries only.
    email = agent_client.get(f"{url}?tl_channel=email").get_data(as_text=True)
    assert _entries(email) == ["status", "note", "status", "message", "message"]
    assert "tl_channel=email&amp;tl_kind=note" in email
    # Paging: "Older" keeps the filter, and the pages together are the whole filtered timeline.
    session.execute(update(Message).where(Message.ticket_id == h["mail"].id).values(created_at=T0))
    session.commit()
    for _ in range(30):
        tickets.add_note(session, h["mail"], agent, "Another note")
    session.commit()
    first = agent_client.get(f"{url}?tl_kind=note").get_data(as_text=True)
    assert _entries(first) == ["note"] * 25
    older = re.search(r'class="timeline-older" rel="next" href="([^"]+)"', first)
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert "tl_kind=note" in link and "tl_before=" in link
    second = agent_client.get(link).get_data(as_text=True)
    assert _entries(second) == ["note"] * 6 and "timeline-older" not in second
    # A cursor someone typed is the first page, not an error.
    assert agent_client.get(f"{url}?tl_before=nonsense").status_code == 200


def test_a_page_url_links_only_when_it_is_http(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    chat = start_chat(
        session,
        visitor_id="v-mallory",
        text="Hi",
        client_id="client-0001-mallory",
        page_url="javascript:alert(document.cookie)",
    )
    session.commit()
    html = agent_client.get(f"/agent/customers/{chat.customer_id}").get_data(as_text=True)
    assert "javascript:alert(document.cookie)" in html  # shown as text
    assert 'href="javascript:' not in html


def test_organization_page_shows_its_customers_timeline(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    org = organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    make_ticket("ana@acme.example", text="Ana asks")
    make_ticket("bo@acme.example", text="Bo asks")
    html = agent_client.get(f"/agent/organizations/{org.id}").get_data(as_text=True)
    section = html[html.index('id="timeline"') :]
    assert "Ana asks" in section and "Bo asks" in section


def test_a_customer_sees_nothing_of_it(
    app: Flask, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    """The customer herself, signed in on the portal (magic link), reaches neither page nor
    the API's timeline: the notes on it are for agents."""
    h = _history(session, make_ticket, agent)
    customer = h["customer"]
    org = organizations.create_organization(session, "Rina's shop")
    session.commit()
    client = app.test_client()
    _row, secret = magic.issue(session, customer, "signin")
    session.commit()
    path = f"/portal/m/{secret}"
    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    assert client.post(path, data={"csrf_token": token.group(1)}).status_code == 302
    assert client.get("/portal/tickets").status_code == 200  # signed in as the customer
    for url in [
        f"/agent/customers/{customer.id}",
        f"/agent/customers/{customer.id}?tl_kind=note",
        f"/agent/organizations/{org.id}",
        f"/api/v1/customers/{customer.id}/timeline",
    ]:
        answer = client.get(url)
        assert answer.status_code in (302, 401, 403, 404), url
        assert "She pays yearly." not in answer.get_data(as_text=True), url


def test_bengali_page_with_bengali_dates(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    h = _history(session, make_ticket, agent)
    agent.language = "bn"
    session.commit()
    html = agent_client.get(f"/agent/customers/{h['customer'].id}").get_data(as_text=True)
    assert bn("Timeline") in html and bn("Chats") in html
    assert bn("Chat started") in html
    # 10 March 2024 in Bengali: রবিবার, ১০ মার্চ, ২০২৪
    assert "১০ মার্চ, ২০২৪" in html and "রবিবার" in html


def test_days_are_the_agents_days(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    """21:30 UTC on 10 March is 03:30 on 11 March in Dhaka: the entry is under the 11th."""
    made = make_ticket("late@example.com", text="Late at night").ticket
    session.execute(
        update(Message)
        .where(Message.ticket_id == made.id)
        .values(created_at=datetime(2024, 3, 10, 21, 30, tzinfo=UTC))
    )
    agent.timezone = "Asia/Dhaka"
    session.commit()
    html = agent_client.get(f"/agent/customers/{made.customer_id}").get_data(as_text=True)
    section = html[html.index('id="timeline"') :]
    assert "Monday, March 11, 2024" in section and "March 10" not in section
    assert re.search(r"3:30\W*AM", section)  # CLDR puts a narrow no-break space before AM


def _selects(app: Flask, call: Any) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", before)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return seen


def test_first_page_statements_are_bounded(
    agent_client: AgentClient, app: Flask, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    h = _history(session, make_ticket, agent)
    customer_id = h["customer"].id
    url = f"/agent/customers/{customer_id}"
    # One query per source: messages, status changes, chats, tasks created / due / done,
    # satisfaction ratings.
    service = _selects(app, lambda: timeline.customer_timeline(db.session, customer_id))
    assert len(service) == 7
    page = len(_selects(app, lambda: agent_client.get(url)))
    for i in range(30):
        t = make_ticket("rina@example.com", text=f"More {i}").ticket
        tickets.add_note(session, t, agent, "noted")
        tickets.set_status(session, t, TicketStatus.OPEN, agent)
    session.commit()
    assert len(_selects(app, lambda: agent_client.get(url))) == page
    assert len(_selects(app, lambda: timeline.customer_timeline(db.session, customer_id))) == 7
