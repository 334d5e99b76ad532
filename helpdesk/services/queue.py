"""The agent queue: views, filters, sorts and keyset pagination (read-only).

Every view is shaped to walk one index of ``tickets`` (see models/tickets.py) so the first page
and page 10,000 cost the same at a million tickets: no OFFSET, no COUNT(*) per request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, select, tuple_
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from helpdesk.i18n import _l
from helpdesk.models import (
    Agent,
    ChannelKind,
    Customer,
    CustomField,
    FieldObject,
    Tag,
    Team,
    Ticket,
    TicketStatus,
    ticket_tags,
)
from helpdesk.services import custom_fields, sla
from helpdesk.services.errors import ServiceError

VIEWS = {
    "mine": _l("My tickets"),
    "unassigned": _l("Unassigned"),
    "open": _l("All open"),
    "pending": _l("Pending"),
    "resolved": _l("Resolved"),
    "all": _l("All tickets"),
    # Active tickets whose SLA is due within BREACHING_SOON or overdue, soonest first.
    "breaching": _l("Breaching soon"),
}
SORTS = {
    "updated": _l("Recently updated"),
    "oldest": _l("Least recently updated"),
    "created": _l("Newest first"),
    "priority": _l("Priority"),
    # ix_tickets_active_sla_due (active, sla_due_at, id) walked in order with keyset pages: only
    # tickets with a running SLA target are listed (a NULL due time has no place in the range).
    "sla": _l("SLA due (soonest first, tickets with a due time)"),
}
BREACHING_SOON = timedelta(hours=2)


@dataclass(frozen=True)
class QueueFilter:
    view: str = "open"
    status: TicketStatus | None = None
    channel: ChannelKind | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    priority: int | None = None
    tag: str | None = None
    organization_id: int | None = None
    # Custom ticket fields: ((key, value), ...) from ``cf.<key>=<value>`` arguments, each
    # "the field has this value" (services/custom_fields.filter_clause), sorted by key.
    custom: tuple[tuple[str, str], ...] = ()
    sort: str = "updated"

    @classmethod
    def from_args(cls, args: Any) -> QueueFilter:
        """Parse query-string/CLI arguments; a bad value is a ServiceError (-> 400)."""

        def opt_int(name: str) -> int | None:
            value = args.get(name)
            if value in (None, ""):
                return None
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ServiceError(_l("Invalid value for %(name)s.", name=name)) from None

        view = args.get("view") or "open"
        if view not in VIEWS:
            raise ServiceError(_l("Unknown view: %(view)s", view=view))
        sort = args.get("sort") or "updated"
        if sort not in SORTS:
            raise ServiceError(_l("Unknown sort order: %(sort)s", sort=sort))
        try:
            status = TicketStatus(args["status"]) if args.get("status") else None
            channel = ChannelKind(args["channel"]) if args.get("channel") else None
        except ValueError as exc:
            raise ServiceError(_l("Invalid filter: %(error)s", error=str(exc))) from None
        priority = opt_int("priority")
        if priority is not None and priority not in (1, 2, 3, 4):
            raise ServiceError(_l("Unknown priority."))
        tag = (args.get("tag") or "").strip().lower() or None
        organization_id = opt_int("organization")
        if organization_id is not None and not 0 < organization_id < 2**31:
            raise ServiceError(_l("Invalid value for %(name)s.", name="organization"))
        return cls(
            view=view,
            status=status,
            channel=channel,
            team_id=opt_int("team"),
            assignee_id=opt_int("assignee"),
            priority=priority,
            tag=tag,
            organization_id=organization_id,
            custom=parse_custom(args),
            sort=sort,
        )

    def as_args(self) -> dict[str, str]:
        out = {"view": self.view, "sort": self.sort}
        if self.status:
            out["status"] = self.status.value
        if self.channel:
            out["channel"] = self.channel.value
        if self.team_id is not None:
            out["team"] = str(self.team_id)
        if self.assignee_id is not None:
            out["assignee"] = str(self.assignee_id)
        if self.priority is not None:
            out["priority"] = str(self.priority)
        if self.tag:
            out["tag"] = self.tag
        if self.organization_id is not None:
            out["organization"] = str(self.organization_id)
        for key, value in self.custom:
            out[f"{CUSTOM_PREFIX}{key}"] = value
        return {k: v for k, v in out.items() if not (k == "sort" and v == "updated")}


CUSTOM_PREFIX = "cf."
MAX_CUSTOM_FILTERS = 10


def parse_custom(args: Any) -> tuple[tuple[str, str], ...]:
    """The ``cf.<key>=<value>`` arguments (empty values ignored), sorted by key; the key's
    shape is checked here, its existence and the value by :func:`_custom_clauses`."""
    found: dict[str, str] = {}
    for name in list(args.keys()):
        if not name.startswith(CUSTOM_PREFIX):
            continue
        value = str(args.get(name) or "").strip()
        if not value:
            continue
        key = name[len(CUSTOM_PREFIX) :]
        if not custom_fields.KEY.match(key):
            raise ServiceError(_l("There is no field %(key)s.", key=key[:50]))
        found[key] = value[:200]
    if len(found) > MAX_CUSTOM_FILTERS:
        raise ServiceError(_l("Invalid filter: %(error)s", error="cf"))
    return tuple(sorted(found.items()))


def _custom_clauses(session: Session, flt: QueueFilter) -> list[Any]:
    """The WHERE clauses of the filter's custom fields (one look-up of their definitions, only
    when there are any); an unknown or archived field is a ServiceError."""
    if not flt.custom:
        return []
    keys = [k for k, _v in flt.custom]
    fields = {
        f.key: f
        for f in session.scalars(
            select(CustomField).where(
                CustomField.object_type == FieldObject.TICKET,
                CustomField.key.in_(keys),
                CustomField.active.is_(True),
            )
        )
    }
    clauses = []
    for key, value in flt.custom:
        field = fields.get(key)
        if field is None:
            raise ServiceError(_l("There is no field %(key)s.", key=key))
        clause = custom_fields.filter_clause(session, field, value)
        if field.type.indexed and session.get_bind().dialect.name == "sqlite":
            clause = _rare_value_plan(session, field, value, clause)
        clauses.append(clause)
    return clauses


# A custom value on fewer tickets than this is found through its own index first.
RARE_VALUE_TICKETS = 5000


def _rare_value_plan(session: Session, field: CustomField, value: str, clause: Any) -> Any:
    """On SQLite, a rare value of an indexed field as ``id IN (its tickets)``.

    Once ANALYZE has run, SQLite knows only the average number of tickets per value of the
    field's index (a fifth of them for a five-option dropdown), so with another filter (a team)
    it walks that filter's index and reads each ticket's JSON to test the value: 50,000 rows
    for a value on 0.1% of the tickets. Counted (up to RARE_VALUE_TICKETS, through the field's
    own index) and found rare, the value's tickets are looked up first and the rest is checked
    on those; a common value keeps the plain clause, walked in the queue's order. PostgreSQL
    keeps statistics per value and needs none of this (the tag filter does the same for tags).
    """
    few = select(Ticket.id).where(clause).limit(RARE_VALUE_TICKETS).subquery()
    if (session.scalar(select(func.count()).select_from(few)) or 0) >= RARE_VALUE_TICKETS:
        return clause
    inner = aliased(Ticket)
    by_value = custom_fields.filter_clause(session, field, value, inner.custom)
    return Ticket.id.in_(select(inner.id).where(by_value))


@dataclass
class Page:
    tickets: list[Ticket]
    next_cursor: str | None
    filter: QueueFilter = field(default_factory=QueueFilter)


def _encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise ServiceError(_l("Invalid page cursor.")) from None
    if not isinstance(values, list):
        raise ServiceError(_l("Invalid page cursor."))
    return values


# A tag on fewer tickets than this is fetched by its ticket list and sorted (bounded work);
# a more common tag is found by walking the view's own index in order and probing ticket_tags
# per row, which finds a page quickly precisely because the tag is common.
RARE_TAG_TICKETS = 5000

TagPlan = tuple[int | None, bool]


def _tag_plan(session: Session, name: str) -> TagPlan:
    """The tag's id and whether it is rare (a COUNT bounded by RARE_TAG_TICKETS), in one
    statement."""
    few = (
        select(ticket_tags.c.ticket_id)
        .where(ticket_tags.c.tag_id == Tag.id)
        .correlate(Tag)
        .limit(RARE_TAG_TICKETS)
        .subquery()
    )
    bounded = select(func.count()).select_from(few).scalar_subquery()
    row = session.execute(select(Tag.id, bounded).where(Tag.name == name)).first()
    if row is None:
        return None, True
    return row[0], (row[1] or 0) < RARE_TAG_TICKETS


def _base_query(
    flt: QueueFilter,
    agent: Agent | None,
    tag: TagPlan | None = None,
    start: Select[*tuple[Any, ...]] | None = None,
    custom: list[Any] | None = None,
) -> Select[Any]:
    """The view's filters on ``start`` (the tickets, or the columns :func:`queue_rows` reads);
    ``custom``: the custom fields' clauses (:func:`_custom_clauses`)."""
    q: Select[Any] = select(Ticket) if start is None else start
    for clause in custom or ():
        q = q.where(clause)
    if flt.view == "mine":
        if agent is None:
            raise ServiceError(_l("The view 'mine' needs an agent."))
        q = q.where(Ticket.assignee_id == agent.id, Ticket.active.is_(True))
    elif flt.view == "unassigned":
        q = q.where(Ticket.assignee_id.is_(None), Ticket.active.is_(True))
    elif flt.view == "open":
        q = q.where(Ticket.active.is_(True))
    elif flt.view == "pending":
        q = q.where(Ticket.status == TicketStatus.PENDING)
    elif flt.view == "resolved":
        q = q.where(Ticket.active.is_(False))
    elif flt.view == "breaching":
        # sla.utcnow: the SLA's clock (tests move it).
        q = q.where(Ticket.active.is_(True), Ticket.sla_due_at <= sla.utcnow() + BREACHING_SOON)
    if flt.status is not None:
        q = q.where(Ticket.status == flt.status)
    if flt.channel is not None:
        q = q.where(Ticket.channel == flt.channel)
    if flt.team_id is not None:
        q = q.where(Ticket.team_id == flt.team_id)
    if flt.assignee_id is not None:
        q = q.where(Ticket.assignee_id == flt.assignee_id)
    if flt.priority is not None:
        q = q.where(Ticket.priority == flt.priority)
    if flt.organization_id is not None:
        # The organization's customers (ix_customers_organization_id), then their tickets by
        # ix_tickets_customer_id, or the view's own index walked with the set as a filter:
        # the planner picks by how many there are. No join, so a row is still one ticket.
        q = q.where(
            Ticket.customer_id.in_(
                select(Customer.id).where(Customer.organization_id == flt.organization_id)
            )
        )
    if flt.tag:
        tag_id: Any
        if tag is None:  # no plan given: look the tag up by name inside the query
            tag_id, rare = select(Tag.id).where(Tag.name == flt.tag).scalar_subquery(), True
        else:
            tag_id, rare = tag
        if rare:
            q = q.where(
                Ticket.id.in_(select(ticket_tags.c.ticket_id).where(ticket_tags.c.tag_id == tag_id))
            )
        else:
            q = q.where(
                exists().where(ticket_tags.c.ticket_id == Ticket.id, ticket_tags.c.tag_id == tag_id)
            )
    return q


