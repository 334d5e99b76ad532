"""Agents send files in a chat: limits, CSRF, stored on the ticket, a link only the visitor
opens, mailed with the reply once the chat has ended; then live over a real server."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.chat.lifecycle import end_chat, start_chat
from channels.chat.models import ChatSession, ChatStatus
from channels.chat.routing import accept
from channels.chat.settings import configure_chat_channel
from channels.chat.tokens import new_visitor
from helpdesk.models import Agent, Attachment, Direction, Message
from helpdesk.services import outbox
from tests.channels.chat.servers import TIMEOUT, AgentSocket, ChatSite, ServerProcess, Visitor
from tests.conftest import AgentClient

PDF = b"%PDF-1.4 receipt for order 12"


def _chat(session: Session, agent: Agent, email: str | None = None) -> tuple[ChatSession, str]:
    visitor, token = new_visitor()
    started = start_chat(
        session, visitor_id=visitor, text="Can you send the invoice?", client_id=uuid.uuid4().hex,
        email=email,
    )  # fmt: skip
    accept(session, started, agent)
    session.commit()
    return started, token


def _send(
    agent_client: AgentClient | FlaskClient,
    ticket_id: int,
    data: bytes = PDF,
    name: str = "রসিদ.pdf",
    mimetype: str = "application/pdf",
    client_id: str | None = None,
    **extra: Any,
) -> Any:
    form = {
        "file": (io.BytesIO(data), name, mimetype),
        "client_id": uuid.uuid4().hex if client_id is None else client_id,
        **extra,
    }
    return agent_client.post(
        f"/agent/chats/{ticket_id}/files", data=form, content_type="multipart/form-data"
    )


def test_an_agent_sends_a_file_the_visitor_alone_can_open(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient, client: FlaskClient
) -> None:
    c, token = _chat(session, agent)
    client_id = uuid.uuid4().hex
    response = _send(agent_client, c.ticket_id, client_id=client_id, text="Here it is")
    assert response.status_code == 200, response.get_data(as_text=True)
    line = response.get_json()["line"]
    assert (line["from"], line["text"], line["client_id"]) == ("agent", "Here it is", client_id)
    [att] = line["attachments"]
    assert (att["filename"], att["content_type"], att["size"]) == (
        "রসিদ.pdf", "application/pdf", len(PDF)
    )  # fmt: skip

    # Sent twice (a retry after a lost answer): one line, one file.
    again = _send(agent_client, c.ticket_id, client_id=client_id, text="Here it is")
    assert again.get_json()["line"]["id"] == line["id"]
    outbound = session.scalars(
        select(Message).where(
            Message.ticket_id == c.ticket_id, Message.direction == Direction.OUTBOUND
        )
    ).all()
    assert len(outbound) == 1 and [a.filename for a in outbound[0].attachments] == ["রসিদ.pdf"]

    # The visitor's link works with their token only.
    url = f"/chat/api/attachments/{att['id']}"
    with client.get(url, query_string={"token": token}) as got:  # closes the file it streams
        assert got.status_code == 200 and got.data == PDF
    _other, other_token = new_visitor()
    assert client.get(url, query_string={"token": other_token}).status_code == 404
    assert client.get(url).status_code == 404
    # And the agent opens it from the ticket like any attachment.
    with agent_client.get(f"/attachments/{att['id']}/x.pdf") as own:
        assert own.data == PDF


def test_a_file_alone_is_a_line_named_after_it(
    session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    c, _token = _chat(session, agent)
    line = _send(agent_client, c.ticket_id, name="invoice.pdf").get_json()["line"]
    assert line["text"] == "invoice.pdf" and line["attachments"][0]["filename"] == "invoice.pdf"


def test_limits_access_and_csrf(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient, client: FlaskClient
) -> None:
    c, _token = _chat(session, agent)
    bad_type = _send(agent_client, c.ticket_id, b"MZ...", "tool.exe", "application/x-msdownload")
    assert bad_type.status_code == 400
    assert bad_type.get_json()["error"] == "This type of file cannot be sent in the chat."
    configure_chat_channel(session, upload_max_bytes=1024)
    session.commit()
    too_big = _send(agent_client, c.ticket_id, b"x" * 1025, "big.txt", "text/plain")
    assert too_big.status_code == 400 and "1 KB" in too_big.get_json()["error"]
    assert too_big.get_json()["code"] == "too_large"  # machine-readable, as on the sockets
    empty = agent_client.post(f"/agent/chats/{c.ticket_id}/files", data={"client_id": "x" * 12})
    assert empty.status_code == 400 and empty.get_json()["error"] == "Choose a file."
    assert empty.get_json()["code"] == "missing"
    no_id = _send(agent_client, c.ticket_id, client_id="")
    assert no_id.status_code == 400
    missing = _send(agent_client, 999_999)
    assert missing.status_code == 404
    # Nothing was stored by any of these.
    assert not session.scalars(select(Attachment)).all()

    # Without the page's CSRF token the request is refused; signed out it never reaches a chat.
    raw = agent_client.client.post(
        f"/agent/chats/{c.ticket_id}/files",
        data={"file": (io.BytesIO(PDF), "a.pdf", "application/pdf"), "client_id": "y" * 12},
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert raw.status_code == 400
    anonymous = _send(client, c.ticket_id)
    assert anonymous.status_code in (302, 400, 401)
    assert not session.scalars(select(Attachment)).all()


def test_after_the_chat_ended_the_file_goes_out_by_email(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    c, _token = _chat(session, agent, email="rina@example.com")
    end_chat(session, c, agent)
    session.commit()
    response = _send(agent_client, c.ticket_id, name="label.pdf", text="Your return label")
    assert response.status_code == 200
    outbox.drain(app)
    session.expire_all()
    assert c.status is ChatStatus.ENDED
    mails = [p.read_bytes() for p in sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))]
    mail = next(m for m in mails if b"Your return label" in m)
    assert b'filename="label.pdf"' in mail or b"filename=label.pdf" in mail


# ---------------------------------------------------------------------------------------------
# Live: the agent's browser posts the file, the visitor's widget hears the line and opens it.
# ---------------------------------------------------------------------------------------------


def test_live_file_reaches_the_visitor(site: ChatSite, server: ServerProcess) -> None:
    team = site.team()
    agent = site.agent("Pia", team)
    pia = AgentSocket(agent.email)
    pia.connect(server.url)
    visitor = Visitor(language="bn")
    visitor.connect(server.url)
    ticket_id = visitor.start("চালান পাঠাবেন?", team=team.id)["chat"]["ticket_id"]
    pia.events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id)
    assert pia.call("chat.accept", {"ticket_id": ticket_id})["ok"]

    page = pia.http.get(f"{server.url}/agent/queue", timeout=TIMEOUT)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf
    response = pia.http.post(
        f"{server.url}/agent/chats/{ticket_id}/files",
        files={"file": ("চালান.pdf", PDF, "application/pdf")},
        data={"client_id": uuid.uuid4().hex, "text": "এই যে চালান"},
        headers={"X-CSRFToken": csrf.group(1), "Accept": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    line = visitor.events.wait("chat.message", lambda d: d["from"] == "agent")
    assert line["text"] == "এই যে চালান"
    [att] = line["attachments"]
    assert att["filename"] == "চালান.pdf"
    got = requests.get(
        f"{server.url}/chat/api/attachments/{att['id']}",
        params={"token": visitor.token},
        timeout=TIMEOUT,
    )
    assert got.status_code == 200 and got.content == PDF
    stranger = requests.get(f"{server.url}/chat/api/attachments/{att['id']}", timeout=TIMEOUT)
    assert stranger.status_code == 404
    visitor.disconnect()
    pia.disconnect()
