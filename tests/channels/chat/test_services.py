"""Chat services and HTTP endpoints in-process (SQLite and PostgreSQL): routing rules, presence,
business hours, mail after the chat ends, transcript, uploads, the widget bundle."""

from __future__ import annotations

import gzip
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from channels.chat.lifecycle import end_chat, request_transcript, start_chat
from channels.chat.lines import agent_message, uploads_for
from channels.chat.models import ChatSession, ChatStatus
from channels.chat.payloads import queue_position
from channels.chat.routing import accept, agents_online, decline, transfer
from channels.chat.settings import chat_settings, configure_chat_channel, is_open
from channels.chat.tokens import new_visitor, read_token
from helpdesk.models import Agent, AgentConnection, AgentRole, DeliveryStatus, PresenceStatus
from helpdesk.services import outbox, presence
from helpdesk.services.agents import create_agent, create_team
from helpdesk.services.errors import ServiceError
from helpdesk.services.events import EventRecorder
from helpdesk.services.presence import agent_connected, agent_disconnected, set_presence
from tests.conftest import PASSWORD


def _agent(session: Session, name: str, *, online: bool = True, sid: str | None = None) -> Agent:
    agent = create_agent(session, f"{name.lower()}@example.com", name, PASSWORD, AgentRole.AGENT)
    agent_connected(session, agent, sid or f"sid-{name}")
    if online:
        set_presence(session, agent, "online")
    session.commit()
    return agent


def _start(session: Session, text: str = "hello", **kwargs: object) -> ChatSession:
    visitor, _token = new_visitor()
    started = start_chat(
        session, visitor_id=visitor, text=text, client_id=uuid.uuid4().hex,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    session.commit()
    return started


def test_fewest_live_chats_then_round_robin(session: Session) -> None:
    ann, ben = _agent(session, "Ann"), _agent(session, "Ben")
    owners = [_start(session, f"q{i}").agent_id for i in range(4)]
    assert owners[0] != owners[1] and owners[2] != owners[3]
    assert sorted(owners) == sorted([ann.id, ben.id, ann.id, ben.id])


def test_capacity_queue_and_dispatch_when_a_chat_ends(session: Session) -> None:
    configure_chat_channel(session, capacity=1)
    ann = _agent(session, "Ann")
    first = _start(session, "first")
    second = _start(session, "second")
    third = _start(session, "third")
    assert first.status is ChatStatus.OFFERED and first.agent_id == ann.id
    assert (second.status, queue_position(session, second)) == (ChatStatus.WAITING, 1)
    assert queue_position(session, third) == 2
    end_chat(session, first, ann)
    session.commit()
    assert second.status is ChatStatus.OFFERED and second.agent_id == ann.id
    assert queue_position(session, third) == 1


def test_away_disconnected_and_stale_agents_get_no_chats(session: Session) -> None:
    away = _agent(session, "Away")
    set_presence(session, away, "away")
    gone = _agent(session, "Gone")
    agent_disconnected(session, gone, "sid-Gone")
    stale = _agent(session, "Stale")
    # A server killed outright leaves its rows: they stop counting after the heartbeat TTL.
    session.execute(
        update(AgentConnection)
        .where(AgentConnection.agent_id == stale.id)
        .values(seen_at=datetime.now(UTC) - timedelta(minutes=5))
    )
    session.commit()
    assert presence.effective_presence(session, gone) is PresenceStatus.OFFLINE
    assert presence.effective_presence(session, stale) is PresenceStatus.OFFLINE
    assert presence.effective_presence(session, away) is PresenceStatus.AWAY
    assert not agents_online(session)
    assert _start(session).status is ChatStatus.WAITING


def test_team_routing_decline_and_transfer(session: Session) -> None:
    sales = create_team(session, "Sales")
    ann, ben, cy = _agent(session, "Ann"), _agent(session, "Ben"), _agent(session, "Cy")
    sales.members.extend([ann, ben])
    session.commit()
    c = _start(session, team_id=sales.id)
    assert c.agent_id in (ann.id, ben.id)
    first = session.get(type(ann), c.agent_id)
    assert first is not None
    decline(session, c, first)
    session.commit()
    assert c.agent_id in (ann.id, ben.id) and c.agent_id != first.id
    with_it = session.get(type(ann), c.agent_id)
    assert with_it is not None
    accept(session, c, with_it)
    transfer(session, c, with_it, to_agent=cy)
    session.commit()
    assert (c.status, c.agent_id, c.ticket.assignee_id) == (ChatStatus.OFFERED, cy.id, cy.id)
    try:
        transfer(session, c, cy)
    except ServiceError as exc:
        assert "agent or a team" in str(exc)
    else:
        raise AssertionError("a transfer needs a target")


def test_business_hours(session: Session) -> None:
    hours = {"timezone": "Asia/Dhaka", "weekly": {"mon": ["09:00-17:00"]}}
    configure_chat_channel(session, hours=hours)
    settings = chat_settings(session)
    monday_10_dhaka = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)  # 10:00 in Dhaka (UTC+6)
    assert is_open(settings, monday_10_dhaka)
    assert not is_open(settings, monday_10_dhaka + timedelta(hours=8))
    assert not is_open(settings, monday_10_dhaka + timedelta(days=1))
    try:
        configure_chat_channel(session, hours={"timezone": "Mars/Base", "weekly": {}})
    except ServiceError:
        pass
    else:
        raise AssertionError("a bad timezone is refused")


