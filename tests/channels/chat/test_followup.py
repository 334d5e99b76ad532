"""After the chat: a reply written later on the ticket page goes out by email, and "email me the
transcript" from the widget's socket mails the whole conversation (in Bengali too)."""

from __future__ import annotations

import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.chat.lifecycle import end_chat, find_chat, start_chat
from channels.chat.lines import agent_message
from channels.chat.routing import accept
from channels.chat.tokens import new_visitor
from helpdesk.extensions import socketio
from helpdesk.models import Agent, DeliveryStatus, Message
from helpdesk.services import outbox
from helpdesk.services.presence import agent_connected, set_presence
from tests.conftest import AgentClient


def _mails(app: Flask) -> list[EmailMessage]:
    out = Path(app.config["MAIL_OUTBOX_DIR"])
    return [
        message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted(out.glob("*.eml"))
    ]


def _text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_a_later_reply_from_the_ticket_page_goes_by_email(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    visitor, _token = new_visitor()
    c = start_chat(
        session, visitor_id=visitor, text="মোড়ক ছেঁড়া ছিল", client_id=uuid.uuid4().hex,
        email="mita@example.com", name="মিতা",
    )  # fmt: skip
    accept(session, c, agent)
    end_chat(session, c, agent)
    session.commit()

    response = agent_client.post(
        f"/agent/tickets/{c.ticket.number}/reply",
        {"reply-body": "নতুন মোড়ক পাঠানো হয়েছে।", "reply-version": str(c.ticket.version)},
    )
    assert response.status_code == 302
    outbox.drain(app)
    [mail] = [m for m in _mails(app) if "নতুন মোড়ক" in _text(m)]
    assert "mita@example.com" in str(mail["To"])
    session.expire_all()
    lines = session.scalars(select(Message).where(Message.ticket_id == c.ticket_id))
    sent = [m for m in lines if m.body_text == "নতুন মোড়ক পাঠানো হয়েছে।"]
    assert sent[0].delivery_status is DeliveryStatus.SENT
    assert sent[0].meta["delivery"]["via"] == "email"


def test_email_me_the_transcript_over_the_socket(
    app: Flask, session: Session, agent: Agent
) -> None:
    agent_connected(session, agent, "sid-agent")
    set_presence(session, agent, "online")
    session.commit()
    sio = socketio.test_client(app, namespace="/chat", auth={"language": "bn"})
    hello = sio.emit("chat.hello", {}, namespace="/chat", callback=True)
    assert hello["ok"] and hello["settings"]["transcript"] is True
    started = sio.emit(
        "chat.start",
        {"client_id": uuid.uuid4().hex, "text": "আমার অর্ডার কোথায়?", "email": "rina@example.com"},
        namespace="/chat",
        callback=True,
    )
    assert started["ok"], started
    c = find_chat(session, started["chat"]["ticket_id"])
    assert c is not None
    agent_message(session, c, agent, text="আজই পাঠানো হবে।", client_id=uuid.uuid4().hex)
    session.commit()

    # Only to the address the chat began with.
    stranger = sio.emit(
        "chat.transcript", {"email": "thief@example.com"}, namespace="/chat", callback=True
    )
    assert stranger["ok"] is False and stranger["error"]
    assert sio.emit("chat.transcript", {}, namespace="/chat", callback=True) == {"ok": True}
    outbox.drain(app)
    [mail] = [m for m in _mails(app) if "আমার অর্ডার কোথায়?" in _text(m)]
    body = _text(mail)
    assert "আমার অর্ডার কোথায়?" in body and "আজই পাঠানো হবে।" in body
    assert "rina@example.com" in str(mail["To"])
    sio.disconnect("/chat")
