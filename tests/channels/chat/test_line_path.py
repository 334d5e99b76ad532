"""A visitor's chat line as the ``chat.message`` handler runs it, in a fresh session per line
(SQLite and PostgreSQL): what agents are told, what is stored and found, and that a line whose
transaction fails leaves nothing behind and is stored once when the widget sends it again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from channels.chat.lifecycle import start_chat, visitor_chat
from channels.chat.lines import visitor_message
from channels.chat.models import ChatStatus
from channels.chat.payloads import chat_line
from channels.chat.routing import accept
from channels.chat.tokens import new_visitor
from helpdesk.extensions import db
from helpdesk.models import Agent, AuditEvent, Message, Ticket
from helpdesk.services import tags
from helpdesk.services.events import EventRecorder
from helpdesk.services.presence import agent_connected, set_presence
from helpdesk.services.search import SearchFilter, search_tickets


def _accepted_chat(session: Session, agent: Agent) -> tuple[str, int]:
    agent_connected(session, agent, "sid-line")
    set_presence(session, agent, "online")
    visitor, _token = new_visitor()
    started = start_chat(
        session, visitor_id=visitor, text="Hello there", client_id=uuid.uuid4().hex
    )
    accept(session, started, agent)
    session.commit()
    assert started.status is ChatStatus.ACTIVE
    return visitor, started.ticket_id


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _line(app: Flask, visitor: str, ticket_id: int, text: str, client_id: str) -> dict[str, Any]:
    """``on_chat_message`` without the socket: its own session (app context), one commit."""
    with app.app_context():
        s = db.session
        found = visitor_chat(s, visitor, ticket_id)
        received = visitor_message(s, found, text=text, client_id=client_id)
        line = chat_line(received.message)
        s.commit()
        return line


def test_a_line_tells_agents_the_whole_ticket_and_is_stored_and_found(
    app: Flask, session: Session, agent: Agent, events: EventRecorder
) -> None:
    visitor, ticket_id = _accepted_chat(session, agent)
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None
    tags.set_tags(session, ticket, ["billing", "Refund"], agent)
    session.commit()
    before = (ticket.message_count, ticket.version)
    session.rollback()  # the line runs in a session of its own (SQLite: one writer)
    events.events.clear()

    with statements(app) as sql:
        line = _line(app, visitor, ticket_id, "My parcel never arrived", "line-0001-abcdef")
    # The chat, the duplicate check, the message, the ticket's count, the audit entry, the
    # summary's assignee and tags, the index append, the event id and the event row (and BEGIN
    # on SQLite).
    assert len([s for s in sql if not s.startswith("BEGIN")]) <= 9, sql

    assert line["text"] == "My parcel never arrived" and line["from"] == "visitor"
    assert [e.name for e in events.events] == [
        "ticket.message", "chat.message", "chat.message", "ticket.updated"
    ]  # fmt: skip
    update = events.events[-1].payload
    assert update["assignee"] == {"id": agent.id, "name": agent.name}
    assert update["tags"] == ["billing", "refund"]
    assert (update["message_count"], update["version"]) == (before[0] + 1, before[1] + 1)

    session.expire_all()
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None
    assert (ticket.message_count, ticket.version) == (before[0] + 1, before[1] + 1)
    assert ticket.last_message_at == ticket.updated_at
    message = session.get(Message, line["id"])
    assert message is not None and message.body_html == "<p>My parcel never arrived</p>"
    assert message.meta == {"client_id": "line-0001-abcdef"}
    received = session.scalars(
        select(AuditEvent).where(AuditEvent.ticket_id == ticket_id).order_by(AuditEvent.id)
    ).all()[-1]
    assert (received.action, received.data) == ("message.received", {"message_id": line["id"]})
    assert received.created_at is not None
    hits = search_tickets(session, "parcel", SearchFilter()).hits
    assert [h.ticket.id for h in hits] == [ticket_id]


def test_a_failed_line_leaves_nothing_and_is_stored_once_when_sent_again(
    app: Flask, session: Session, agent: Agent, events: EventRecorder
) -> None:
    visitor, ticket_id = _accepted_chat(session, agent)
    count = session.scalar(select(Ticket.message_count).where(Ticket.id == ticket_id))
    session.rollback()  # the lines below run in sessions of their own (SQLite: one writer)
    events.events.clear()

    # The handler rolls back when anything fails before the commit.
    with app.app_context():
        s = db.session
        found = visitor_chat(s, visitor, ticket_id)
        visitor_message(s, found, text="kettle broken", client_id="line-0002-abcdef")
        s.rollback()
    assert events.events == []
    session.expire_all()
    assert session.scalar(select(Ticket.message_count).where(Ticket.id == ticket_id)) == count
    assert search_tickets(session, "kettle", SearchFilter()).hits == []
    session.rollback()

    first = _line(app, visitor, ticket_id, "kettle broken", "line-0002-abcdef")
    again = _line(app, visitor, ticket_id, "kettle broken", "line-0002-abcdef")
    assert first["id"] == again["id"]
    session.expire_all()
    stored = session.scalar(
        select(func.count()).select_from(Message).where(Message.body_text == "kettle broken")
    )
    assert stored == 1
    assert session.scalar(select(Ticket.message_count).where(Ticket.id == ticket_id)) == count + 1
    assert [h.ticket.id for h in search_tickets(session, "kettle", SearchFilter()).hits] == [
        ticket_id
    ]


def test_a_line_undone_with_its_savepoint_is_gone_and_the_session_goes_on(
    session: Session, agent: Agent, events: EventRecorder
) -> None:
    # The mail path stores each mail of a failed batch in a savepoint of its own and carries on
    # in the same session after one fails; a line written at once must be undone like any row.
    visitor, ticket_id = _accepted_chat(session, agent)
    found = visitor_chat(session, visitor, ticket_id)
    count, version = found.ticket.message_count, found.ticket.version
    with session.begin_nested() as nested:
        undone = visitor_message(session, found, text="lima oscar", client_id="line-0003-abc")
        nested.rollback()
    # The ticket is back to what it was, not left with the undone line's count and version
    # (a later flush of the ticket would write them).
    assert (found.ticket.message_count, found.ticket.version) == (count, version)
    kept = visitor_message(session, found, text="papa quebec", client_id="line-0004-abc")
    session.commit()
    assert undone.message not in session
    session.expire_all()
    lines = session.scalars(
        select(Message.body_text).where(Message.ticket_id == ticket_id).order_by(Message.id)
    ).all()
    assert lines[-1] == "papa quebec" and "lima oscar" not in lines
    assert kept.message.body_text == "papa quebec"
    assert session.get(Ticket, ticket_id).message_count == count + 1  # type: ignore[union-attr]
    assert search_tickets(session, "oscar", SearchFilter()).hits == []
    assert [h.ticket.id for h in search_tickets(session, "quebec", SearchFilter()).hits] == [
        ticket_id
    ]
