"""One change applied to many tickets, each through the same verbs as one by one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    Team,
    Ticket,
    TicketStatus,
)
from helpdesk.services.audit import Actor
from helpdesk.services.errors import ServiceError
from helpdesk.services.tags import add_tags, get_or_create_tag, normalize_tag, remove_tags
from helpdesk.services.tickets import assign_ticket, set_priority, set_status, set_team


@dataclass(frozen=True)
class BulkChange:
    """What a bulk action sets; ``None`` leaves a property alone. ``assignee_id=0`` unassigns."""

    status: TicketStatus | None = None
    priority: int | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()


def bulk_update(
    session: Session, ticket_ids: Sequence[int], change: BulkChange, actor: Actor
) -> list[Ticket]:
    """Apply one change to many tickets, each through the same verb as one by one (so every
    ticket gets its audit entries and agents get one coalesced event per ticket)."""
    if not ticket_ids:
        raise ServiceError(_("Select at least one ticket."))
    if len(ticket_ids) > 500:
        raise ServiceError(_("At most %(n)d tickets at once.", n=500))
    assignee: Agent | None = None
    if change.assignee_id:
        assignee = session.get(Agent, change.assignee_id)
        if assignee is None:
            raise ServiceError(_("Unknown agent."))
    team: Team | None = None
    if change.team_id:
        team = session.get(Team, change.team_id)
        if team is None:
            raise ServiceError(_("Unknown team."))
    from sqlalchemy.orm import joinedload, selectinload

    # Everything the verbs read, loaded in three queries instead of three per ticket.
    rows = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.id.in_(set(ticket_ids)))
            .options(
                selectinload(Ticket.tags),
                joinedload(Ticket.assignee),
                joinedload(Ticket.team),
                joinedload(Ticket.customer),
            )
        ).unique()
    )
    if len(rows) != len(set(ticket_ids)):
        raise ServiceError(_("Some of the selected tickets no longer exist."))
    for name in change.add_tags:  # create new tags once, before the loop
        if name.strip():
            get_or_create_tag(session, normalize_tag(name))
    with session.no_autoflush:  # one flush at the end, not one per ticket and verb
        _apply_bulk(session, rows, change, assignee, team, actor)
    session.flush()
    return rows


def _apply_bulk(
    session: Session,
    rows: list[Ticket],
    change: BulkChange,
    assignee: Agent | None,
    team: Team | None,
    actor: Actor,
) -> None:
    for ticket in sorted(rows, key=lambda t: t.id):
        if change.assignee_id is not None:
            assign_ticket(session, ticket, assignee, actor)
        if change.team_id is not None:
            set_team(session, ticket, team, actor)
        if change.priority is not None:
            set_priority(session, ticket, change.priority, actor)
        if change.status is not None:
            set_status(session, ticket, change.status, actor)
        if change.add_tags:
            add_tags(session, ticket, change.add_tags, actor)
        if change.remove_tags:
            remove_tags(session, ticket, change.remove_tags, actor)
