"""Who handles a chat: routing to available agents, offers, accept / decline / transfer, offers
that time out and the agents' missed offers.

Routing: an *available* agent has effective presence ``online`` (chosen online and at least one
live connection, :mod:`helpdesk.services.presence`) and fewer live chats (offered + active) than
their capacity; a chat goes to the available agent (of its team, when it has one) with the
fewest live chats, ties broken round robin (the one assigned longest ago first). With nobody
free it waits; :func:`dispatch` routes waiting chats oldest first whenever capacity frees up.
The core tells routing when an agent's presence changes (:func:`presence_changed`, registered
with ``presence.on_presence_changed``), and asks it which tickets auto-assignment must leave
alone (:func:`is_live_chat`, registered with ``assignment.register_exclusion``).

Offers that time out: the database is the truth, not a timer in one process: an offer is due
when its chat is still ``offered`` and ``offered_at`` is older than the channel's
``offer_timeout``. The worker (:func:`expire_due`, registered by the chat channel) looks every
``WORKER_POLL_SECONDS``, so it works with several server processes (on PostgreSQL each due chat
is taken with ``SKIP LOCKED``: two workers never expire the same offer twice) and after a
restart (an offer made before the crash is still due afterwards). An expired offer counts as a
decline by that agent for that chat (routing skips them for it), and as one *missed offer*:
after ``away_after_missed`` in a row the agent is set **away**, like Zendesk and Intercom do, so
chats stop waiting on someone who left their desk. Accepting a chat or choosing *Online* again
starts the count afresh.

Like every service, nothing commits; live events are sent on commit (docs/chat-protocol.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.chat import history as chat_history
from channels.chat.models import ChatSession, ChatStatus, MissedOffers
from channels.chat.payloads import announce_chat, announce_queue
from channels.chat.settings import chat_settings
from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    AgentPresence,
    ChannelKind,
    PresenceStatus,
    Team,
    Ticket,
    TicketStatus,
)
from helpdesk.services import events, tickets
from helpdesk.services.errors import ServiceError
from helpdesk.services.presence import (
    effective_presence,
    live_connection_agents,
    presence_row,
    set_presence,
)

LIVE = (ChatStatus.OFFERED, ChatStatus.ACTIVE)
# Offers moved per transaction: about 4 ms each on SQLite, whose one write lock chat lines wait
# for meanwhile; small batches (the worker runs again at once) let lines in between.
BATCH = 10


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------


def _live_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(ChatSession.agent_id, func.count())
        .where(ChatSession.status.in_(LIVE), ChatSession.agent_id.is_not(None))
        .group_by(ChatSession.agent_id)
    )
    return {int(agent_id): int(n) for agent_id, n in rows if agent_id is not None}


def available_agents(
    session: Session, *, team_id: int | None = None, exclude: Iterable[int] = ()
) -> list[tuple[Agent, int]]:
    """Agents who may take one more chat now, best first, with their live chat counts."""
    settings = chat_settings(session)
    connected = live_connection_agents(session)
    counts = _live_counts(session)
    excluded = set(exclude)
    query = (
        select(Agent, AgentPresence)
        .join(AgentPresence, AgentPresence.agent_id == Agent.id)
        .where(Agent.active.is_(True), AgentPresence.status == PresenceStatus.ONLINE)
    )
    if team_id is not None:
        query = query.where(Agent.teams.any(Team.id == team_id))
    found: list[tuple[Agent, int, datetime | None]] = []
    for agent, presence in session.execute(query):
        if agent.id in excluded or agent.id not in connected:
            continue
        n = counts.get(agent.id, 0)
        if n < (presence.capacity or settings.capacity):
            found.append((agent, n, presence.last_assigned_at))
    epoch = datetime.min.replace(tzinfo=utcnow().tzinfo)
    found.sort(key=lambda f: (f[1], f[2] or epoch, f[0].id))
    return [(a, n) for a, n, _at in found]


def agents_online(session: Session, team_id: int | None = None) -> bool:
    """Someone could answer (online and connected), even if busy: then a chat waits in line."""
    connected = live_connection_agents(session)
    query = (
        select(Agent.id)
        .join(AgentPresence, AgentPresence.agent_id == Agent.id)
        .where(Agent.active.is_(True), AgentPresence.status == PresenceStatus.ONLINE)
    )
    if team_id is not None:
        query = query.where(Agent.teams.any(Team.id == team_id))
    return any(agent_id in connected for agent_id in session.scalars(query))


def _offer(session: Session, chat: ChatSession, agent: Agent) -> None:
    now = utcnow()
    chat.status = ChatStatus.OFFERED
    chat.agent_id = agent.id
    chat.agent = agent
    chat.offered_at = now
    presence_row(session, agent).last_assigned_at = now
    ticket = chat.ticket
    events.send_event_on_commit(
        session,
        "chat.offer",
        {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "subject": ticket.subject,
            "customer": ticket.customer.display_name,
        },
        rooms=[f"agent:{agent.id}"],
    )


def route(session: Session, chat: ChatSession) -> None:
    """Offer the chat to the best available agent, or leave it waiting."""
    if chat.status is not ChatStatus.WAITING:
        return
    candidates = available_agents(session, team_id=chat.team_id, exclude=chat.declined)
    if candidates:
        _offer(session, chat, candidates[0][0])
    announce_chat(session, chat)


def dispatch(session: Session) -> None:
    """Route waiting chats, oldest first, while anyone has capacity."""
    waiting = session.scalars(
        select(ChatSession)
        .where(ChatSession.status == ChatStatus.WAITING)
        .order_by(ChatSession.created_at, ChatSession.id)
        .limit(200)
    ).all()
    for chat in waiting:
        route(session, chat)
    if waiting:
        announce_queue(session)


def requeue_offers(session: Session, agent: Agent) -> None:
    """Chats offered to an agent who is no longer available go to someone else (or wait);
    chats they already accepted stay theirs."""
    offered = session.scalars(
        select(ChatSession).where(
            ChatSession.agent_id == agent.id, ChatSession.status == ChatStatus.OFFERED
        )
    ).all()
    for chat in offered:
        chat.status = ChatStatus.WAITING
        chat.agent_id = None
        chat.agent = None
        session.flush()
        route(session, chat)
    if offered:
        announce_queue(session)


# ---------------------------------------------------------------------------------------------
# What the core asks and tells (registered by channels.registry.register_chat)
# ---------------------------------------------------------------------------------------------


def presence_changed(
    session: Session, agent: Agent, status: PresenceStatus, *, chosen: bool
) -> None:
    """An agent chose a status, or a connection changed their effective presence
    (``presence.on_presence_changed``).

    Choosing *Online* starts the missed offers afresh and takes waiting chats; choosing away or
    offline moves their pending offers on. A connection that brings the agent back takes waiting
    chats; the last one closing moves their offers on. Accepted chats stay theirs either way.
    """
    if chosen:
        if status is PresenceStatus.ONLINE:
            reset_missed(session, agent)  # back at the desk: missed offers start counting afresh
            dispatch(session)
        else:
            requeue_offers(session, agent)
    elif status is PresenceStatus.OFFLINE:
        requeue_offers(session, agent)
    else:
        dispatch(session)


def is_live_chat(session: Session, ticket: Ticket) -> bool:
    """A live chat is routed here, never auto-assigned (``assignment.register_exclusion``); an
    ended chat is an ordinary ticket."""
    if ticket.channel is not ChannelKind.CHAT:
        return False
    status = session.scalar(select(ChatSession.status).where(ChatSession.ticket_id == ticket.id))
    return status is not None and status is not ChatStatus.ENDED


# ---------------------------------------------------------------------------------------------
# Accept, decline, transfer
# ---------------------------------------------------------------------------------------------


def accept(session: Session, chat: ChatSession, agent: Agent) -> None:
    if chat.status is ChatStatus.ENDED:
        raise ServiceError(_("This chat has ended."))
    if chat.status is ChatStatus.ACTIVE and chat.agent_id == agent.id:
        return
    if chat.status is ChatStatus.ACTIVE:
        raise ServiceError(_("Another agent already took this chat."))
    chat.status = ChatStatus.ACTIVE
    chat.agent_id = agent.id
    chat.agent = agent
    chat.accepted_at = utcnow()

    reset_missed(session, agent)
    tickets.assign_ticket(session, chat.ticket, agent, agent)
    if chat.ticket.status is TicketStatus.NEW:
        tickets.set_status(session, chat.ticket, TicketStatus.OPEN, agent)
    chat_history.record(session, chat, agent, "chat.accepted")
    announce_chat(session, chat)
    announce_queue(session)


def decline(session: Session, chat: ChatSession, agent: Agent) -> None:
    if chat.status is not ChatStatus.OFFERED or chat.agent_id != agent.id:
        raise ServiceError(_("This chat is not offered to you."))
    chat.declined = [*chat.declined, agent.id]
    chat.status = ChatStatus.WAITING
    chat.agent_id = None
    chat.agent = None
    chat_history.record(session, chat, agent, "chat.declined")
    route(session, chat)
    announce_queue(session)


def transfer(
    session: Session,
    chat: ChatSession,
    actor: Agent,
    *,
    to_agent: Agent | None = None,
    to_team: Team | None = None,
) -> None:
    """Hand the chat to another agent (offered to them) or to a team (routed within it)."""
    if chat.status is ChatStatus.ENDED:
        raise ServiceError(_("This chat has ended."))
    if (to_agent is None) == (to_team is None):
        raise ServiceError(_("Choose an agent or a team."))
    if to_agent is not None:
        if not to_agent.active or to_agent.id == chat.agent_id:
            raise ServiceError(_("Choose another agent."))
        if effective_presence(session, to_agent) is not PresenceStatus.ONLINE:
            raise ServiceError(_("%(name)s is not available for chats.", name=to_agent.name))
        chat.declined = [d for d in chat.declined if d != to_agent.id]
        _offer(session, chat, to_agent)
        tickets.assign_ticket(session, chat.ticket, to_agent, actor)
        chat_history.record(session, chat, actor, "chat.transferred", to=to_agent.name)
        announce_chat(session, chat)
    else:
        assert to_team is not None
        chat.team_id = to_team.id
        chat.status = ChatStatus.WAITING
        chat.agent_id = None
        chat.agent = None
        chat.declined = [actor.id]
        tickets.set_team(session, chat.ticket, to_team, actor)
        tickets.assign_ticket(session, chat.ticket, None, actor)
        chat_history.record(session, chat, actor, "chat.transferred", to=to_team.name)
        route(session, chat)
    announce_queue(session)


# ---------------------------------------------------------------------------------------------
# Offers that time out, missed offers
# ---------------------------------------------------------------------------------------------


def reset_missed(session: Session, agent: Agent) -> None:
    """Missed chat offers start counting afresh (the agent is back at the desk, or accepted)."""
    row = session.get(MissedOffers, agent.id)
    if row is not None and row.in_a_row:
        row.in_a_row = 0


def _count_miss(session: Session, agent: Agent, now: datetime) -> int:
    row = session.get(MissedOffers, agent.id)
    if row is None:
        row = MissedOffers(agent_id=agent.id, in_a_row=0, total=0)
        session.add(row)
    row.in_a_row += 1
    row.total += 1
    row.last_missed_at = now
    return row.in_a_row


def expire_offers(session: Session, now: datetime | None = None) -> int:
    """Move every offer older than the channel's timeout on; returns how many moved."""
    settings = chat_settings(session)
    if settings.offer_timeout <= 0:
        return 0
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.offer_timeout)
    query = (
        select(ChatSession)
        .where(ChatSession.status == ChatStatus.OFFERED, ChatSession.offered_at < cutoff)
        .order_by(ChatSession.offered_at, ChatSession.id)
        .limit(BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Another worker handling the same chat skips it; SQLite's write lock serializes anyway.
        query = query.with_for_update(skip_locked=True, of=ChatSession)
    chats = session.scalars(query).all()
    offers = {chat.id: (chat.agent_id, chat.offered_at) for chat in chats}
    moved = 0
    for chat in chats:
        current = (chat.agent_id, chat.offered_at)
        if chat.status is not ChatStatus.OFFERED or offers[chat.id] != current:
            # Moved on already in this round: its agent was just set away, which re-routed
            # their other offers (this one may now be a fresh offer to someone else).
            continue
        moved += 1
        agent = chat.agent
        chat.status = ChatStatus.WAITING
        chat.agent_id = None
        chat.agent = None
        if agent is None:  # the agent was deleted meanwhile: just route it again
            session.flush()
            route(session, chat)
            continue
        chat.declined = [*chat.declined, agent.id]
        chat_history.record(session, chat, None, "chat.offer_expired", agent=agent.name)
        missed = _count_miss(session, agent, now)
        away = bool(settings.away_after_missed) and missed >= settings.away_after_missed
        if away and presence_row(session, agent).status is PresenceStatus.ONLINE:
            # Also moves the agent's other pending offers on (set_presence -> requeue).
            set_presence(session, agent, PresenceStatus.AWAY)
        else:
            away = False
        events.send_event_on_commit(
            session,
            "chat.offer_withdrawn",
            {
                "ticket_id": chat.ticket_id,
                "reason": "timeout",
                "missed": missed,
                "presence": PresenceStatus.AWAY.value if away else None,
            },
            rooms=[f"agent:{agent.id}"],
        )
        session.flush()
        route(session, chat)
    if moved:
        announce_queue(session)
    return moved


def expire_due(app: Flask) -> int:
    """The worker task: a cheap read first (most rounds find nothing), the write only when due.

    On SQLite a write transaction takes the database's one write lock; checking in a deferred
    (read-only) transaction keeps this task from queueing behind, or holding up, chat lines.
    """
    with read_only_transactions(), db.transaction(app) as session:
        settings = chat_settings(session)
        if settings.offer_timeout <= 0:
            return 0
        cutoff = utcnow() - timedelta(seconds=settings.offer_timeout)
        due = session.scalar(
            select(func.count())
            .select_from(ChatSession)
            .where(ChatSession.status == ChatStatus.OFFERED, ChatSession.offered_at < cutoff)
        )
    if not due:
        return 0
    with db.transaction(app) as session:
        return expire_offers(session)
