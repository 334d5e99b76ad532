"""Who is on a ticket page: the viewers behind collision detection.

A ticket page's Socket.IO connection joins the room ``ticket:<id>`` and is recorded here as a
:class:`~helpdesk.models.TicketViewer`; leaving, closing the tab (disconnect) or going silent
for longer than ``VIEWER_TTL`` (a server process that died) removes it. Every change of a
ticket's set of agents is announced to the room after commit as ``ticket.presence`` with the
whole list, so a client never has to merge deltas and a newcomer gets the same event as a
snapshot::

    ticket.presence  room ticket:<id>  {"ticket_id": int,
                                        "viewers": [{"agent_id": int, "name": str}, ...]}

``viewers`` holds each agent once (two tabs are one viewer), ordered by name; a page hides its
own agent. Typing is not stored: it is relayed as it happens (helpdesk.realtime).

Concurrent changes of one ticket's viewers (several tabs closing at once) are serialized per
ticket (:func:`_lock`), so the list a transaction announces already includes the changes
committed before it: the last announcement is the true state. Without the lock, two
disconnects on PostgreSQL each counted the other's (not yet committed) row and both announced
a list that still held the departed agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, Ticket, TicketViewer
from helpdesk.services import events

# The ticket page sends a heartbeat every 30 s; three missed beats and the viewer is gone.
HEARTBEAT_SECONDS = 30
VIEWER_TTL = timedelta(seconds=90)


def viewers(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    """The agents on a ticket page now, each once, by name."""
    cutoff = utcnow() - VIEWER_TTL
    rows = session.execute(
        select(Agent.id, Agent.name)
        .join(TicketViewer, TicketViewer.agent_id == Agent.id)
        .where(TicketViewer.ticket_id == ticket_id, TicketViewer.seen_at >= cutoff)
        .where(Agent.active.is_(True))
        .distinct()
    ).all()
    return [
        {"agent_id": agent_id, "name": name}
        for agent_id, name in sorted(rows, key=lambda r: (r[1].casefold(), r[0]))
    ]


def _announce(session: Session, ticket_ids: Iterable[int]) -> None:
    """Send each ticket's list of viewers after commit, built now from this transaction."""
    session.flush()
    for ticket_id in sorted(set(ticket_ids)):
        events.send_event_on_commit(
            session,
            "ticket.presence",
            {"ticket_id": ticket_id, "viewers": viewers(session, ticket_id)},
            rooms=[f"ticket:{ticket_id}"],
        )


# The first key of the advisory locks taken per ticket ("tv": ticket viewers).
_LOCK_CLASS = 0x7476


def _lock(session: Session, ticket_ids: Iterable[int]) -> None:
    """Wait for, and hold until commit, each ticket's viewer lock (in id order: no deadlock
    between two transactions locking several). On SQLite a writing transaction already holds
    the database's one write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for ticket_id in sorted(set(ticket_ids)):
        session.execute(select(func.pg_advisory_xact_lock(_LOCK_CLASS, ticket_id)))


def _stale_tickets(session: Session) -> set[int]:
    cutoff = utcnow() - VIEWER_TTL
    return set(
        session.scalars(
            select(TicketViewer.ticket_id).where(TicketViewer.seen_at < cutoff).distinct()
        )
    )


def _sweep(session: Session, ticket_ids: set[int]) -> set[int]:
    """Drop the viewers of ``ticket_ids`` (locked) not seen for ``VIEWER_TTL`` (their process
    died); return the tickets that lost one."""
    if not ticket_ids:
        return set()
    cutoff = utcnow() - VIEWER_TTL
    return set(
        session.scalars(
            delete(TicketViewer)
            .where(TicketViewer.seen_at < cutoff, TicketViewer.ticket_id.in_(ticket_ids))
            .returning(TicketViewer.ticket_id)
        )
    )


def join(session: Session, ticket: Ticket, agent: Agent, sid: str) -> None:
    """The connection ``sid`` shows ``ticket`` to ``agent`` (access already checked).

    Always announces, even when the agent was already there in another tab: the newcomer's
    connection needs the list, and the room is the only address it has across processes.
    """
    stale = _stale_tickets(session)
    _lock(session, {ticket.id, *stale})
    now = utcnow()
    row = session.get(TicketViewer, (sid, ticket.id))
    if row is None:
        session.add(TicketViewer(sid=sid, ticket_id=ticket.id, agent_id=agent.id, seen_at=now))
    else:
        row.seen_at = now
    _announce(session, {ticket.id, *_sweep(session, stale)})


def leave(session: Session, ticket_id: int, sid: str) -> None:
    """The connection left the ticket page (navigated away inside the app)."""
    _lock(session, {ticket_id})
    removed = session.execute(
        delete(TicketViewer)
        .where(TicketViewer.sid == sid, TicketViewer.ticket_id == ticket_id)
        .returning(TicketViewer.ticket_id)
    ).all()
    if removed:
        _announce(session, {ticket_id})


def disconnect(session: Session, sid: str) -> None:
    """The connection closed (tab closed, network lost, ping timeout): it leaves every ticket."""
    # Only this connection writes its own rows: the tickets read here are the ones to lock.
    _lock(session, session.scalars(select(TicketViewer.ticket_id).where(TicketViewer.sid == sid)))
    removed = session.scalars(
        delete(TicketViewer).where(TicketViewer.sid == sid).returning(TicketViewer.ticket_id)
    ).all()
    if removed:
        _announce(session, removed)


def heartbeat(session: Session, ticket: Ticket, agent: Agent, sid: str) -> None:
    """The connection is still on the ticket: keep its viewer, and drop those of connections
    that are not alive.

    A viewer that expired meanwhile (a long network stall) comes back as a join. Sweeping here
    means stale viewers vanish from the pages of everyone still watching (they all beat), with
    no background job; nobody watching means nobody to tell.
    """
    row = session.get(TicketViewer, (sid, ticket.id))
    if row is None or row.seen_at < utcnow() - VIEWER_TTL:
        join(session, ticket, agent, sid)
        return
    row.seen_at = utcnow()
    stale = _stale_tickets(session)
    _lock(session, stale)
    swept = _sweep(session, stale)
    if swept:
        _announce(session, swept)
