"""Live chat on the agents' namespace ``/agent``: the client -> server chat events.

``chat.accept``, ``chat.decline``, ``chat.transfer``, ``chat.end``, ``chat.send``, ``chat.read``
and ``chat.history`` are each acknowledged with ``{"ok": bool, ...}`` after the commit;
``chat.typing`` has no acknowledgement and stores nothing. Payloads: docs/chat-protocol.md.
The server -> client events (``chat.offer``, ``chat.updated``, ``chat.message``, ...) are sent
on commit by the services. :func:`register` attaches the handlers to the namespace
(``helpdesk.realtime.register_agent_event``; called by ``channels.registry.register_chat``).
"""

from __future__ import annotations

from typing import Any

from flask_socketio import join_room

from channels.chat import lifecycle, lines, payloads, routing
from channels.chat.models import ChatSession
from helpdesk import realtime
from helpdesk.db import read_only_transactions
from helpdesk.extensions import db, socketio
from helpdesk.i18n import _
from helpdesk.models import Agent, Team
from helpdesk.services.errors import ServiceError


def _chat(agent: Agent, data: dict[str, Any]) -> ChatSession:
    return lifecycle.agent_chat(db.session, agent, data.get("ticket_id"))


def on_accept(data: Any) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        routing.accept(db.session, chat, agent)
        join_room(f"ticket:{chat.ticket_id}")
        return {"ok": True, "chat": payloads.chat_summary(chat)}

    return realtime.agent_call(run, data)


def on_decline(data: Any) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        routing.decline(db.session, _chat(agent, data), agent)
        return {"ok": True}

    return realtime.agent_call(run, data)


def on_transfer(data: Any) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        to_agent = to_team = None
        if isinstance(data.get("agent_id"), int):
            to_agent = db.session.get(Agent, data["agent_id"])
            if to_agent is None:
                raise ServiceError(_("Choose another agent."))
        if isinstance(data.get("team_id"), int):
            to_team = db.session.get(Team, data["team_id"])
            if to_team is None:
                raise ServiceError(_("Choose an agent or a team."))
        routing.transfer(db.session, chat, agent, to_agent=to_agent, to_team=to_team)
        return {"ok": True, "chat": payloads.chat_summary(chat)}

    return realtime.agent_call(run, data)


def on_end(data: Any) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        lifecycle.end_chat(db.session, chat, agent)
        return {"ok": True, "chat": payloads.chat_summary(chat)}

    return realtime.agent_call(run, data)


def on_send(data: Any) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        text = data["text"] if isinstance(data.get("text"), str) else ""
        client_id = data["client_id"] if isinstance(data.get("client_id"), str) else ""
        message, _dup = lines.agent_message(db.session, chat, agent, text=text, client_id=client_id)
        join_room(f"ticket:{chat.ticket_id}")
        db.session.flush()
        return {"ok": True, "line": payloads.chat_line(message)}

    return realtime.agent_call(run, data)


def on_typing(data: Any) -> None:
    with read_only_transactions():  # loading the agent must not take SQLite's write lock
        agent = realtime.current_agent()
    ticket_id = data.get("ticket_id") if isinstance(data, dict) else None
    if (
        agent is None
        or not isinstance(ticket_id, int)
        or isinstance(ticket_id, bool)
        or ticket_id <= 0
    ):
        return
    # Ephemeral: nothing stored. The visitor's room is only reachable for an existing chat.
    socketio.emit(
        "chat.typing",
        {"ticket_id": ticket_id, "from": "agent", "name": agent.name,
         "typing": bool(data.get("typing"))},
        to=f"chat:{ticket_id}",
        namespace=payloads.CHAT_NAMESPACE,
    )  # fmt: skip


def on_read(data: Any) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        read = data.get("read") if isinstance(data.get("read"), int) else None
        lifecycle.mark(db.session, _chat(agent, data), by="agent", read=read)
        return {"ok": True}

    return realtime.agent_call(run, data)


def on_history(data: Any) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        after = data["after"] if isinstance(data.get("after"), int) else 0
        join_room(f"ticket:{chat.ticket_id}")
        history = lines.history(db.session, chat, after)
        return {
            "ok": True,
            "chat": {**payloads.chat_summary(chat), "visitor_read_id": chat.visitor_read_id},
            "messages": [payloads.chat_line(m) for m in history],
        }

    return realtime.agent_call(run, data)


HANDLERS = {
    "chat.accept": on_accept,
    "chat.decline": on_decline,
    "chat.transfer": on_transfer,
    "chat.end": on_end,
    "chat.send": on_send,
    "chat.typing": on_typing,
    "chat.read": on_read,
    "chat.history": on_history,
}


def register() -> None:
    for name, handler in HANDLERS.items():
        realtime.register_agent_event(name, handler)
