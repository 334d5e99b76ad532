"""Live chat on the agents' namespace ``/agent``: the client -> server chat events.

``chat.accept``, ``chat.decline``, ``chat.transfer``, ``chat.end``, ``chat.send``, ``chat.read``
and ``chat.history`` are each acknowledged with ``{"ok": bool, ...}`` after the commit;
``chat.typing`` has no acknowledgement and stores nothing. Payloads: docs/chat-protocol.md; each
handler declares its own (``@accepts``), checked before it runs (``helpdesk.socket_payloads``).
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
from helpdesk.socket_payloads import Bool, Id, Int, accepts

TICKET = Id(required=True)


def _chat(agent: Agent, data: dict[str, Any]) -> ChatSession:
    return lifecycle.agent_chat(db.session, agent, data["ticket_id"])


@accepts(ticket_id=TICKET)
def on_accept(data: dict[str, Any]) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        routing.accept(db.session, chat, agent)
        join_room(f"ticket:{chat.ticket_id}")
        return {"ok": True, "chat": payloads.chat_summary(chat)}

    return realtime.agent_call(run, data)


@accepts(ticket_id=TICKET)
def on_decline(data: dict[str, Any]) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        routing.decline(db.session, _chat(agent, data), agent)
        return {"ok": True}

    return realtime.agent_call(run, data)


@accepts(ticket_id=TICKET, agent_id=Id(), team_id=Id())
def on_transfer(data: dict[str, Any]) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        to_agent = to_team = None
        if data["agent_id"] is not None:
            to_agent = db.session.get(Agent, data["agent_id"])
            if to_agent is None:
                raise ServiceError(_("Choose another agent."))
        if data["team_id"] is not None:
            to_team = db.session.get(Team, data["team_id"])
            if to_team is None:
                raise ServiceError(_("Choose an agent or a team."))
        routing.transfer(db.session, chat, agent, to_agent=to_agent, to_team=to_team)
        return {"ok": True, "chat": payloads.chat_summary(chat)}

    return realtime.agent_call(run, data)


@accepts(ticket_id=TICKET)
def on_end(data: dict[str, Any]) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        lifecycle.end_chat(db.session, chat, agent)
        return {"ok": True, "chat": payloads.chat_summary(chat)}

    return realtime.agent_call(run, data)


@accepts(ticket_id=TICKET, client_id=lines.CLIENT_ID, text=lines.LINE_TEXT)
def on_send(data: dict[str, Any]) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        message, _dup = lines.agent_message(
            db.session, chat, agent, text=data["text"], client_id=data["client_id"]
        )
        join_room(f"ticket:{chat.ticket_id}")
        db.session.flush()
        return {"ok": True, "line": payloads.chat_line(message)}

    return realtime.agent_call(run, data)


@accepts(ticket_id=TICKET, typing=Bool(required=True))
def on_typing(data: dict[str, Any]) -> None:
    with read_only_transactions():  # loading the agent must not take SQLite's write lock
        agent = realtime.current_agent()
    if agent is None:
        return
    ticket_id = data["ticket_id"]
    # Ephemeral: nothing stored. The visitor's room is only reachable for an existing chat.
    socketio.emit(
        "chat.typing",
        {"ticket_id": ticket_id, "from": "agent", "name": agent.name, "typing": data["typing"]},
        to=f"chat:{ticket_id}",
        namespace=payloads.CHAT_NAMESPACE,
    )  # fmt: skip


@accepts(ticket_id=TICKET, read=Int())
def on_read(data: dict[str, Any]) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        lifecycle.mark(db.session, _chat(agent, data), by="agent", read=data["read"])
        return {"ok": True}

    return realtime.agent_call(run, data)


@accepts(ticket_id=TICKET, after=Int())
def on_history(data: dict[str, Any]) -> dict[str, Any]:
    def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
        chat = _chat(agent, data)
        after = data["after"] or 0
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
