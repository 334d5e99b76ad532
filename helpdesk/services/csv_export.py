"""CSV exports of customers, organizations and the queue's tickets, streamed: each is a
generator of text chunks that reads the tables in keyset chunks of plain rows (no ORM objects,
nothing kept from one chunk to the next), so a million tickets stream in constant memory.

The files open in a spreadsheet as they are: UTF-8 with a byte order mark (Excel then shows
Bengali), a header line, ISO 8601 times with their offset (UTC), ``;``-separated lists inside a
cell. A cell starting with ``=``, ``+``, ``-`` or ``@`` gets a leading ``'`` so a spreadsheet
does not run it as a formula; the CSV import takes that ``'`` off again, so a customers' export
imports back unchanged (its extra columns are reported as ignored).

Custom fields: one column per active field of the exported object after the built-in ones,
headed ``cf.<key>`` (the prefix of the queue's filter arguments; a field's key cannot collide
with a built-in column's name, whatever it is), each cell ``custom_fields.export_value`` (option
values, ISO dates, ``true``/``false``, a multi-select's values separated by ``, ``), which the
CSV import reads back. The definitions are read once, before the first chunk.

Each chunk's read transaction is ended before the next chunk (a long export holds no snapshot
on PostgreSQL and no read lock on SQLite's WAL checkpoints); the keyset makes that safe: a row
changed meanwhile is written as it is when its chunk is read. Read-only, like ``queue``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, aliased

from helpdesk.models import (
    Agent,
    Customer,
    CustomField,
    FieldObject,
    Organization,
    OrganizationDomain,
    Tag,
    Team,
    Ticket,
    ticket_tags,
)
from helpdesk.services import custom_fields
from helpdesk.services.queue import QueueFilter, _base_query, _custom_clauses, _tag_plan

CHUNK = 2000
CUSTOM_PREFIX = "cf."
BOM = "\ufeff"
_FORMULA = ("=", "+", "-", "@")

CUSTOMER_COLUMNS = (
    "email",
    "name",
    "language",
    "organization",
    "notes",
    "id",
    "created_at",
    "updated_at",
)
ORGANIZATION_COLUMNS = ("name", "domains", "notes", "id", "customers", "created_at")
TICKET_COLUMNS = (
    "number",
    "subject",
    "status",
    "priority",
    "channel",
    "customer_name",
    "customer_email",
    "organization",
    "assignee",
    "team",
    "tags",
    "message_count",
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "id",
)


def cell(value: Any) -> str:
    """One value as a cell: times in ISO 8601, enums by value, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, int | str):
        value = value.value
    text = str(value)
    if text.startswith(_FORMULA):
        return "'" + text
    return text


