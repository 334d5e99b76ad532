"""Collision detection: who is on a ticket page and who is typing (services/ticket_presence.py
and the /agent socket handlers)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, g
from flask_socketio import SocketIOTestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.extensions import socketio
from helpdesk.models import Agent, AgentRole, Ticket, TicketViewer
from helpdesk.services import ticket_presence, tickets
from helpdesk.services.agents import create_agent
from helpdesk.services.events import EventRecorder
from tests.conftest import AgentClient, login

NS = "/agent"


def _presence(events: EventRecorder) -> list[tuple[int, list[str]]]:
    return [
        (e.payload["ticket_id"], [v["name"] for v in e.payload["viewers"]])
        for e in events.events
        if e.name == "ticket.presence"
    ]


# --- the service ---------------------------------------------------------------------------------


def test_join_announces_every_agent_once_after_commit(
    session: Session, ticket: Ticket, agent: Agent, admin: Agent, events: EventRecorder
) -> None:
    ticket_presence.join(session, ticket, agent, "tab-1")
    assert events.events == []  # nothing before the commit
    session.commit()
    assert _presence(events) == [(ticket.id, ["Alex Agent"])]
    assert events.events[0].rooms == (f"ticket:{ticket.id}",)

    ticket_presence.join(session, ticket, admin, "tab-2")
    ticket_presence.join(session, ticket, agent, "tab-3")  # the same agent in a second tab
    session.commit()
    assert _presence(events)[-1] == (ticket.id, ["Ada Admin", "Alex Agent"])
    assert [v["agent_id"] for v in ticket_presence.viewers(session, ticket.id)] == [
        admin.id,
        agent.id,
    ]


def test_leave_and_disconnect(
    session: Session,
    make_ticket: Any,
    agent: Agent,
    admin: Agent,
    events: EventRecorder,
) -> None:
    one, two = make_ticket().ticket, make_ticket().ticket
    ticket_presence.join(session, one, agent, "a1")
    ticket_presence.join(session, two, agent, "a1")
    ticket_presence.join(session, one, admin, "b1")
    session.commit()
    events.events.clear()

    # Closing one of two tabs: still there.
    ticket_presence.join(session, one, admin, "b2")
    session.commit()
    events.events.clear()
    ticket_presence.disconnect(session, "b2")
    session.commit()
    assert _presence(events) == [(one.id, ["Ada Admin", "Alex Agent"])]

    events.events.clear()
    ticket_presence.leave(session, one.id, "b1")
    session.commit()
    assert _presence(events) == [(one.id, ["Alex Agent"])]

    # A closed tab leaves every ticket it showed.
    events.events.clear()
    ticket_presence.disconnect(session, "a1")
    session.commit()
    assert _presence(events) == [(one.id, []), (two.id, [])]

    # Leaving twice (a page unload racing the disconnect) says nothing new.
    events.events.clear()
    ticket_presence.leave(session, one.id, "a1")
    ticket_presence.disconnect(session, "a1")
    session.commit()
    assert events.events == []


def test_a_dead_process_viewers_expire_for_those_still_watching(
    session: Session, ticket: Ticket, agent: Agent, admin: Agent, events: EventRecorder
) -> None:
    ticket_presence.join(session, ticket, agent, "on-a-dead-server")
    ticket_presence.join(session, ticket, admin, "alive")
    session.commit()
    # The other process was killed: no disconnect ran, its heartbeats stopped.
    long_ago = utcnow() - ticket_presence.VIEWER_TTL - timedelta(seconds=1)
    session.execute(
        update(TicketViewer).where(TicketViewer.sid == "on-a-dead-server").values(seen_at=long_ago)
    )
    session.commit()
    assert [v["name"] for v in ticket_presence.viewers(session, ticket.id)] == ["Ada Admin"]
    events.events.clear()

    ticket_presence.heartbeat(session, ticket, admin, "alive")
    session.commit()
    assert _presence(events) == [(ticket.id, ["Ada Admin"])]
    assert session.scalars(select(TicketViewer.sid)).all() == ["alive"]

    # A heartbeat with nothing to sweep is silent.
    events.events.clear()
    ticket_presence.heartbeat(session, ticket, admin, "alive")
    session.commit()
    assert events.events == []


def test_heartbeat_brings_back_an_expired_viewer(
    session: Session, ticket: Ticket, agent: Agent, events: EventRecorder
) -> None:
    ticket_presence.join(session, ticket, agent, "stalled")
    session.commit()
    long_ago = utcnow() - ticket_presence.VIEWER_TTL - timedelta(seconds=1)
    session.execute(update(TicketViewer).values(seen_at=long_ago))
    session.commit()
    events.events.clear()
    ticket_presence.heartbeat(session, ticket, agent, "stalled")
    session.commit()
    assert _presence(events) == [(ticket.id, ["Alex Agent"])]


def test_bengali_names_round_trip(session: Session, ticket: Ticket, events: EventRecorder) -> None:
    nusrat = create_agent(session, "nusrat@example.com", "নুসরাত জাহান", "x" * 12, AgentRole.AGENT)
    session.commit()
    ticket_presence.join(session, ticket, nusrat, "bn-tab")
    session.commit()
    assert _presence(events) == [(ticket.id, ["নুসরাত জাহান"])]


# --- the socket handlers -------------------------------------------------------------------------


class AgentSocket(SocketIOTestClient):
    """A Socket.IO test client whose events start with an empty ``g``.

    The test keeps an app context pushed (to call services) and Flask-SocketIO reuses it for
    each event, so Flask-Login's cached user of one client would answer for the other; in
    production every event gets its own context (tests.conftest.FreshClient does the same).
    """

    def emit(self, event: str, *args: Any, **kwargs: Any) -> Any:
        g.__dict__.clear()
        return super().emit(event, *args, **kwargs)

    def disconnect(self, namespace: str | None = None) -> None:
        g.__dict__.clear()
        super().disconnect(namespace)


def _connect(app: Flask, email: str) -> AgentSocket:
    web = app.test_client()
    assert login(web, email).status_code == 302
    g.__dict__.clear()
    sio = AgentSocket(app, socketio, namespace=NS, flask_test_client=web)
    assert sio.is_connected(NS)
    sio.get_received(NS)
    return sio


def _got(sio: SocketIOTestClient, name: str) -> list[dict[str, Any]]:
    return [e["args"][0] for e in sio.get_received(NS) if e["name"] == name]


def _names(payload: dict[str, Any]) -> list[str]:
    return [v["name"] for v in payload["viewers"]]


@pytest.fixture
def two_agents(app: Flask, agent: Agent, admin: Agent, session: Session) -> Any:
    alex = _connect(app, agent.email)
    ada = _connect(app, admin.email)
    yield alex, ada
    # The handlers have their own database session: end the test's transaction (it may hold
    # SQLite's write lock) before they record the disconnects.
    session.rollback()
    for sio in (alex, ada):
        if sio.is_connected(NS):
            sio.disconnect(NS)


def test_newcomer_gets_a_snapshot_and_the_others_hear_it(
    two_agents: Any, ticket: Ticket, session: Session
) -> None:
    alex, ada = two_agents
    assert alex.emit("join_ticket", {"ticket_id": ticket.id}, namespace=NS, callback=True) == {
        "ok": True
    }
    assert [_names(p) for p in _got(alex, "ticket.presence")] == [["Alex Agent"]]

    assert ada.emit("join_ticket", {"ticket_id": ticket.id}, namespace=NS, callback=True) == {
        "ok": True
    }
    # Ada, arriving second, learns Alex is already here; Alex hears Ada arrive.
    assert [_names(p) for p in _got(ada, "ticket.presence")] == [["Ada Admin", "Alex Agent"]]
    assert [_names(p) for p in _got(alex, "ticket.presence")] == [["Ada Admin", "Alex Agent"]]

    # Leaving the page, then closing the tab without a leave: both are seen by the other.
    assert ada.emit("leave_ticket", {"ticket_id": ticket.id}, namespace=NS, callback=True) == {
        "ok": True
    }
    assert [_names(p) for p in _got(alex, "ticket.presence")] == [["Alex Agent"]]
    ada.emit("join_ticket", {"ticket_id": ticket.id}, namespace=NS, callback=True)
    alex.get_received(NS)
    ada.disconnect(NS)
    assert [_names(p) for p in _got(alex, "ticket.presence")] == [["Alex Agent"]]
    session.expire_all()
    assert [v["name"] for v in ticket_presence.viewers(session, ticket.id)] == ["Alex Agent"]


def test_typing_reaches_the_others_not_the_typist(two_agents: Any, ticket: Ticket) -> None:
    alex, ada = two_agents
    for sio in (alex, ada):
        sio.emit("join_ticket", {"ticket_id": ticket.id}, namespace=NS, callback=True)
        sio.get_received(NS)
    alex.get_received(NS)

    alex.emit(
        "ticket.typing", {"ticket_id": ticket.id, "mode": "reply", "typing": True}, namespace=NS
    )
    assert _got(alex, "ticket.typing") == []
    [typing] = _got(ada, "ticket.typing")
    assert typing == {
        "ticket_id": ticket.id,
        "agent_id": typing["agent_id"],
        "name": "Alex Agent",
        "mode": "reply",
        "typing": True,
    }
    ada.emit(
        "ticket.typing", {"ticket_id": ticket.id, "mode": "note", "typing": True}, namespace=NS
    )
    [note] = _got(alex, "ticket.typing")
    assert (note["name"], note["mode"]) == ("Ada Admin", "note")
    # A mode other than "reply" or "note" is refused (and not relayed); without one it is a
    # reply; stopping is relayed too.
    refused = ada.emit(
        "ticket.typing",
        {"ticket_id": ticket.id, "mode": "<b>", "typing": False},
        namespace=NS,
        callback=True,
    )
    assert (refused["code"], refused["field"]) == ("invalid", "mode")
    assert _got(alex, "ticket.typing") == []
    ada.emit("ticket.typing", {"ticket_id": ticket.id, "typing": False}, namespace=NS)
    [stop] = _got(alex, "ticket.typing")
    assert (stop["mode"], stop["typing"]) == ("reply", False)


def test_only_a_connection_that_joined_may_speak_in_a_ticket_room(
    two_agents: Any, ticket: Ticket, make_ticket: Any
) -> None:
    alex, ada = two_agents
    ada.emit("join_ticket", {"ticket_id": ticket.id}, namespace=NS, callback=True)
    ada.get_received(NS)
    # Alex never opened this ticket: his typing is not relayed into its room.
    alex.emit("ticket.typing", {"ticket_id": ticket.id, "typing": True}, namespace=NS)
    alex.emit("ticket.typing", {"ticket_id": "7; drop", "typing": True}, namespace=NS)
    alex.emit("ticket.typing", ["not", "a", "dict"], namespace=NS)
    assert _got(ada, "ticket.typing") == []
    # A missing ticket is refused like any ticket one may not see, and announces nothing; a
    # payload of another shape never reaches the handler.
    for bad, code in (
        ({"ticket_id": 424242}, "not_found"),
        ({"ticket_id": True}, "invalid"),
        ({"ticket_id": -1}, "invalid"),
        (None, "bad_payload"),
    ):
        for event in ("join_ticket", "ticket.heartbeat"):
            ack = alex.emit(event, bad, namespace=NS, callback=True)
            assert (ack["ok"], ack["code"]) == (False, code), (event, bad, ack)
    assert _got(ada, "ticket.presence") == []
    assert _got(alex, "ticket.presence") == []


def test_heartbeat_keeps_the_viewer(two_agents: Any, ticket: Ticket, session: Session) -> None:
    alex, _ada = two_agents
    alex.emit("join_ticket", {"ticket_id": ticket.id}, namespace=NS, callback=True)
    alex.get_received(NS)
    assert alex.emit("ticket.heartbeat", {"ticket_id": ticket.id}, namespace=NS, callback=True) == {
        "ok": True
    }
    assert _got(alex, "ticket.presence") == []  # nothing changed: nothing said
    session.expire_all()
    assert [v["name"] for v in ticket_presence.viewers(session, ticket.id)] == ["Alex Agent"]


# --- the version check on send -------------------------------------------------------------------


def test_a_stale_send_keeps_text_and_status_and_asks_for_files_again(
    agent_client: AgentClient, session: Session, ticket: Ticket, admin: Agent
) -> None:
    seen = ticket.version
    tickets.reply_to_ticket(session, ticket, admin, "Ada got there first")
    session.commit()
    response = agent_client.post(
        f"/agent/tickets/{ticket.number}/reply",
        {
            "reply-body": "আপনার অর্ডার পাঠানো হয়েছে",
            "reply-status": "pending",
            "reply-version": str(seen),
            "reply-attachments": (io.BytesIO(b"label"), "label.pdf"),
        },
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "আপনার অর্ডার পাঠানো হয়েছে" in page
    assert '<option selected value="pending">' in page
    assert "Attach your files again before sending." in page
    assert "Ada got there first" in page  # the news is on the page being confirmed
    assert "Send anyway" in page
