"""@mentions in internal notes notify the mentioned agents in the app.

An agent is mentioned by ``@`` followed by (case-insensitively, in this order):

1. their display name (``@Tanvir Hasan``, ``@নুসরাত জাহান``) or the local part of their email
   (``@tanvir``); the longest that matches wins, so ``@Ana Maria`` is not also ``@Ana``;
2. otherwise the word after ``@`` as one of their names (``@Ayesha`` for Ayesha Rahman) or the
   start of one (``@Ayes``), if exactly one active agent fits. A word that fits several agents
   mentions none of them, and one that fits nobody mentions nobody: both are reported to the
   author (:class:`Mentions`), who is told instead of the note going out silently.

``@`` counts only at the start of the text or after a space or ``(``, so ``ana@example.com``
mentions nobody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, Message, Ticket
from helpdesk.models.notifications import Notification
from helpdesk.services import events

_AT = re.compile(r"(?:^|(?<=[\s(]))@")
# A word after "@": letters, digits and the Bengali block (its vowel signs are not alphanumeric).
_WORD = re.compile(r"[\w\u0980-\u09FF.'-]*[\w\u0980-\u09FF]")
MIN_PREFIX = 2


@dataclass
class Mentions:
    """What the ``@`` handles of one text resolved to."""

    agents: list[Agent] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # "@word" that names no agent
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # "@word" -> agents' names


def _handles(agent: Agent) -> list[str]:
    return [h for h in {agent.name.strip().casefold(), agent.email.split("@")[0].casefold()} if h]


def _words(agent: Agent) -> set[str]:
    """The single words an agent answers to: each part of the name, the email's local part."""
    return {w for w in agent.name.casefold().split()} | {agent.email.split("@")[0].casefold()}


def _by_word(agents: list[Agent], word: str) -> list[Agent]:
    """Agents one of whose words is ``word``, or else starts with it (if only one does)."""
    exact = [a for a in agents if word in _words(a)]
    if exact:
        return exact
    if len(word) < MIN_PREFIX:
        return []
    return [a for a in agents if any(w.startswith(word) for w in _words(a))]


def active_agents(session: Session) -> list[Agent]:
    return list(session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name)))


def resolve(session: Session, text: str) -> Mentions:
    agents = active_agents(session)
    folded = text.casefold()
    result = Mentions()
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
            continue
        word = _WORD.match(rest)
        if word is None:
            continue  # "@ 5pm", "@@": not a mention
        # The author's own spelling, for telling them about it.
        written = "@" + text[m.end() : m.end() + word.end()]
        fits = _by_word(agents, word.group())
        if len(fits) == 1:
            found[fits[0].id] = fits[0]
        elif fits:
            result.ambiguous[written] = [a.name for a in fits]
        elif written not in result.unmatched:
            result.unmatched.append(written)
    result.agents = list(found.values())
    return result


def find_mentions(session: Session, text: str) -> list[Agent]:
    return resolve(session, text).agents


def suggest(session: Session, query: str, limit: int = 8) -> list[Agent]:
    """Active agents for the note box's autocomplete: names or email local parts starting with
    ``query`` (any of the name's words), best first: whole-name prefix, then word prefix."""
    q = query.strip().casefold()
    agents = active_agents(session)
    if not q:
        return agents[:limit]
    whole = [a for a in agents if any(h.startswith(q) for h in _handles(a))]
    words = [a for a in agents if a not in whole and any(w.startswith(q) for w in _words(a))]
    return (whole + words)[:limit]


def notify_mentions(session: Session, ticket: Ticket, note: Message, author: Agent) -> Mentions:
    """Create a notification for each agent mentioned in ``note`` (never for the author).

    Returns what the note's handles resolved to, without the author among ``agents``."""
    result = resolve(session, note.body_text)
    mentioned = [a for a in result.agents if a.id != author.id]
    result.agents = mentioned
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
    return result


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
