"""Agent presence: the status an agent chose (online / away / offline), their live connections,
and what the two make together. Chat routing and ticket auto-assignment both read it; it reads
neither of them.

The verbs (:func:`set_presence`, :func:`set_capacity`, :func:`agent_connected`,
:func:`agent_heartbeat`, :func:`agent_disconnected`) announce ``presence.updated`` to the room
``agents`` on commit. A channel that hands work to available agents (live chat: offers move on
when an agent leaves, waiting chats go to one who arrives) hears every change through
:func:`on_presence_changed`, registered when the app is created, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Agent, AgentConnection, AgentPresence, PresenceStatus
from helpdesk.services import events
from helpdesk.services.errors import ServiceError

# A connection not heard from for this long is gone (its heartbeat stopped).
CONNECTION_TTL = timedelta(seconds=90)


class PresenceReaction(Protocol):
    def __call__(
        self, session: Session, agent: Agent, status: PresenceStatus, *, chosen: bool
    ) -> None:
        """``status`` is what the agent chose (``chosen=True``: :func:`set_presence`), or their
        effective presence after a connection opened or closed and changed it
        (``chosen=False``)."""


_reactions: list[PresenceReaction] = []


def on_presence_changed(reaction: PresenceReaction) -> None:
    """Call ``reaction(session, agent, status, chosen=...)`` in the same transaction whenever an
    agent chooses a status, or a connection opening or closing changes their effective presence
    (the chat channel registers its routing, ``channels.registry.register_chat``)."""
    if reaction not in _reactions:
        _reactions.append(reaction)


def _changed(session: Session, agent: Agent, status: PresenceStatus, *, chosen: bool) -> None:
    for reaction in list(_reactions):
        reaction(session, agent, status, chosen=chosen)


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


# ---------------------------------------------------------------------------------------------
# Verbs
# ---------------------------------------------------------------------------------------------


def _lock(session: Session, agent: Agent) -> None:
    """Hold the agent's presence row until commit (PostgreSQL), so connections of one agent
    opening and closing at once are counted one after the other: without it two tabs closing
    together each still saw the other's connection, neither announced "offline" and the chat
    routing never heard that the agent left."""
    session.scalar(
        select(AgentPresence)
        .where(AgentPresence.agent_id == agent.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _announce(session: Session, agent: Agent) -> None:
    """``presence.updated`` (/agent, room ``agents``): ``{agent_id, status}`` (effective)."""
    events.send_event_on_commit(
        session,
        "presence.updated",
        {"agent_id": agent.id, "status": effective_presence(session, agent).value},
        rooms=["agents"],
    )


def set_presence(session: Session, agent: Agent, status: PresenceStatus | str) -> None:
    """The agent chooses online / away / offline (going online takes waiting chats: the
    registered reactions)."""
    try:
        status = PresenceStatus(status)
    except ValueError:
        raise ServiceError(_("Unknown availability.")) from None
    _lock(session, agent)
    row = presence_row(session, agent)
    row.status = status
    row.updated_at = utcnow()
    _announce(session, agent)
    _changed(session, agent, status, chosen=True)


def set_capacity(session: Session, agent: Agent, capacity: int | None) -> None:
    """How many chats the agent takes at once (``None``: the channel's default)."""
    if capacity is not None and not 1 <= capacity <= 50:
        raise ServiceError(_("Capacity must be between 1 and 50."))
    presence_row(session, agent).capacity = capacity


def agent_connected(session: Session, agent: Agent, sid: str) -> None:
    """A connection opened (or is still there: the heartbeat); only news is announced."""
    _lock(session, agent)
    before = effective_presence(session, agent)
    session.merge(AgentConnection(sid=sid, agent_id=agent.id, seen_at=utcnow()))
    presence_row(session, agent)
    session.flush()
    after = effective_presence(session, agent)
    if after is not before:
        _announce(session, agent)
        _changed(session, agent, after, chosen=False)


def agent_heartbeat(session: Session, agent: Agent, sid: str) -> None:
    agent_connected(session, agent, sid)


def agent_disconnected(session: Session, agent: Agent, sid: str) -> None:
    """A connection closed; without another one the agent is offline (for routing too)."""
    _lock(session, agent)
    before = effective_presence(session, agent)
    session.execute(delete(AgentConnection).where(AgentConnection.sid == sid))
    session.flush()
    after = effective_presence(session, agent)
    if after is not before:
        _announce(session, agent)
        _changed(session, agent, after, chosen=False)
