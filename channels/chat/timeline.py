"""The chat's entries on the customer timeline (:mod:`helpdesk.services.timeline`): one per chat,
at the time it started, with the page the visitor was on (``page_url``), its routing status,
when it ended and the agent. Registered by ``channels.registry.register_chat``; the lines of a
chat are messages and come from the core's ``message`` source."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.chat.models import ChatSession
from helpdesk.models import Agent, Ticket
from helpdesk.services import timeline
from helpdesk.services.timeline import Entry, Query, TicketRef

SOURCE = "chat"


def chats(session: Session, q: Query) -> list[Entry]:
    stmt = (
        select(
            ChatSession.id,
            ChatSession.created_at,
            ChatSession.page_url,
            ChatSession.status,
            ChatSession.ended_at,
            ChatSession.ticket_id,
            Ticket.number,
            Ticket.subject,
            Ticket.message_count,
            Agent.name.label("agent_name"),
        )
        .join(Ticket, Ticket.id == ChatSession.ticket_id)
        .outerjoin(Agent, Agent.id == ChatSession.agent_id)
        .where(ChatSession.ticket_id.in_(q.tickets()))
    )
    below = q.below(SOURCE, ChatSession.created_at, ChatSession.id)
    if below is not None:
        stmt = stmt.where(below)
    stmt = stmt.order_by(ChatSession.created_at.desc(), ChatSession.id.desc()).limit(q.limit + 1)
    return [
        Entry(
            "chat",
            row.created_at,
            SOURCE,
            row.id,
            "chat",
            TicketRef(row.ticket_id, row.number, row.subject),
            {
                "page_url": row.page_url,
                "status": row.status.value,
                "ended_at": row.ended_at,
                "agent": row.agent_name,
                "lines": row.message_count,
            },
        )
        for row in session.execute(stmt)
    ]


def register() -> None:
    timeline.register_source(SOURCE, ("chat",), chats, channels=("chat",))
