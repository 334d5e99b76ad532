"""The agents' Socket.IO namespace: who may connect, and what they hear after a commit."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.extensions import socketio
from helpdesk.models import Agent, Ticket
from helpdesk.services import tickets
from tests.conftest import AgentClient, MakeTicket


def test_anonymous_socket_is_refused(app: Flask) -> None:
    client = socketio.test_client(app, namespace="/agent")
    assert not client.is_connected("/agent")


def test_agent_hears_new_and_changed_tickets_after_commit(
    app: Flask, agent_client: AgentClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    sio = socketio.test_client(app, namespace="/agent", flask_test_client=agent_client.client)
    assert sio.is_connected("/agent")

    t = make_ticket(subject="Live one", commit=False).ticket
    assert sio.get_received("/agent") == []  # nothing before the commit
    session.commit()
    got = sio.get_received("/agent")
    assert [(e["name"], e["args"][0]["subject"]) for e in got] == [("ticket.created", "Live one")]

    tickets.set_status(session, t, "pending", agent)
    session.commit()
    [event] = sio.get_received("/agent")
    assert event["name"] == "ticket.updated" and event["args"][0]["status"] == "pending"
    sio.disconnect("/agent")


def test_ticket_room_gets_message_events(
    app: Flask, agent_client: AgentClient, session: Session, ticket: Ticket, agent: Agent
) -> None:
    sio = socketio.test_client(app, namespace="/agent", flask_test_client=agent_client.client)
    assert sio.emit("join_ticket", {"ticket_id": ticket.id}, namespace="/agent", callback=True) == {
        "ok": True
    }
    bad = sio.emit("join_ticket", {"ticket_id": "1; drop"}, namespace="/agent", callback=True)
    assert (bad["ok"], bad["code"], bad["field"]) == (False, "invalid", "ticket_id")
    missing = sio.emit("join_ticket", {"ticket_id": 424242}, namespace="/agent", callback=True)
    assert (missing["ok"], missing["code"]) == (False, "not_found")
    sio.get_received("/agent")
    tickets.add_note(session, ticket, agent, "psst")
    session.commit()
    names = [e["name"] for e in sio.get_received("/agent")]
    assert names == ["ticket.message", "ticket.updated"]
    sio.disconnect("/agent")


def test_channels_add_events_to_the_agents_namespace(
    app: Flask, agent_client: AgentClient, agent: Agent
) -> None:
    """``register_agent_event``: a channel's handler runs like a method of the namespace (the
    agent's session, the acknowledgement); the namespace's own events cannot be replaced."""
    from helpdesk import realtime
    from helpdesk.socket_payloads import Int, accepts

    seen: list[object] = []

    @accepts(n=Int())
    def echo(data: object) -> dict[str, object]:
        current = realtime.current_agent()
        seen.append(data)
        return {"ok": True, "agent": current.name if current else None}

    realtime.register_agent_event("test.echo", echo)
    try:
        sio = socketio.test_client(app, namespace="/agent", flask_test_client=agent_client.client)
        ack = sio.emit("test.echo", {"n": 1}, namespace="/agent", callback=True)
        assert ack == {"ok": True, "agent": agent.name}
        assert seen == [{"n": 1}]
        # The payload is checked against the declared shape before the handler runs.
        bad = sio.emit("test.echo", {"n": "1"}, namespace="/agent", callback=True)
        assert (bad["ok"], bad["code"], bad["field"]) == (False, "invalid", "n")
        assert seen == [{"n": 1}]
        # An event nobody registered is answered as such.
        unknown = sio.emit("test.nothing", {}, namespace="/agent", callback=True)
        assert (unknown["ok"], unknown["code"]) == (False, "unknown_event")
        sio.disconnect("/agent")
    finally:
        realtime._agent_events.pop("on_test_echo", None)

    with pytest.raises(ValueError):
        realtime.register_agent_event("join_ticket", echo)
    with pytest.raises(ValueError):  # a handler must declare its payload
        realtime.register_agent_event("test.shapeless", lambda data: {"ok": True})
