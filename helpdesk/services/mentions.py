"""@mentions in internal notes notify the mentioned agents in the app.

An agent is mentioned by ``@`` followed by their display name (``@Tanvir Hasan``,
``@নুসরাত জাহান``) or the local part of their email (``@tanvir``), case-insensitively; the
longest name that matches wins, so ``@Ana Maria`` is not also a mention of ``@Ana``.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, Message, Ticket
from helpdesk.models.notifications import Notification
from helpdesk.services import events

_AT = re.compile(r"(?:^|(?<=[\s(]))@")


def _handles(agent: Agent) -> list[str]:
    return [h for h in {agent.name.strip().casefold(), agent.email.split("@")[0].casefold()} if h]


def find_mentions(session: Session, text: str) -> list[Agent]:
    agents = list(session.scalars(select(Agent).where(Agent.active.is_(True))))
    folded = text.casefold()
    found: dict[int, Agent] = {}
    for m in _AT.finditer(folded):
        rest = folded[m.end() :]
        best: tuple[int, Agent] | None = None
        for agent in agents:
            for handle in _handles(agent):
                end = len(handle)
                # The handle must end at a word boundary: "@ana" is not "@anabel".
                whole = rest.startswith(handle) and (end == len(rest) or not rest[end].isalnum())
                if whole and (best is None or end > best[0]):
                    best = (end, agent)
        if best is not None:
            found[best[1].id] = best[1]
    return list(found.values())


def notify_mentions(session: Session, ticket: Ticket, note: Message, author: Agent) -> list[Agent]:
    """Create a notification for each agent mentioned in ``note`` (never for the author)."""
    mentioned = [a for a in find_mentions(session, note.body_text) if a.id != author.id]
    for agent in mentioned:
        session.add(
            Notification(
                agent_id=agent.id,
                kind="mention",
                ticket_id=ticket.id,
                message_id=note.id,
                actor_agent_id=author.id,
            )
        )
        # Payload of ``notification`` (room agent:<id>): {kind, ticket_id, number, subject, by}.
        events.send_event_on_commit(
            session,
            "notification",
            {
                "kind": "mention",
                "ticket_id": ticket.id,
                "number": ticket.number,
                "subject": ticket.subject,
                "by": author.name,
            },
            rooms=[f"agent:{agent.id}"],
        )
    return mentioned


def unread_count(session: Session, agent: Agent) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.agent_id == agent.id, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_read(session: Session, agent: Agent, notification_id: int | None = None) -> None:
    stmt = update(Notification).where(
        Notification.agent_id == agent.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        stmt = stmt.where(Notification.id == notification_id)
    session.execute(stmt.values(read_at=utcnow()))