def test_email_required_setting(session: Session) -> None:
    configure_chat_channel(session, email_required=True)
    visitor, _t = new_visitor()
    try:
        start_chat(session, visitor_id=visitor, text="hi", client_id="abcdefgh1")
    except ServiceError as exc:
        assert "email" in str(exc)
    else:
        raise AssertionError("email is required")


def test_reply_after_the_chat_ended_goes_by_email_and_transcript(
    app: Flask, session: Session, events: EventRecorder
) -> None:
    ann = _agent(session, "Ann")
    c = _start(session, "where is my parcel?", email="rina@example.com", name="Rina")
    accept(session, c, ann)
    live, _dup = agent_message(session, c, ann, text="Checking now", client_id="agent-0001")
    session.commit()
    outbox.drain(app)
    session.expire_all()
    assert live.delivery_status is DeliveryStatus.SENT and live.meta["delivery"]["room"]

    end_chat(session, c, ann)
    session.commit()
    later, _dup = agent_message(
        session, c, ann, text="Found it: it ships today", client_id="agent-0002"
    )
    transcript = request_transcript(session, c)
    session.commit()
    outbox.drain(app)
    session.expire_all()
    assert later.delivery_status is DeliveryStatus.SENT and later.meta["delivery"]["via"] == "email"
    mails = sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    bodies = [m.read_text(errors="replace") for m in mails]
    assert any("Found it: it ships today" in b for b in bodies)
    assert transcript.delivery_status is DeliveryStatus.SENT
    assert any("where is my parcel?" in b and "Checking now" in b for b in bodies)
    # A transcript only ever goes to the customer's own address.
    try:
        request_transcript(session, c, "someone.else@example.com")
    except ServiceError:
        session.rollback()
    else:
        raise AssertionError("transcript to a stranger")


def test_agent_lines_are_idempotent_by_client_id(session: Session) -> None:
    ann = _agent(session, "Ann")
    c = _start(session)
    first, dup1 = agent_message(session, c, ann, text="hi", client_id="same-id-001")
    again, dup2 = agent_message(session, c, ann, text="hi", client_id="same-id-001")
    assert (first.id, dup1, dup2) == (again.id, False, True)
    assert c.status is ChatStatus.ACTIVE  # answering an offered chat accepts it


def test_tokens_cannot_be_forged(app: Flask) -> None:
    with app.app_context():
        visitor, token = new_visitor()
        assert read_token(token) == visitor
        assert read_token(token[:-2] + "xx") is None
        assert read_token({"v": visitor}) is None


def test_widget_bundle_is_small_and_bilingual(client: FlaskClient) -> None:
    response = client.get("/chat/widget.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(response.data).decode()
    assert len(response.data) <= 30 * 1024, len(response.data)
    assert '"bn":{' in body and "Does this answer it?" in body and "HD_IO" in body
    assert "window.io" not in body  # the Socket.IO client stays private to the widget


def test_uploads_have_limits_and_belong_to_their_visitor(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        visitor, token = new_visitor()
        _other, other_token = new_visitor()

    def post(tok: str, name: str, data: bytes, mimetype: str) -> tuple[int, dict[str, object]]:
        r = client.post(
            "/chat/api/upload",
            data={"token": tok, "file": (io.BytesIO(data), name, mimetype)},
            content_type="multipart/form-data",
        )
        return r.status_code, r.get_json()

    status, body = post("nope", "a.png", b"x", "image/png")
    assert (status, body["code"]) == (404, "not_found")
    status, body = post(token, "run.exe", b"MZ", "application/x-msdownload")
    assert status == 400 and "type" in str(body["error"]) and body["code"] == "invalid"
    with app.app_context():
        from helpdesk.extensions import db

        configure_chat_channel(db.session, upload_max_bytes=2048)
        db.session.commit()
    status, body = post(token, "big.png", b"x" * 2049, "image/png")
    assert status == 400 and "2 KB" in str(body["error"]) and body["code"] == "too_large"
    status, body = post(token, "রসিদ.png", b"\x89PNG data", "image/png")
    assert status == 200 and body["filename"] == "রসিদ.png"

    with app.app_context():
        from helpdesk.extensions import db

        try:
            uploads_for(db.session, "someone-else-visitor", [body["id"]])
        except ServiceError:
            pass
        else:
            raise AssertionError("another visitor's upload")
        refs = uploads_for(db.session, visitor, [body["id"]])
        assert refs[0].data == b"\x89PNG data"
    assert other_token != token


def test_offers_move_on_when_the_agent_leaves(session: Session) -> None:
    ann = _agent(session, "Ann")
    c = _start(session)
    assert c.agent_id == ann.id
    ben = _agent(session, "Ben")
    set_presence(session, ann, "away")
    session.commit()
    assert (c.status, c.agent_id) == (ChatStatus.OFFERED, ben.id)
    agent_disconnected(session, ben, "sid-Ben")
    session.commit()
    assert (c.status, c.agent_id) == (ChatStatus.WAITING, None)


def test_portal_pages_show_the_widget(client: FlaskClient) -> None:
    page = client.get("/portal/").get_data(as_text=True)
    assert '/chat/widget.js"' in page