def _lines(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def _header(columns: Sequence[str]) -> str:
    return BOM + _lines([columns])


def _end_read(session: Session) -> None:
    # Nothing is pending in an export; ending the transaction lets go of its snapshot.
    session.rollback()


def _custom_fields(session: Session, object_type: FieldObject) -> list[CustomField]:
    """The object's active fields, detached: each chunk's rollback would expire them, and
    reading a field after that would load it again, once per chunk."""
    fields = custom_fields.fields_for(session, object_type)
    for each in fields:
        session.expunge(each)
    return fields


def custom_header(fields: Sequence[CustomField]) -> list[str]:
    return [f"{CUSTOM_PREFIX}{f.key}" for f in fields]


def _custom_cells(fields: Sequence[CustomField], values: dict[str, Any] | None) -> list[str]:
    values = values or {}
    return [custom_fields.export_value(f, values.get(f.key)) for f in fields]


def customers_csv(session: Session) -> Iterator[str]:
    fields = _custom_fields(session, FieldObject.CUSTOMER)
    yield _header([*CUSTOMER_COLUMNS, *custom_header(fields)])
    last = 0
    while True:
        rows = session.execute(
            select(
                Customer.email,
                Customer.name,
                Customer.language,
                Organization.name,
                Customer.notes,
                Customer.id,
                Customer.created_at,
                Customer.updated_at,
                Customer.custom,
            )
            .outerjoin(Organization, Organization.id == Customer.organization_id)
            .where(Customer.id > last)
            .order_by(Customer.id)
            .limit(CHUNK)
        ).all()
        _end_read(session)
        if not rows:
            return
        last = rows[-1][5]
        yield _lines([*row[:-1], *_custom_cells(fields, row[-1])] for row in rows)


def organizations_csv(session: Session) -> Iterator[str]:
    fields = _custom_fields(session, FieldObject.ORGANIZATION)
    yield _header([*ORGANIZATION_COLUMNS, *custom_header(fields)])
    last = 0
    while True:
        orgs = session.execute(
            select(
                Organization.id,
                Organization.name,
                Organization.notes,
                Organization.created_at,
                Organization.custom,
            )
            .where(Organization.id > last)
            .order_by(Organization.id)
            .limit(CHUNK)
        ).all()
        if not orgs:
            _end_read(session)
            return
        ids = [o[0] for o in orgs]
        domains: dict[int, list[str]] = {}
        for org_id, domain in session.execute(
            select(OrganizationDomain.organization_id, OrganizationDomain.domain)
            .where(OrganizationDomain.organization_id.in_(ids))
            .order_by(OrganizationDomain.domain)
        ):
            domains.setdefault(org_id, []).append(domain)
        members: dict[int, int] = {
            int(org_id or 0): int(n)
            for org_id, n in session.execute(
                select(Customer.organization_id, func.count())
                .where(Customer.organization_id.in_(ids))
                .group_by(Customer.organization_id)
            )
        }
        _end_read(session)
        last = ids[-1]
        yield _lines(
            (
                name,
                "; ".join(domains.get(oid, [])),
                notes,
                oid,
                members.get(oid, 0),
                created,
                *_custom_cells(fields, custom),
            )
            for oid, name, notes, created, custom in orgs
        )


def _ticket_cursor(sort: str, row: Any) -> tuple[Any, ...]:
    if sort == "created":
        return (row.id,)
    if sort == "priority":
        return (row.priority, row.updated_at, row.id)
    return (row.updated_at, row.id)


def _after(sort: str, cursor: tuple[Any, ...] | None) -> tuple[Any, list[Any]]:
    """The keyset condition past ``cursor`` and the order of the queue's ``sort``."""
    if sort == "created":
        return (Ticket.id < cursor[0] if cursor else None), [Ticket.id.desc()]
    if sort == "oldest":
        cond = tuple_(Ticket.updated_at, Ticket.id) > cursor if cursor else None
        return cond, [Ticket.updated_at.asc(), Ticket.id.asc()]
    if sort == "priority":
        cond = tuple_(Ticket.priority, Ticket.updated_at, Ticket.id) < cursor if cursor else None
        return cond, [Ticket.priority.desc(), Ticket.updated_at.desc(), Ticket.id.desc()]
    cond = tuple_(Ticket.updated_at, Ticket.id) < cursor if cursor else None
    return cond, [Ticket.updated_at.desc(), Ticket.id.desc()]


def tickets_csv(session: Session, flt: QueueFilter, agent: Agent | None = None) -> Iterator[str]:
    """The tickets of the queue's view and filters (custom fields' too), in its order (its
    indexes do the work). The definitions are read and the filter checked now, so an unknown
    field is a ServiceError before any row (a 400, not a broken download)."""
    fields = _custom_fields(session, FieldObject.TICKET)
    # Built once: the clauses hold the values, not the (detached) definitions.
    custom = _custom_clauses(session, flt)
    return _ticket_chunks(session, flt, agent, fields, custom)


def _ticket_chunks(
    session: Session,
    flt: QueueFilter,
    agent: Agent | None,
    fields: list[CustomField],
    custom: list[Any],
) -> Iterator[str]:
    yield _header([*TICKET_COLUMNS, *custom_header(fields)])
    agent_id = agent.id if agent is not None else None
    tag = _tag_plan(session, flt.tag) if flt.tag else None
    assignee = aliased(Agent)
    org = aliased(Organization)
    start = (
        select(
            Ticket.id,
            Ticket.number,
            Ticket.subject,
            Ticket.status,
            Ticket.priority,
            Ticket.channel,
            Customer.name.label("customer_name"),
            Customer.email.label("customer_email"),
            org.name.label("organization"),
            assignee.email.label("assignee"),
            Team.name.label("team"),
            Ticket.message_count,
            Ticket.created_at,
            Ticket.updated_at,
            Ticket.first_response_at,
            Ticket.resolved_at,
            Ticket.custom,
        )
        .join(Customer, Customer.id == Ticket.customer_id)
        .outerjoin(org, org.id == Customer.organization_id)
        .outerjoin(assignee, assignee.id == Ticket.assignee_id)
        .outerjoin(Team, Team.id == Ticket.team_id)
    )
    cursor: tuple[Any, ...] | None = None
    while True:
        me = session.get(Agent, agent_id) if agent_id is not None else None
        cond, order = _after(flt.sort, cursor)
        q = _base_query(flt, me, tag, start, custom)
        if cond is not None:
            q = q.where(cond)
        rows = session.execute(q.order_by(*order).limit(CHUNK)).all()
        if not rows:
            _end_read(session)
            return
        tags: dict[int, list[str]] = {}
        for ticket_id, name in session.execute(
            select(ticket_tags.c.ticket_id, Tag.name)
            .join(Tag, Tag.id == ticket_tags.c.tag_id)
            .where(ticket_tags.c.ticket_id.in_([r.id for r in rows]))
            .order_by(Tag.name)
        ):
            tags.setdefault(ticket_id, []).append(name)
        _end_read(session)
        cursor = _ticket_cursor(flt.sort, rows[-1])
        yield _lines(
            (
                r.number,
                r.subject,
                r.status,
                int(r.priority),
                r.channel,
                r.customer_name,
                r.customer_email,
                r.organization,
                r.assignee,
                r.team,
                "; ".join(tags.get(r.id, [])),
                r.message_count,
                r.created_at,
                r.updated_at,
                r.first_response_at,
                r.resolved_at,
                r.id,
                *_custom_cells(fields, r.custom),
            )
            for r in rows
        )
