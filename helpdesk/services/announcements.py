"""Telling agents' browsers about tickets: the payloads of the live ``ticket.created`` /
``ticket.updated`` / ``ticket.message`` announcements (helpdesk/services/events.py sends them).

Several changes to a ticket in one transaction become one announcement with its final state,
built by the unit of work's ``live.announcements`` commit step just before the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from helpdesk.models import (
    Agent,
    Message,
    Tag,
    Ticket,
    ticket_tags,
)
from helpdesk.services import events
from helpdesk.unit_of_work import UnitOfWork, add_commit_step, unit_of_work

# A summary's assignee ({id, name} or None) and tag names.
_SummaryParts = tuple[dict[str, Any] | None, list[str]]


def ticket_summary(ticket: Ticket, people: _SummaryParts | None = None) -> dict[str, Any]:
    """Payload of ``ticket.created`` / ``ticket.updated`` on the agent namespace.

    ``{id, number, subject, status, priority, channel, customer: {id, name, email},
    assignee: {id, name} | null, team_id, tags: [str], custom: {key: value}, message_count,
    updated_at (ISO 8601), version}``. Documented in docs/architecture.md#events.

    ``people``: the assignee and tags as :func:`_summary_parts` read them, for a ticket whose
    relationships are not loaded (else they are read from the ticket, loading what they need).
    """
    customer = ticket.customer
    if people is not None:
        assignee, tags = people
    else:
        assignee = (
            {"id": ticket.assignee.id, "name": ticket.assignee.name} if ticket.assignee else None
        )
        tags = [t.name for t in ticket.tags]
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "priority": int(ticket.priority),
        "channel": ticket.channel.value,
        "customer": {
            "id": customer.id,
            "name": customer.display_name,
            "email": customer.email,
        },
        "assignee": assignee,
        "team_id": ticket.team_id,
        "tags": tags,
        "custom": ticket.custom or {},
        "message_count": ticket.message_count,
        "updated_at": ticket.updated_at.isoformat(),
        "version": ticket.version,
    }


# The assignee and tags of tickets, in one statement built once. Lazy-loading them through the
# ORM cost two SELECTs and most of the summary's CPU on every chat line (a line's session
# loads its chat's ticket, not the ticket's assignee and tags).
_SUMMARY_PARTS = (
    select(Ticket.id, Agent.id, Agent.name, Tag.name)
    .select_from(Ticket)
    .outerjoin(Agent, Agent.id == Ticket.assignee_id)
    .outerjoin(ticket_tags, ticket_tags.c.ticket_id == Ticket.id)
    .outerjoin(Tag, Tag.id == ticket_tags.c.tag_id)
    .where(Ticket.id.in_(bindparam("ids", expanding=True)))
    .order_by(Ticket.id, Tag.name)
)


def _summary_parts(session: Session, tickets: Iterable[Ticket]) -> dict[int, _SummaryParts]:
    """Assignee and tags of the (flushed) tickets whose ``assignee`` or ``tags`` are not
    loaded, read in one query; tickets with both loaded are left to :func:`ticket_summary`."""
    ids = []
    for ticket in tickets:
        unloaded = inspect(ticket).unloaded
        if "tags" in unloaded or (
            # An unloaded assignee costs nothing when there is none or the session has it.
            "assignee" in unloaded
            and ticket.assignee_id is not None
            and session.identity_map.get(identity_key(Agent, ticket.assignee_id)) is None
        ):
            ids.append(ticket.id)
    if not ids:
        return {}
    parts: dict[int, _SummaryParts] = {}
    conn = session.connection()
    for start in range(0, len(ids), 500):  # bound parameters per statement
        for ticket_id, agent_id, agent_name, tag in conn.execute(
            _SUMMARY_PARTS, {"ids": ids[start : start + 500]}
        ):
            if ticket_id not in parts:
                assignee = {"id": agent_id, "name": agent_name} if agent_id is not None else None
                parts[ticket_id] = (assignee, [])
            if tag is not None:
                parts[ticket_id][1].append(tag)
    return parts


_ANNOUNCE = "live.announce"


def announce(session: Session, ticket: Ticket, name: str = "ticket.updated") -> None:
    """Tell agents about this ticket when the transaction commits.

    Several changes in one transaction (a reply that also sets the status, the demo loader)
    become one event per ticket carrying the final state; "created" wins over "updated".
    """
    if ticket.id is None:
        session.flush()
    unit_of_work(session).add(_ANNOUNCE, (ticket, name))


def _build_announcements(session: Session, uow: UnitOfWork) -> None:
    pending: dict[int, tuple[Ticket, str]] = {}
    for ticket, name in uow.take(_ANNOUNCE):
        previous = pending.get(ticket.id)
        created = previous is not None and previous[1] == "ticket.created"
        pending[ticket.id] = (ticket, "ticket.created" if created else name)
    if not pending or not events.has_publishers():
        return  # nobody to tell (a one-off command without Socket.IO): no payloads to build
    # Payloads are built now, while the session can still load what they need; they are sent
    # only after the commit succeeds.
    session.flush()
    parts = _summary_parts(session, (ticket for ticket, _name in pending.values()))
    for ticket, name in pending.values():
        summary = ticket_summary(ticket, parts.get(ticket.id))
        events.send_event_on_commit(session, name, summary, rooms=["agents"])


add_commit_step("live.announcements", _build_announcements, order=10)


def announce_message(session: Session, ticket: Ticket, message: Message) -> None:
    """``ticket.message`` to the ticket's room after commit (both flushed: they have ids)."""
    payload = {
        "ticket_id": ticket.id,
        "message_id": message.id,
        "direction": message.direction.value,
        "kind": message.kind.value,
        "internal": message.internal,
    }
    events.send_event_on_commit(session, "ticket.message", payload, rooms=[f"ticket:{ticket.id}"])
