"""The agents' Socket.IO namespace ``/agent``: live queue and ticket pages.

Rooms: ``agents`` (every connected agent: queue updates), ``agent:<id>`` (one agent's
notifications), ``team:<id>`` (a team's agents), ``ticket:<id>`` (everyone on a ticket page).

Server -> client events (payloads in docs/architecture.md#events):
``ticket.created`` / ``ticket.updated`` (room ``agents``; ticket summary),
``ticket.message`` (room ``ticket:<id>``; {ticket_id, message_id, direction, kind, internal}),
``message.delivery`` (room ``ticket:<id>``; {ticket_id, message_id, status, error, event}).
Client -> server: ``join_ticket`` {ticket_id} and ``leave_ticket`` {ticket_id}; both answer
with an acknowledgement ``{"ok": bool}``.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import Namespace, join_room, leave_room

from helpdesk.extensions import db, socketio
from helpdesk.models import Agent, Ticket
from helpdesk.services.events import Event, add_publisher

NAMESPACE = "/agent"


def _agent() -> Agent | None:
    user = current_user._get_current_object() if current_user else None
    if isinstance(user, Agent) and user.is_active:
        return user
    return None


def _ticket_id(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    value = data.get("ticket_id")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class AgentNamespace(Namespace):
    def on_connect(self, auth: Any = None) -> None:
        agent = _agent()
        if agent is None:
            # Refuses the connection; the client sees a connect_error.
            raise ConnectionRefusedError("unauthorized")
        join_room("agents")
        join_room(f"agent:{agent.id}")
        for team in agent.teams:
            join_room(f"team:{team.id}")

    def on_join_ticket(self, data: Any) -> dict[str, bool]:
        # Every handler re-checks the session: an agent deactivated mid-session loses access.
        if _agent() is None:
            return {"ok": False}
        ticket_id = _ticket_id(data)
        if ticket_id is None or db.session.get(Ticket, ticket_id) is None:
            return {"ok": False}
        join_room(f"ticket:{ticket_id}")
        return {"ok": True}

    def on_leave_ticket(self, data: Any) -> dict[str, bool]:
        ticket_id = _ticket_id(data)
        if ticket_id is None:
            return {"ok": False}
        leave_room(f"ticket:{ticket_id}", sid=request.sid)  # type: ignore[attr-defined]
        return {"ok": True}


def _emit(event: Event) -> None:
    socketio.emit(event.name, event.payload, to=list(event.rooms), namespace=event.namespace)


def init_app() -> None:
    socketio.on_namespace(AgentNamespace(NAMESPACE))
    add_publisher(_emit)
