"""What the sockets hear about a chat: the payloads both namespaces send, and the announcements
(sent on commit) of a chat's state, the waiting line and a new line of conversation.

Names and payloads are the contract in docs/chat-protocol.md: ``chat.state``, ``chat.queue``
and ``chat.message`` on ``/chat`` (room ``chat:<ticket id>``); ``chat.updated`` and
``chat.message`` on ``/agent``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.chat.models import ChatSession, ChatStatus
from helpdesk.models import Direction, Message, MessageKind
from helpdesk.services import events

CHAT_NAMESPACE = "/chat"


def queue_position(session: Session, chat: ChatSession) -> int | None:
    if chat.status is not ChatStatus.WAITING:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(ChatSession)
        .where(
            ChatSession.status == ChatStatus.WAITING,
            (ChatSession.created_at < chat.created_at)
            | ((ChatSession.created_at == chat.created_at) & (ChatSession.id < chat.id)),
        )
    )
    return int(ahead or 0) + 1


def chat_state(session: Session, chat: ChatSession) -> dict[str, Any]:
    """Payload of ``chat.state`` (/chat): ``{ticket_id, number, status, agent: {name} | null,
    position: int | null, visitor_read_id, agent_read_id}``."""
    return {
        "ticket_id": chat.ticket_id,
        "number": chat.ticket.number,
        "status": chat.status.value,
        "agent": {"name": chat.agent.name} if chat.agent and chat.status is ChatStatus.ACTIVE
        else None,
        "position": queue_position(session, chat),
        "agent_read_id": chat.agent_read_id,
    }  # fmt: skip


def chat_summary(chat: ChatSession) -> dict[str, Any]:
    """Payload of ``chat.updated`` (/agent, room ``agents``)."""
    return {
        "ticket_id": chat.ticket_id,
        "number": chat.ticket.number,
        "status": chat.status.value,
        "agent_id": chat.agent_id,
        "team_id": chat.team_id,
    }


def announce_chat(session: Session, chat: ChatSession) -> None:
    session.flush()
    events.send_event_on_commit(
        session, "chat.updated", chat_summary(chat), rooms=["agents", f"ticket:{chat.ticket_id}"]
    )
    events.send_event_on_commit(
        session,
        "chat.state",
        chat_state(session, chat),
        rooms=[f"chat:{chat.ticket_id}"],
        namespace=CHAT_NAMESPACE,
    )


def announce_queue(session: Session) -> None:
    """Everyone still waiting hears their new place in line."""
    waiting = session.scalars(
        select(ChatSession)
        .where(ChatSession.status == ChatStatus.WAITING)
        .order_by(ChatSession.created_at, ChatSession.id)
        .limit(500)
    ).all()
    for position, chat in enumerate(waiting, start=1):
        events.send_event_on_commit(
            session,
            "chat.queue",
            {"ticket_id": chat.ticket_id, "position": position},
            rooms=[f"chat:{chat.ticket_id}"],
            namespace=CHAT_NAMESPACE,
        )


def line_from(message: Message) -> str:
    if message.direction is Direction.INBOUND and message.kind is MessageKind.CHAT:
        return "visitor"
    if message.author_agent_id is not None:
        return "agent"
    return "system"


def chat_line(message: Message) -> dict[str, Any]:
    """One chat line, as both namespaces send it (``chat.message``):

    ``{ticket_id, id, client_id, from: "visitor"|"agent"|"system", author, text, html,
    created_at, attachments: [{id, filename, content_type, size}]}``. ``html`` is the sanitized
    rendering of the text (links made clickable); clients may show it as HTML.
    """
    return {
        "ticket_id": message.ticket_id,
        "id": message.id,
        "client_id": (message.meta or {}).get("client_id"),
        "from": line_from(message),
        "author": message.author_name,
        "text": message.body_text,
        "html": message.body_html or "",
        "created_at": message.created_at.isoformat(),
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in message.attachments
        ],
    }  # fmt: skip


def announce_line(session: Session, chat: ChatSession, message: Message) -> None:
    line = chat_line(message)
    rooms = [f"ticket:{chat.ticket_id}"]
    if chat.agent_id is not None:
        rooms.append(f"agent:{chat.agent_id}")
    events.send_event_on_commit(session, "chat.message", line, rooms=rooms)
    if message.direction is Direction.INBOUND:
        # The visitor's other tabs; the visitor's own agent-bound lines need no outbox.
        events.send_event_on_commit(
            session, "chat.message", line, rooms=[f"chat:{chat.ticket_id}"],
            namespace=CHAT_NAMESPACE,
        )  # fmt: skip
