"""The chat settings page: admins only, CSRF, clear errors that keep what was typed, and every
setting changes what the widget and the server do (seen over the real /chat namespace)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIOTestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from channels.chat.lifecycle import start_chat
from channels.chat.models import ChatSession, ChatStatus
from channels.chat.routing import expire_offers
from channels.chat.settings import chat_settings
from helpdesk.db import utcnow
from helpdesk.extensions import socketio
from helpdesk.models import Agent, AuditEvent
from helpdesk.services.agents import create_team
from helpdesk.services.presence import agent_connected, set_presence
from tests.conftest import AgentClient, bn, login

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture
def admin_client(app: Flask, admin: Agent) -> AgentClient:
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return AgentClient(client)


def _form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "capacity": "3",
        "offer_timeout": "30",
        "away_after_missed": "2",
        "team": "",
        "allowed_origins": "",
        "timezone": "UTC",
        "calendar": "",
        "transcript": "y",
        **{day: "" for day in DAYS},
    }
    for key, value in changes.items():
        if value is None:
            form.pop(key, None)  # an unticked checkbox is simply absent
        else:
            form[key] = value
    return form


def _visitor(app: Flask, origin: str | None = None) -> SocketIOTestClient:
    headers = {"Origin": origin} if origin else None
    return socketio.test_client(app, namespace="/chat", headers=headers, auth={"language": "en"})


def _call(sio: SocketIOTestClient, event: str, data: dict[str, Any]) -> Any:
    return sio.emit(event, data, namespace="/chat", callback=True)


def test_only_admins_see_the_page(
    app: Flask, admin_client: AgentClient, agent_client: AgentClient, client: FlaskClient
) -> None:
    page = admin_client.get("/admin/chat")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Chat settings" in html and 'name="csrf_token"' in html and "Asia/Dhaka" in html
    assert agent_client.get("/admin/chat").status_code == 404
    assert agent_client.post("/admin/chat", _form()).status_code == 404
    assert client.get("/admin/chat").status_code == 302  # to the sign-in page
    assert 'href="/admin/chat"' in admin_client.get("/agent/queue").get_data(as_text=True)


def test_saving_changes_what_the_widget_and_server_do(
    app: Flask, session: Session, admin_client: AgentClient
) -> None:
    team = create_team(session, "Sales")
    session.commit()
    form = _form(
        name_required="y",
        email_required="y",
        transcript=None,
        capacity="5",
        offer_timeout="45",
        away_after_missed="0",
        team=str(team.id),
        allowed_origins="https://shop.example\nhttps://Blog.Example:8443/",
        timezone="Asia/Dhaka",
        mon="09:00-13:00, 14:00-18:00",
        sat="10:00-24:00",
    )
    saved = admin_client.post("/admin/chat", form)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    settings = chat_settings(session)
    assert (settings.name_required, settings.email_required, settings.transcript) == (
        True, True, False
    )  # fmt: skip
    assert (settings.capacity, settings.offer_timeout, settings.away_after_missed) == (5, 45, 0)
    assert settings.team_id == team.id
    assert settings.allowed_origins == ("https://shop.example", "https://blog.example:8443")
    assert settings.hours["timezone"] == "Asia/Dhaka"
    assert settings.hours["weekly"]["mon"] == ["09:00-13:00", "14:00-18:00"]
    assert session.query(AuditEvent).filter_by(action="chat.settings").count() == 1
    # The page shows what was saved, 24:00 as the admin wrote it.
    html = admin_client.get("/admin/chat").get_data(as_text=True)
    assert 'value="10:00-24:00"' in html and "https://blog.example:8443" in html

    # The widget is told: name and email required, no transcript button. (The socket's handlers
    # have their own database session: end this test's transaction first, as a request would.)
    session.rollback()
    sio = _visitor(app, "https://shop.example")
    assert sio.is_connected("/chat")
    hello = _call(sio, "chat.hello", {})
    assert hello["settings"]["name_required"] is True
    assert hello["settings"]["email_required"] is True
    assert hello["settings"]["transcript"] is False
    sio.disconnect("/chat")
    # A site not listed cannot open the widget's socket.
    assert not _visitor(app, "https://evil.example").is_connected("/chat")


def test_business_hours_turn_the_widget_into_the_offline_form(
    app: Flask, session: Session, admin_client: AgentClient
) -> None:
    other_day = DAYS[(utcnow().weekday() + 2) % 7]  # hours in UTC: never today
    closed = admin_client.post("/admin/chat", _form(**{other_day: "00:00-24:00"}))
    assert closed.status_code == 302
    sio = _visitor(app)
    hello = _call(sio, "chat.hello", {})
    assert hello["open"] is False and hello["available"] is False
    refused = _call(sio, "chat.start", {"client_id": uuid.uuid4().hex, "text": "hi"})
    assert refused["ok"] is False and refused["offline"] is True

    # Every day empty again: always open (the widget's offline form now only means "nobody").
    assert admin_client.post("/admin/chat", _form()).status_code == 302
    assert _call(sio, "chat.hello", {})["open"] is True
    sio.disconnect("/chat")


def test_opening_hours_from_a_calendar_close_the_chat_on_its_holidays(
    app: Flask, session: Session, admin: Agent, admin_client: AgentClient
) -> None:
    """The same calendars as teams and SLA policies: a calendar open every day all day, except
    today (a holiday, like Eid), closes the chat today."""
    from helpdesk.services import business_hours

    today = utcnow().astimezone(business_hours.ZoneInfo("UTC")).date()
    calendar = business_hours.create_calendar(
        session,
        admin,
        name="Always but Eid",
        timezone="UTC",
        hours={day: "00:00-24:00" for day in DAYS},
        holidays=[today.isoformat()],
    )
    session.commit()
    page = admin_client.get("/admin/chat")
    assert "Always but Eid" in page.get_data(as_text=True)
    assert admin_client.post("/admin/chat", _form(calendar=str(calendar.id))).status_code == 302
    assert chat_settings(session).calendar_id == calendar.id
    session.commit()  # the visitor's server side writes too (SQLite: one writer)
    sio = _visitor(app)
    assert _call(sio, "chat.hello", {})["open"] is False
    # the admin confirms the holiday was yesterday after all: open again
    business_hours.remove_holiday(session, calendar, admin, today)
    session.commit()
    assert _call(sio, "chat.hello", {})["open"] is True
    session.commit()
    # a calendar that is not there is refused, nothing saved
    assert admin_client.post("/admin/chat", _form(calendar="99999")).status_code == 400
    sio.disconnect("/chat")


def test_name_required_and_transcript_off_are_enforced_by_the_server(
    app: Flask, session: Session, admin_client: AgentClient, agent: Agent
) -> None:
    agent_connected(session, agent, "sid-agent")
    set_presence(session, agent, "online")
    session.commit()
    saved = admin_client.post("/admin/chat", _form(name_required="y", transcript=None))
    assert saved.status_code == 302
    sio = _visitor(app)
    _call(sio, "chat.hello", {})
    start = {"client_id": uuid.uuid4().hex, "text": "hello", "email": "a@example.com"}
    no_name = _call(sio, "chat.start", start)
    assert no_name == {"ok": False, "code": "invalid", "error": "Please enter your name."}
    started = _call(sio, "chat.start", {**start, "name": "Rina"})
    assert started["ok"], started
    transcript = _call(sio, "chat.transcript", {})
    assert transcript == {
        "ok": False, "code": "invalid", "error": "Transcripts by email are turned off."
    }  # fmt: skip
    sio.disconnect("/chat")


def test_offer_timeout_from_the_page_drives_routing(
    app: Flask, session: Session, admin_client: AgentClient, agent: Agent
) -> None:
    assert admin_client.post("/admin/chat", _form(offer_timeout="10")).status_code == 302
    agent_connected(session, agent, "sid-agent")
    set_presence(session, agent, "online")
    session.commit()
    from channels.chat.tokens import new_visitor

    visitor, _token = new_visitor()
    c = start_chat(session, visitor_id=visitor, text="hi", client_id=uuid.uuid4().hex)
    session.commit()
    assert c.status is ChatStatus.OFFERED
    session.execute(
        update(ChatSession)
        .where(ChatSession.id == c.id)
        .values(offered_at=utcnow() - timedelta(seconds=11))
    )
    assert expire_offers(session) == 1
    assert admin_client.post("/admin/chat", _form(offer_timeout="0")).status_code == 302


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mon": "9-5"}, "Monday: write hours like 09:00-17:00"),
        ({"tue": "18:00-09:00"}, "Tuesday: write hours like"),
        ({"allowed_origins": "ftp://files.example"}, "is not a site address"),
        ({"allowed_origins": "https://shop.example/path"}, "is not a site address"),
        ({"offer_timeout": "3"}, "The offer timeout must be 0 (never) or between 5"),
        ({"capacity": "0"}, "Enter a whole number in the allowed range."),
        ({"capacity": "many"}, "Some settings need a fix"),
    ],
)
def test_bad_input_is_refused_clearly_and_kept(
    session: Session, admin_client: AgentClient, changes: dict[str, str], message: str
) -> None:
    response = admin_client.post("/admin/chat", _form(name_required="y", **changes))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html.replace("&#39;", "'")
    typed = next(iter(changes.values()))
    assert typed in html  # what the admin typed is still in the form
    assert chat_settings(session).name_required is False  # nothing was saved


def test_the_form_needs_its_csrf_token(admin_client: AgentClient, session: Session) -> None:
    response = admin_client.client.post("/admin/chat", data=_form(name_required="y"))
    assert response.status_code == 400
    assert chat_settings(session).name_required is False


def test_the_page_in_bengali(app: Flask, session: Session, admin: Agent) -> None:
    admin.language = "bn"
    session.commit()
    client = app.test_client()
    login(client, admin.email)
    response = client.get("/admin/chat")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'lang="bn"' in page
    assert bn("Chat settings") in page and ">Chat settings<" not in page


def test_business_hours_are_in_the_installations_time_zone_until_set(
    app: Flask, admin_client: AgentClient
) -> None:
    """Found on a walk through the tour: on an Asia/Dhaka installation the chat's business
    hours opened in UTC, so 09:00-17:00 meant 15:00-23:00 in Dhaka."""
    app.config["TIMEZONE"] = "Asia/Dhaka"
    html = admin_client.get("/admin/chat").get_data(as_text=True)
    select_box = html[re.search(r'<select[^>]*name="timezone"', html).start() :]  # type: ignore[union-attr]
    select_box = select_box[: select_box.index("</select>")]
    assert (
        'value="Asia/Dhaka" selected' in select_box or 'selected value="Asia/Dhaka"' in select_box
    )
