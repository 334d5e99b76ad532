"""One customer timeline: what happened with a customer (or every customer of an organization)
across channels, newest first: messages of their tickets (agents' replies and internal notes
too: the timeline is for agents only), status changes from the audit log, chats with the page
the visitor was on (a source the chat channel registers), tasks (created, due, done).

Each source is one query for at most ``limit + 1`` rows below the cursor, in its own
``(at, id)`` order; the pages are merged here. The order of the whole timeline is
``(at, source, id)`` descending, and a cursor is that key of the last entry shown, so entries
with the same time are neither lost nor shown twice across pages, and a page of a customer with
ten thousand messages costs the same few queries as the first page of a new one.

Sources beyond the core's are added with :func:`register_source` (the core never imports
``channels``): the chat channel registers ``chat`` in ``channels.registry.register_chat``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_, union
from sqlalchemy.orm import Session, aliased

from helpdesk.models import (
    Agent,
    AuditEvent,
    ChannelKind,
    Customer,
    Message,
    MessageKind,
    Task,
    TaskStatus,
    Ticket,
)

KINDS = ("message", "note", "status", "chat", "task", "satisfaction")
CHANNELS = ("email", "portal", "chat")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
PREVIEW_CHARS = 280


class InvalidCursor(ValueError):
    """A cursor this timeline did not make."""


@dataclass(frozen=True)
class TicketRef:
    id: int
    number: int
    subject: str


@dataclass(frozen=True)
class Entry:
    """One line of the timeline. ``data`` holds what the kind has (see docs/api.md)."""

    kind: str
    at: datetime
    source: str
    id: int
    channel: str | None
    ticket: TicketRef | None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[datetime, str, int]:
        return (self.at, self.source, self.id)


@dataclass(frozen=True)
class Cursor:
    at: datetime
    source: str
    id: int

    def encode(self) -> list[Any]:
        return [self.at.isoformat(), self.source, self.id]


@dataclass(frozen=True)
class Query:
    """What a source is asked: whose timeline, below which cursor, how many, which channel."""

    customer_ids: Select[Any] | list[int]
    organization_id: int | None
    before: Cursor | None
    limit: int
    channel: str | None
    kind: str | None

    def below(self, source: str, at: Any, id_: Any) -> ColumnElement[bool] | None:
        """The condition "after the cursor" for a source whose rows sort by ``(at, id)``."""
        c = self.before
        if c is None:
            return None
        if source == c.source:
            # A plain tuple: its values are bound with the columns' types (UTC on SQLite).
            return tuple_(at, id_) < (c.at, c.id)
        # Same time: sources sort by name, descending, before ids.
        return at <= c.at if source < c.source else at < c.at

    def tickets(self) -> Select[Any]:
        """The ids of the tickets of these customers."""
        return select(Ticket.id).where(Ticket.customer_id.in_(self.customer_ids))


@dataclass(frozen=True)
class Source:
    name: str
    kinds: frozenset[str]
    read: Callable[[Session, Query], list[Entry]]
    # The channels its entries can have (None: any, by their ticket).
    channels: frozenset[str] | None = None


@dataclass
class Page:
    entries: list[Entry]
    next: Cursor | None


_sources: dict[str, Source] = {}


def register_source(
    name: str,
    kinds: Iterable[str],
    read: Callable[[Session, Query], list[Entry]],
    channels: Iterable[str] | None = None,
) -> None:
    """Add (or replace) a source of timeline entries. ``read`` returns at most ``q.limit + 1``
    entries below ``q.below(name, ...)``, newest first, honouring ``q.channel`` and ``q.kind``."""
    _sources[name] = Source(
        name, frozenset(kinds), read, None if channels is None else frozenset(channels)
    )


def source_names() -> list[str]:
    return sorted(_sources)


def encode_cursor(cursor: Cursor) -> str:
    """The opaque text of a cursor (the web's "Older" link and the API's ``next_cursor``)."""
    raw = json.dumps(["timeline", *cursor.encode()], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor :func:`encode_cursor` made; :class:`InvalidCursor` for anything else."""
    try:
        padded = text + "=" * (-len(text) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor from None
    if not isinstance(values, list) or not values or values[0] != "timeline":
        raise InvalidCursor
    return parse_cursor(values[1:])


def parse_cursor(values: list[Any]) -> Cursor:
    """A cursor from its encoded values (``Cursor.encode``); :class:`InvalidCursor` otherwise."""
    try:
        at_raw, source, id_ = values
        at = datetime.fromisoformat(str(at_raw))
        if at.tzinfo is None or source not in _sources:
            raise ValueError("not ours")
        if not isinstance(id_, int) or isinstance(id_, bool) or not 0 < id_ < 2**31:
            raise ValueError("not an id")
        if not 1900 <= at.year <= 9000:
            raise ValueError("out of range")
    except (ValueError, TypeError, OverflowError):
        raise InvalidCursor from None
    return Cursor(at.astimezone(UTC), str(source), id_)


def customer_timeline(
    session: Session,
    customer_id: int,
    *,
    before: Cursor | None = None,
    limit: int = DEFAULT_LIMIT,
    channel: str | None = None,
    kind: str | None = None,
) -> Page:
    """One customer's timeline page, newest first."""
    return _page(session, Query([customer_id], None, before, limit, channel, kind))


def organization_timeline(
    session: Session,
    organization_id: int,
    *,
    before: Cursor | None = None,
    limit: int = DEFAULT_LIMIT,
    channel: str | None = None,
    kind: str | None = None,
) -> Page:
    """The timeline of every customer of an organization (and the organization's own tasks)."""
    members = select(Customer.id).where(Customer.organization_id == organization_id)
    return _page(session, Query(members, organization_id, before, limit, channel, kind))


def _page(session: Session, q: Query) -> Page:
    if q.channel is not None and q.channel not in CHANNELS:
        raise ValueError(f"unknown channel {q.channel!r}")
    if q.kind is not None and q.kind not in KINDS:
        raise ValueError(f"unknown kind {q.kind!r}")
    q = Query(
        q.customer_ids,
        q.organization_id,
        q.before,
        max(1, min(q.limit, MAX_LIMIT)),
        q.channel,
        q.kind,
    )
    found: list[Entry] = []
    for source in _sources.values():
        if q.kind is not None and q.kind not in source.kinds:
            continue
        if (
            q.channel is not None
            and source.channels is not None
            and q.channel not in source.channels
        ):
            continue
        found.extend(source.read(session, q))
    found.sort(key=lambda e: e.key, reverse=True)
    shown = found[: q.limit]
    more = len(found) > q.limit
    last = shown[-1] if shown else None
    return Page(shown, Cursor(last.at, last.source, last.id) if more and last else None)


# --- the core's sources --------------------------------------------------------------------------


def _ticket(row: Any) -> TicketRef:
    return TicketRef(row.ticket_id, row.number, row.subject)


def _messages(session: Session, q: Query) -> list[Entry]:
    # The page's ids first, from the narrow columns (a customer's thousands of messages are
    # sorted without their bodies or joins); then the page's rows with what they show.
    page = select(Message.id).where(
        Message.ticket_id.in_(q.tickets()), Message.kind != MessageKind.SYSTEM
    )
    if q.kind == "note":
        page = page.where(Message.kind == MessageKind.NOTE)
    elif q.kind == "message":
        page = page.where(Message.kind != MessageKind.NOTE)
    if q.channel is not None:
        # A message's channel is its own; a note's is its ticket's.
        notes_here = select(Ticket.id).where(
            Ticket.customer_id.in_(q.customer_ids), Ticket.channel == ChannelKind(q.channel)
        )
        page = page.where(
            or_(
                and_(Message.kind != MessageKind.NOTE, Message.kind == MessageKind(q.channel)),
                and_(Message.kind == MessageKind.NOTE, Message.ticket_id.in_(notes_here)),
            )
        )
    below = q.below("message", Message.created_at, Message.id)
    if below is not None:
        page = page.where(below)
    ids = page.order_by(Message.created_at.desc(), Message.id.desc()).limit(q.limit + 1).subquery()
    author_agent = aliased(Agent)
    author_customer = aliased(Customer)
    stmt = (
        select(
            Message.id,
            Message.created_at,
            Message.kind,
            Message.direction,
            Message.recipients,
            func.substr(Message.body_text, 1, PREVIEW_CHARS).label("preview"),
            Message.ticket_id,
            Ticket.number,
            Ticket.subject,
            Ticket.channel.label("ticket_channel"),
            author_agent.name.label("agent_name"),
            author_customer.name.label("customer_name"),
            author_customer.email.label("customer_email"),
        )
        .join(ids, ids.c.id == Message.id)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .outerjoin(author_agent, author_agent.id == Message.author_agent_id)
        .outerjoin(author_customer, author_customer.id == Message.author_customer_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
    )
    entries = []
    for row in session.execute(stmt):
        note = row.kind is MessageKind.NOTE
        channel = row.ticket_channel.value if note else row.kind.value
        author = row.agent_name or row.customer_name or row.customer_email or ""
        entries.append(
            Entry(
                "note" if note else "message",
                row.created_at,
                "message",
                row.id,
                channel,
                _ticket(row),
                {
                    "direction": row.direction.value,
                    "author": {
                        "type": "agent" if row.agent_name else "customer",
                        "name": author,
                    },
                    "preview": " ".join((row.preview or "").split()),
                    "recipients": list(row.recipients or []),
                },
            )
        )
    return entries


def _status_changes(session: Session, q: Query) -> list[Entry]:
    actor_agent = aliased(Agent)
    actor_customer = aliased(Customer)
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.created_at,
            AuditEvent.data,
            AuditEvent.ticket_id,
            Ticket.number,
            Ticket.subject,
            Ticket.channel,
            actor_agent.name.label("agent_name"),
            actor_customer.name.label("customer_name"),
            actor_customer.email.label("customer_email"),
        )
        .join(Ticket, Ticket.id == AuditEvent.ticket_id)
        .outerjoin(actor_agent, actor_agent.id == AuditEvent.actor_agent_id)
        .outerjoin(actor_customer, actor_customer.id == AuditEvent.actor_customer_id)
        .where(AuditEvent.ticket_id.in_(q.tickets()), AuditEvent.action == "ticket.status")
    )
    if q.channel is not None:
        stmt = stmt.where(Ticket.channel == ChannelKind(q.channel))
    below = q.below("status", AuditEvent.created_at, AuditEvent.id)
    if below is not None:
        stmt = stmt.where(below)
    stmt = stmt.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(q.limit + 1)
    entries = []
    for row in session.execute(stmt):
        data = row.data or {}
        actor = None
        if row.agent_name:
            actor = {"type": "agent", "name": row.agent_name}
        elif row.customer_name is not None:
            actor = {"type": "customer", "name": row.customer_name or row.customer_email or ""}
        entries.append(
            Entry(
                "status",
                row.created_at,
                "status",
                row.id,
                row.channel.value,
                _ticket(row),
                {"from": data.get("from"), "to": data.get("to"), "actor": actor},
            )
        )
    return entries


