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
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
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


def _sweep(session: Session) -> set[int]:
    """Drop viewers not seen for ``VIEWER_TTL`` (their process died); return their tickets."""
    cutoff = utcnow() - VIEWER_TTL
    stale = set(
        session.scalars(
            select(TicketViewer.ticket_id).where(TicketViewer.seen_at < cutoff).distinct()
        )
    )
    if stale:
        session.execute(delete(TicketViewer).where(TicketViewer.seen_at < cutoff))
    return stale


def join(session: Session, ticket: Ticket, agent: Agent, sid: str) -> None:
    """The connection ``sid`` shows ``ticket`` to ``agent`` (access already checked).

    Always announces, even when the agent was already there in another tab: the newcomer's
    connection needs the list, and the room is the only address it has across processes.
    """
    now = utcnow()
    row = session.get(TicketViewer, (sid, ticket.id))
    if row is None:
        session.add(TicketViewer(sid=sid, ticket_id=ticket.id, agent_id=agent.id, seen_at=now))
    else:
        row.seen_at = now
    _announce(session, {ticket.id, *_sweep(session)})


def leave(session: Session, ticket_id: int, sid: str) -> None:
    """The connection left the ticket page (navigated away inside the app)."""
    removed = session.execute(
        delete(TicketViewer)
        .where(TicketViewer.sid == sid, TicketViewer.ticket_id == ticket_id)
        .returning(TicketViewer.ticket_id)
    ).all()
    if removed:
        _announce(session, {ticket_id})


def disconnect(session: Session, sid: str) -> None:
    """The connection closed (tab closed, network lost, ping timeout): it leaves every ticket."""
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
    stale = _sweep(session)
    if stale:
        _announce(session, stale)
