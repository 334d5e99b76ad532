"""Agent presence: the status an agent chose (online / away / offline), their live connections,
and what the two make together. Chat routing and ticket auto-assignment both read it; it reads
neither of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, AgentConnection, AgentPresence, MissedOffers, PresenceStatus

# A connection not heard from for this long is gone (its heartbeat stopped).
CONNECTION_TTL = timedelta(seconds=90)


def presence_row(session: Session, agent: Agent) -> AgentPresence:
    row = session.get(AgentPresence, agent.id)
    if row is None:
        row = AgentPresence(agent_id=agent.id, status=PresenceStatus.OFFLINE)
        session.add(row)
        session.flush()
    return row


def live_connection_agents(session: Session) -> set[int]:
    cutoff = utcnow() - CONNECTION_TTL
    return set(
        session.scalars(
            select(AgentConnection.agent_id).where(AgentConnection.seen_at >= cutoff).distinct()
        )
    )


def effective_presence(session: Session, agent: Agent) -> PresenceStatus:
    row = session.get(AgentPresence, agent.id)
    if row is None or agent.id not in live_connection_agents(session):
        return PresenceStatus.OFFLINE
    return row.status


def reset_missed(session: Session, agent: Agent) -> None:
    """Missed chat offers start counting afresh (the agent is back at the desk, or accepted)."""
    row = session.get(MissedOffers, agent.id)
    if row is not None and row.in_a_row:
        row.in_a_row = 0


def available_agent_ids(session: Session, agent_ids: Iterable[int]) -> set[int]:
    """Of these agents, the ones available right now (active, chose online, connected): what
    auto-assignment hands tickets to.

    :func:`effective_presence`'s rule (and the active flag), in one query for many agents.
    """

    ids = set(agent_ids)
    if not ids:
        return set()
    live = exists().where(
        AgentConnection.agent_id == Agent.id,
        AgentConnection.seen_at >= utcnow() - CONNECTION_TTL,
    )
    return set(
        session.scalars(
            select(Agent.id)
            .join(AgentPresence, AgentPresence.agent_id == Agent.id)
            .where(
                Agent.id.in_(ids),
                Agent.active.is_(True),
                AgentPresence.status == PresenceStatus.ONLINE,
                live,
            )
        )
    )