def _task_source(name: str, event: str) -> Callable[[Session, Query], list[Entry]]:
    at_column = {"created": Task.created_at, "due": Task.due_at, "done": Task.completed_at}[event]

    def read(session: Session, q: Query) -> list[Entry]:
        # One index range per link (customer, ticket, organization), not a scan of every task.
        links = [
            select(Task.id).where(Task.customer_id.in_(q.customer_ids)),
            select(Task.id).where(Task.ticket_id.in_(q.tickets())),
        ]
        if q.organization_id:
            links.append(select(Task.id).where(Task.organization_id == q.organization_id))
        linked = Task.id.in_(union(*links))
        stmt = (
            select(
                Task.id,
                at_column.label("at"),
                Task.title,
                Task.status,
                Task.due_at,
                Task.ticket_id,
                Ticket.number,
                Ticket.subject,
                Ticket.channel,
                Agent.name.label("assignee"),
            )
            .outerjoin(Ticket, Ticket.id == Task.ticket_id)
            .join(Agent, Agent.id == Task.assignee_id)
            .where(linked, at_column.is_not(None))
        )
        if event == "due":
            # A due time is news while the task is open; a done task shows when it was done.
            stmt = stmt.where(Task.status == TaskStatus.OPEN)
        if q.channel is not None:
            stmt = stmt.where(Ticket.channel == ChannelKind(q.channel))
        below = q.below(name, at_column, Task.id)
        if below is not None:
            stmt = stmt.where(below)
        stmt = stmt.order_by(at_column.desc(), Task.id.desc()).limit(q.limit + 1)
        return [
            Entry(
                "task",
                row.at,
                name,
                row.id,
                row.channel.value if row.channel is not None else None,
                _ticket(row) if row.ticket_id is not None else None,
                {
                    "event": event,
                    "title": row.title,
                    "status": row.status.value,
                    "due_at": row.due_at,
                    "assignee": row.assignee,
                },
            )
            for row in session.execute(stmt)
        ]

    return read


register_source("message", ("message", "note"), _messages)
register_source("status", ("status",), _status_changes)
register_source("task_created", ("task",), _task_source("task_created", "created"))
register_source("task_due", ("task",), _task_source("task_due", "due"))
register_source("task_done", ("task",), _task_source("task_done", "done"))
