"""Chat offers that time out: an offer nobody accepts moves on to the next available agent.

The database is the truth, not a timer in one process: an offer is due when its chat is still
``offered`` and ``offered_at`` is older than the channel's ``offer_timeout``. The worker
(:func:`expire_due`, registered by the chat channel) looks every ``WORKER_POLL_SECONDS``, so it
works with several server processes (on PostgreSQL each due chat is taken with ``SKIP LOCKED``:
two workers never expire the same offer twice) and after a restart (an offer made before the
crash is still due afterwards).

An expired offer counts as a decline by that agent for that chat (routing skips them for it),
and as one *missed offer*: after ``away_after_missed`` in a row the agent is set **away**, like
Zendesk and Intercom do, so chats stop waiting on someone who left their desk. Accepting a chat
or choosing *Online* again starts the count afresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.models import Agent, ChatSession, ChatStatus, MissedOffers, PresenceStatus
from helpdesk.services import audit, events
from helpdesk.services.chat import _announce_queue, chat_settings, route, set_presence
from helpdesk.services.presence import presence_row

# Offers moved per transaction: about 4 ms each on SQLite, whose one write lock chat lines wait
# for meanwhile; small batches (the worker runs again at once) let lines in between.
BATCH = 10


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
        audit.record(session, chat.ticket, None, "chat.offer_expired", agent=agent.name)
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
        _announce_queue(session)
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