def _parse_dt(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ServiceError(_l("Invalid page cursor.")) from None


def sort_of(flt: QueueFilter) -> str:
    """The order the filter's page is in: "Breaching soon" is always soonest due first."""
    return "sla" if flt.view == "breaching" else flt.sort


def _apply_sort(q: Select[Any], sort: str, cursor: list[Any] | None) -> Select[Any]:
    try:
        if sort == "sla":
            q = q.where(Ticket.sla_due_at.is_not(None))
            if cursor:
                d, i = _parse_dt(cursor[0]), int(cursor[1])
                q = q.where(tuple_(Ticket.sla_due_at, Ticket.id) > (d, i))
            return q.order_by(Ticket.sla_due_at.asc(), Ticket.id.asc())
        if sort == "created":
            if cursor:
                q = q.where(Ticket.id < int(cursor[0]))
            return q.order_by(Ticket.id.desc())
        if sort == "oldest":
            if cursor:
                u, i = _parse_dt(cursor[0]), int(cursor[1])
                q = q.where(tuple_(Ticket.updated_at, Ticket.id) > (u, i))
            return q.order_by(Ticket.updated_at.asc(), Ticket.id.asc())
        if sort == "priority":
            if cursor:
                p, u, i = int(cursor[0]), _parse_dt(cursor[1]), int(cursor[2])
                q = q.where(tuple_(Ticket.priority, Ticket.updated_at, Ticket.id) < (p, u, i))
            return q.order_by(Ticket.priority.desc(), Ticket.updated_at.desc(), Ticket.id.desc())
        if cursor:
            u, i = _parse_dt(cursor[0]), int(cursor[1])
            # Row values, not an OR chain: SQLite and PostgreSQL turn them into an index range,
            # so a page in the middle of a million tickets starts there instead of at the top.
            q = q.where(tuple_(Ticket.updated_at, Ticket.id) < (u, i))
        return q.order_by(Ticket.updated_at.desc(), Ticket.id.desc())
    except (IndexError, TypeError, ValueError):
        raise ServiceError(_l("Invalid page cursor.")) from None


def _cursor_for(ticket: Ticket | QueueRow, sort: str) -> str:
    if sort == "created":
        return _encode_cursor([ticket.id])
    if sort == "priority":
        return _encode_cursor([ticket.priority, ticket.updated_at.isoformat(), ticket.id])
    if sort == "sla" and ticket.sla_due_at is not None:
        return _encode_cursor([ticket.sla_due_at.isoformat(), ticket.id])
    return _encode_cursor([ticket.updated_at.isoformat(), ticket.id])


def base_query(session: Session, flt: QueueFilter, agent: Agent | None) -> Select[Any]:
    """The view's filtered query without order or paging (for counts)."""
    tag = _tag_plan(session, flt.tag) if flt.tag else None
    return _base_query(flt, agent, tag, custom=_custom_clauses(session, flt))


def queue_page(
    session: Session,
    flt: QueueFilter,
    *,
    agent: Agent | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Page:
    cursor = _decode_cursor(after) if after else None
    tag = _tag_plan(session, flt.tag) if flt.tag else None
    custom = _custom_clauses(session, flt)
    q = _apply_sort(_base_query(flt, agent, tag, custom=custom), sort_of(flt), cursor)
    q = q.limit(limit + 1)
    q = q.options(
        # Only what a row shows of the people and the team (ticket_row's fields too): each
        # column loaded is converted per row, and an agent row has its password hash and five
        # more columns no list shows.
        joinedload(Ticket.customer).load_only(Customer.name, Customer.email),
        joinedload(Ticket.assignee).load_only(Agent.name, Agent.email),
        joinedload(Ticket.team).load_only(Team.name),
        selectinload(Ticket.tags),
    )
    rows = list(session.scalars(q).unique())
    next_cursor = _cursor_for(rows[limit - 1], sort_of(flt)) if len(rows) > limit else None
    return Page(rows[:limit], next_cursor, flt)


class QueueRow:
    """A ticket as a queue page's row shows it: plain values, no ORM object.

    The page reads 50 tickets with their customer and assignee on every request (live refreshes
    too); as ORM objects that was three objects per row, each with its instance state, identity
    map entry and every loaded column converted (a fifth of a page's CPU). The web page reads
    these instead (:func:`queue_rows`); the API and the CLI keep the full tickets
    (:func:`queue_page`).
    """

    __slots__ = (
        "assignee_name",
        "channel",
        "customer_name",
        "id",
        "message_count",
        "number",
        "priority",
        "sla_due_at",
        "status",
        "subject",
        "tags",
        "updated_at",
    )

    def __init__(
        self,
        id: int,
        number: int,
        subject: str,
        status: TicketStatus,
        priority: int,
        channel: ChannelKind,
        message_count: int,
        updated_at: datetime,
        customer_name: str,
        assignee_name: str | None,
        tags: list[str],
        sla_due_at: datetime | None = None,
    ) -> None:
        self.id = id
        self.number = number
        self.subject = subject
        self.status = status
        self.priority = priority
        self.channel = channel
        self.message_count = message_count
        self.updated_at = updated_at
        self.customer_name = customer_name  # as Customer.display_name
        self.assignee_name = assignee_name
        self.tags = tags  # names, sorted as Ticket.tags
        self.sla_due_at = sla_due_at  # the earliest running SLA target's due time

    @property
    def display_number(self) -> str:
        return f"#{self.number}"


@dataclass
class RowsPage:
    rows: list[QueueRow]
    next_cursor: str | None
    filter: QueueFilter = field(default_factory=QueueFilter)


def queue_rows(
    session: Session,
    flt: QueueFilter,
    *,
    agent: Agent | None = None,
    after: str | None = None,
    limit: int = 50,
) -> RowsPage:
    """The page of ``flt`` as :class:`QueueRow` values: the same tickets in the same order as
    :func:`queue_page` (same filters, sort and cursor, so the same index walk), in two
    statements: the tickets with their customer's and assignee's names, then their tags."""
    cursor = _decode_cursor(after) if after else None
    tag = _tag_plan(session, flt.tag) if flt.tag else None
    start = select(
        Ticket.id,
        Ticket.number,
        Ticket.subject,
        Ticket.status,
        Ticket.priority,
        Ticket.channel,
        Ticket.message_count,
        Ticket.updated_at,
        Ticket.customer_id,
        Customer.name,
        Customer.email,
        Agent.name,
        Ticket.sla_due_at,
    ).select_from(
        Ticket.__table__.join(Customer.__table__, Customer.id == Ticket.customer_id).outerjoin(
            Agent.__table__, Agent.id == Ticket.assignee_id
        )
    )
    custom = _custom_clauses(session, flt)
    q = _apply_sort(_base_query(flt, agent, tag, start, custom), sort_of(flt), cursor)
    q = q.limit(limit + 1)
    found = session.execute(q).all()
    names: dict[int, list[str]] = {}
    if found:
        ids = [r[0] for r in found[:limit]]
        for ticket_id, name in session.execute(
            select(ticket_tags.c.ticket_id, Tag.name)
            .join(Tag, Tag.id == ticket_tags.c.tag_id)
            .where(ticket_tags.c.ticket_id.in_(ids))
            .order_by(Tag.name)
        ):
            names.setdefault(ticket_id, []).append(name)
    rows = [
        QueueRow(
            tid,
            number,
            subject,
            status,
            priority,
            channel,
            count,
            updated,
            cname or cemail or f"#{cid}",
            aname,
            names.get(tid, []),
            due,
        )
        for (
            tid,
            number,
            subject,
            status,
            priority,
            channel,
            count,
            updated,
            cid,
            cname,
            cemail,
            aname,
            due,
        ) in found[:limit]
    ]
    next_cursor = _cursor_for(rows[limit - 1], sort_of(flt)) if len(found) > limit else None
    return RowsPage(rows, next_cursor, flt)


def iter_tickets(
    session: Session, flt: QueueFilter, *, agent: Agent | None = None, batch: int = 500
) -> Iterator[Ticket]:
    """Every matching ticket, page by page (the CLI's `tickets list` without --limit)."""
    after: str | None = None
    while True:
        page = queue_page(session, flt, agent=agent, after=after, limit=batch)
        yield from page.tickets
        if page.next_cursor is None:
            return
        after = page.next_cursor
        session.expunge_all()


def with_view(flt: QueueFilter, view: str) -> QueueFilter:
    return replace(flt, view=view)


def ticket_row(ticket: Ticket) -> dict[str, Any]:
    """A ticket as JSON for the API and `helpdesk tickets list --json`."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "priority": int(ticket.priority),
        "channel": ticket.channel.value,
        "customer_id": ticket.customer_id,
        "customer_name": ticket.customer.display_name,
        "customer_email": ticket.customer.email,
        "assignee": ticket.assignee.email if ticket.assignee else None,
        "assignee_name": ticket.assignee.name if ticket.assignee else None,
        "team": ticket.team.name if ticket.team else None,
        "tags": [t.name for t in ticket.tags],
        "message_count": ticket.message_count,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "first_response_at": (
            ticket.first_response_at.isoformat() if ticket.first_response_at else None
        ),
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
    }
