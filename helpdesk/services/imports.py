"""Importing tickets from another helpdesk (issue 14): years of history, in bulk.

:func:`parse_tickets` checks a whole request first (every problem named by its place,
``tickets.3.messages.0.created_at``; nothing is written when one ticket is wrong), then
:func:`import_tickets` writes the tickets with Core statements, a few per table per request,
not an ORM object graph per ticket (that is what makes 1,000 tickets a second reachable).

What an imported ticket keeps: its times as given (created, updated, resolved, every
message's), its status, priority, channel, tags (created like ``services.tags`` does), its
customer (by email, the customer identity rules: the same address, in any case, is one
customer, in the request and already stored) and Cc'd people as participants, its messages
(customer's inbound, agents' outbound as already sent, internal notes). Numbers come from the
one ticket counter, so they never clash with tickets opened meanwhile and continue the sequence.
An ``external_id`` (the ticket's id in the other helpdesk) is stored unique: a ticket whose
``external_id`` was imported before is skipped and answered with the number it got then, so an
interrupted migration can simply be run again.

What an import does not do: no mail, acknowledgement, notification, auto-assignment, rule or
live announcement per ticket, and no ``ticket.created``/``message.created`` events (a webhook
would otherwise fire for each of years of tickets). The stream gets one ``tickets.imported``
event per request (count, number range, customers created). The tickets are still in every
read path: the queue (and its counts, ``services.counts.adjust``), the customers' pages, the
ticket search (``search_index.tickets_written``: the documents are written at commit, in the
same transaction), the API.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.html import text_to_html
from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    AuditEvent,
    ChannelKind,
    Customer,
    CustomerIdentity,
    DeliveryStatus,
    Direction,
    IdentityKind,
    Message,
    MessageKind,
    Priority,
    Tag,
    Ticket,
    TicketStatus,
    ticket_participants,
    ticket_tags,
)
from helpdesk.services import counts, organizations, search_index, stream
from helpdesk.services.customers import clip_name, fill_in, normalize_email
from helpdesk.services.errors import Forbidden, ServiceError
from helpdesk.services.organizations import email_domain
from helpdesk.services.tags import get_or_create_tag, normalize_tag
from helpdesk.services.tickets import reserve_ticket_numbers

MAX_TICKETS = 1000  # per request
# Per request too: a request's writing holds SQLite's write lock (mail and agents wait), about
# a second for 1,000 tickets of 4-5 messages; this keeps the longest under ~5 s.
MAX_REQUEST_MESSAGES = 20_000
MAX_MESSAGES = 500  # per ticket
MAX_TEXT = 100_000  # a message's body, as POST /api/v1/tickets
MAX_SUBJECT = 500
MAX_EXTERNAL_ID = 255
MAX_FIELD_ERRORS = 50  # a request with thousands of bad rows names the first ones
_IN_CHUNK = 500

_KIND_BY_CHANNEL = {
    ChannelKind.EMAIL: MessageKind.EMAIL,
    ChannelKind.PORTAL: MessageKind.PORTAL,
    ChannelKind.CHAT: MessageKind.CHAT,
}
_CUSTOMERS = cast(Table, Customer.__table__)
_IDENTITIES = cast(Table, CustomerIdentity.__table__)
_TICKETS = cast(Table, Ticket.__table__)
_MESSAGES = cast(Table, Message.__table__)
_AUDIT = cast(Table, AuditEvent.__table__)
# The columns each import writes (the others take their defaults: NULL, or none at all).
_CUSTOMER_COLUMNS = (
    "id",
    "name",
    "email",
    "language",
    "organization_id",
    "notes",
    "created_at",
    "updated_at",
)
_IDENTITY_COLUMNS = ("customer_id", "kind", "value", "verified", "bouncing", "created_at")
_TICKET_COLUMNS = (
    "id",
    "number",
    "subject",
    "status",
    "active",
    "priority",
    "channel",
    "customer_id",
    "language",
    "version",
    "external_id",
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "last_message_at",
    "message_count",
)
_MESSAGE_COLUMNS = (
    "ticket_id", "direction", "kind", "internal", "author_customer_id", "author_agent_id",
    "subject", "body_text", "body_html", "references", "recipients", "meta", "delivery_status",
    "delivery_attempts", "sent_at", "created_at",
)  # fmt: skip
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,4})?$")


class InvalidImport(ServiceError):
    """A 422: what is wrong, by the place in the request (``tickets.3.messages.0.body``)."""

    code = "invalid"

    def __init__(self, fields: dict[str, str], *, code: str | None = None) -> None:
        super().__init__(_("Some tickets are not valid; nothing was imported."), code=code)
        self.fields = fields


@dataclass(slots=True)
class ImportMessage:
    body: str
    created_at: datetime
    from_agent: bool
    agent_email: str | None
    internal: bool
    position: int = 0  # in the request's list (errors name it; the list is stored by time)


@dataclass(slots=True)
class ImportTicket:
    subject: str
    status: TicketStatus
    priority: int
    channel: ChannelKind
    language: str | None
    created_at: datetime
    updated_at: datetime | None
    resolved_at: datetime | None
    customer_email: str
    customer_name: str
    cc: list[tuple[str, str]]
    tags: list[str]
    external_id: str | None
    messages: list[ImportMessage]


@dataclass(frozen=True, slots=True)
class ImportedTicket:
    number: int
    external_id: str | None
    skipped: bool = False


@dataclass(slots=True)
class ImportResult:
    tickets: list[ImportedTicket] = field(default_factory=list)
    customers_created: int = 0

    @property
    def imported(self) -> int:
        return sum(1 for t in self.tickets if not t.skipped)

    @property
    def skipped(self) -> int:
        return sum(1 for t in self.tickets if t.skipped)


# --- checking ---------------------------------------------------------------------------------


def _clean(value: str) -> bool:
    """Text a database column can hold: no NUL, no lone surrogate (JSON's ``"\\ud800"``)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time with its offset, in UTC; None when it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


class _Checker:
    """Collects field errors (at most :data:`MAX_FIELD_ERRORS`) while reading a request."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, where: str, message: str) -> None:
        if len(self.errors) < MAX_FIELD_ERRORS:
            self.errors.setdefault(where, message)

    def text(
        self, data: dict[str, Any], key: str, where: str, limit: int, required: bool = True
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(f"{where}.{key}", _("This field is required."))
            return None
        if not isinstance(value, str):
            self.fail(f"{where}.{key}", _("Must be text."))
            return None
        if not _clean(value):
            self.fail(f"{where}.{key}", _("Must be text without NUL characters."))
            return None
        if len(value) > limit:
            self.fail(f"{where}.{key}", _("At most %(n)d characters.", n=limit))
            return None
        if required and not value.strip():
            self.fail(f"{where}.{key}", _("This field is required."))
            return None
        return value

    def time(
        self, data: dict[str, Any], key: str, where: str, required: bool = True
    ) -> datetime | None:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(f"{where}.{key}", _("This field is required."))
            return None
        parsed = parse_time(value)
        if parsed is None:
            self.fail(
                f"{where}.{key}",
                _("Not a time with a time zone (ISO 8601, e.g. 2021-03-04T10:15:00+06:00)."),
            )
        return parsed

    def email(self, data: dict[str, Any], key: str, where: str) -> str | None:
        value = self.text(data, key, where, 320)
        if value is None:
            return None
        try:
            return normalize_email(value)
        except ServiceError:
            self.fail(f"{where}.{key}", _("Not an email address."))
            return None

    def obj(self, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(where, _("Must be an object."))
            return None
        return value


def parse_tickets(raw: Any, *, start: int = 0) -> list[ImportTicket]:
    """Check a request's ``tickets`` (parsed JSON) and read them; raises :class:`InvalidImport`
    naming every problem found (up to 50) when any ticket is wrong. ``start``: the index of
    the first one in the names of errors (a file read in parts)."""
    c = _Checker()
    if not isinstance(raw, list) or not raw:
        c.fail("tickets", _("A list of at least one ticket is required."))
        raise InvalidImport(c.errors)
    if len(raw) > MAX_TICKETS:
        raise InvalidImport(
            {"tickets": _("At most %(n)d tickets per request.", n=MAX_TICKETS)},
            code="too_many_tickets",
        )
    total = sum(
        len(t["messages"])
        for t in raw
        if isinstance(t, dict) and isinstance(t.get("messages"), list)
    )
    if total > MAX_REQUEST_MESSAGES:
        raise InvalidImport(
            {"tickets": _("At most %(n)d messages per request.", n=MAX_REQUEST_MESSAGES)},
            code="too_many_messages",
        )
    parsed: list[ImportTicket] = []
    seen_external: dict[str, int] = {}
    for i, item in enumerate(raw, start=start):
        where = f"tickets.{i}"
        data = c.obj(item, where)
        if data is None:
            continue
        ticket = _parse_ticket(c, data, where)
        if ticket is not None and ticket.external_id is not None:
            first = seen_external.setdefault(ticket.external_id, i)
            if first != i:
                c.fail(
                    f"{where}.external_id",
                    _("The same external_id as tickets.%(index)d.", index=first),
                )
        if ticket is not None:
            parsed.append(ticket)
    if c.errors:
        raise InvalidImport(c.errors)
    return parsed


def _parse_ticket(c: _Checker, data: dict[str, Any], where: str) -> ImportTicket | None:
    before = len(c.errors)
    subject = c.text(data, "subject", where, MAX_SUBJECT)
    status = TicketStatus.OPEN
    if data.get("status") is not None:
        try:
            status = TicketStatus(data["status"])
        except (ValueError, TypeError):
            c.fail(f"{where}.status", _("Unknown status."))
    priority = int(Priority.NORMAL)
    if data.get("priority") is not None:
        value = data["priority"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
            c.fail(f"{where}.priority", _("Unknown priority."))
        else:
            priority = value
    channel = ChannelKind.EMAIL
    if data.get("channel") is not None:
        try:
            channel = ChannelKind(data["channel"])
        except (ValueError, TypeError):
            c.fail(f"{where}.channel", _("Unknown channel."))
    language = c.text(data, "language", where, 8, required=False)
    if language is not None and not _LANGUAGE.match(language):
        c.fail(f"{where}.language", _("Not a language code (e.g. en, bn)."))
    created_at = c.time(data, "created_at", where)
    updated_at = c.time(data, "updated_at", where, required=False)
    resolved_at = c.time(data, "resolved_at", where, required=False)
    external_id = c.text(data, "external_id", where, MAX_EXTERNAL_ID, required=False)
    if data.get("external_id") is not None and external_id is not None:
        external_id = external_id.strip() or None
        if external_id is None:
            c.fail(f"{where}.external_id", _("This field is required."))
    email, name = "", ""
    customer = data.get("customer")
    if customer is None:
        c.fail(f"{where}.customer", _("This field is required."))
    elif (person := c.obj(customer, f"{where}.customer")) is not None:
        email = c.email(person, "email", f"{where}.customer") or ""
        name = c.text(person, "name", f"{where}.customer", 1000, required=False) or ""
    cc: list[tuple[str, str]] = []
    if data.get("cc") is not None:
        if not isinstance(data["cc"], list) or len(data["cc"]) > 50:
            c.fail(f"{where}.cc", _("Must be a list of at most %(n)d people.", n=50))
        else:
            for j, entry in enumerate(data["cc"]):
                person = c.obj(entry, f"{where}.cc.{j}")
                if person is not None:
                    address = c.email(person, "email", f"{where}.cc.{j}")
                    label = c.text(person, "name", f"{where}.cc.{j}", 1000, required=False)
                    if address:
                        cc.append((address, label or ""))
    tags: list[str] = []
    if data.get("tags") is not None:
        if not isinstance(data["tags"], list) or len(data["tags"]) > 50:
            c.fail(f"{where}.tags", _("Must be a list of at most %(n)d tags.", n=50))
        else:
            for j, tag in enumerate(data["tags"]):
                if not isinstance(tag, str) or not _clean(tag):
                    c.fail(f"{where}.tags.{j}", _("Must be text."))
                    continue
                try:
                    tags.append(normalize_tag(tag))
                except ServiceError as exc:
                    c.fail(f"{where}.tags.{j}", str(exc))
    messages: list[ImportMessage] = []
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        c.fail(f"{where}.messages", _("A list of at least one message is required."))
    elif len(raw_messages) > MAX_MESSAGES:
        c.fail(f"{where}.messages", _("At most %(n)d messages per ticket.", n=MAX_MESSAGES))
    else:
        for j, entry in enumerate(raw_messages):
            message = _parse_message(c, entry, f"{where}.messages.{j}")
            if message is not None:
                message.position = j
                messages.append(message)
    if len(c.errors) > before or subject is None or created_at is None:
        return None
    # The timeline in time order (ids follow it); a stable sort keeps equal times as given.
    messages.sort(key=lambda m: m.created_at)
    return ImportTicket(
        subject=" ".join(subject.split())[:MAX_SUBJECT],
        status=status,
        priority=priority,
        channel=channel,
        language=language,
        created_at=created_at,
        updated_at=updated_at,
        resolved_at=resolved_at,
        customer_email=email,
        customer_name=clip_name(name),
        cc=cc,
        tags=sorted(set(tags)),
        external_id=external_id,
        messages=messages,
    )


def _parse_message(c: _Checker, entry: Any, where: str) -> ImportMessage | None:
    data = c.obj(entry, where)
    if data is None:
        return None
    before = len(c.errors)
    body = c.text(data, "body", where, MAX_TEXT)
    created_at = c.time(data, "created_at", where)
    author = data.get("author")
    if author not in ("customer", "agent"):
        c.fail(f"{where}.author", _("Must be “customer” or “agent”."))
    agent_email: str | None = None
    if data.get("agent") is not None:
        agent_email = c.email(data, "agent", where)
        if author == "customer":
            c.fail(f"{where}.agent", _("Only an agent's message names an agent."))
    internal = data.get("internal", False)
    if not isinstance(internal, bool):
        c.fail(f"{where}.internal", _("Must be true or false."))
    elif internal and author == "customer":
        c.fail(f"{where}.internal", _("Only an agent's message can be internal."))
    if len(c.errors) > before or body is None or created_at is None:
        return None
    return ImportMessage(
        body=body,
        created_at=created_at,
        from_agent=author == "agent",
        agent_email=agent_email,
        internal=bool(internal),
    )


# --- writing ----------------------------------------------------------------------------------


def import_tickets(session: Session, actor: Agent, tickets: Sequence[ImportTicket]) -> ImportResult:
    """Write ``tickets`` (from :func:`parse_tickets`) in the caller's transaction; the caller
    commits. Raises :class:`InvalidImport` (nothing written) for an agent email nobody has.

    Runs in a savepoint, redone once if a concurrent transaction stored one of its customers'
    addresses or external ids between the look-ups and the inserts (PostgreSQL; SQLite's write
    lock leaves no such gap): the second round finds them.
    """
    if not actor.is_admin:
        raise Forbidden(_("Only admins may import tickets."))
    session.flush()
    # COPY (PostgreSQL) raises the driver's own error, not SQLAlchemy's wrapper.
    driver = session.get_bind().dialect.loaded_dbapi
    clashes = (IntegrityError, getattr(driver, "IntegrityError", IntegrityError))
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return _import(session, actor, tickets)
        except clashes:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _Sql:
    """Rows written straight through the database driver, one ``executemany`` per table.

    SQLAlchemy's Core INSERT runs every value of every row through its type's bind processor
    (a time through ``UTCDateTime`` and the dialect's formatting, an enum through its
    validation, JSON through ``json.dumps``): two thirds of an import's CPU. Here the values
    are given as the driver takes them, built once per value by the import: what the column
    types would make of them (UTC times as SQLite's ``DATETIME`` text or an aware datetime for
    psycopg, enum values, JSON text, SQLite's 0/1), so the rows read back exactly like the
    ORM's (a test compares them). The tables' constraints still check every row.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"

    def time(self, value: datetime | None) -> Any:
        if value is None or self.pg:
            return value
        # SQLAlchemy's SQLite DATETIME text: naive UTC, always with microseconds (so that text
        # comparisons, as a keyset cursor's, order equal instants equally).
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def flag(self, value: bool) -> Any:
        return value if self.pg else int(value)

    def insert(self, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        quote = self.conn.dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in columns)
        # Names from the models' metadata, values as parameters: nothing from the request.
        if self.pg:
            # COPY: one stream per table (psycopg's executemany is a statement per row).
            driver: Any = self.conn.connection.dbapi_connection
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" for _name in columns)
        statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608
        self.conn.exec_driver_sql(statement, rows)


def _chunks(values: Iterable[str]) -> list[list[str]]:
    ordered = sorted(set(values))
    return [ordered[i : i + _IN_CHUNK] for i in range(0, len(ordered), _IN_CHUNK)]


def _new_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """Ids for ``count`` new rows of ``table``, handed out before the INSERT so related rows
    can name them and each table is one ``executemany``: PostgreSQL's sequence (concurrent
    writers get other values), on SQLite the next rowids (the transaction holds the write lock,
    and the session was flushed, so nothing else takes them; as ``inbound_batch``)."""
    if count == 0:
        return []
    if conn.dialect.name == "postgresql":
        return list(
            conn.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"
                ),
                {"t": table.name, "n": count},
            )
        )
    start = int(conn.scalar(select(func.max(table.c.id))) or 0)
    return list(range(start + 1, start + count + 1))


def agent_ids(
    session: Session, tickets: Sequence[ImportTicket], *, start: int = 0
) -> dict[str, int]:
    """The agents the messages name, by email; :class:`InvalidImport` (``unknown_agent``)
    naming each message whose agent nobody is (deactivated agents count)."""
    wanted = {m.agent_email for t in tickets for m in t.messages if m.agent_email}
    found: dict[str, int] = {}
    for chunk in _chunks(e for e in wanted if e):
        for email, agent_id in session.execute(
            select(func.lower(Agent.email), Agent.id).where(func.lower(Agent.email).in_(chunk))
        ):
            found[str(email)] = int(agent_id)
    missing: dict[str, str] = {}
    for i, t in enumerate(tickets, start=start):
        for m in t.messages:
            if m.agent_email and m.agent_email not in found and len(missing) < MAX_FIELD_ERRORS:
                missing[f"tickets.{i}.messages.{m.position}.agent"] = _(
                    "No agent has this email address: %(email)s", email=m.agent_email
                )
    if missing:
        raise InvalidImport(missing, code="unknown_agent")
    return found


def _import(session: Session, actor: Agent, tickets: Sequence[ImportTicket]) -> ImportResult:
    conn = session.connection()
    agents = agent_ids(session, tickets)
    now = utcnow()

    # Tickets brought over by an earlier import: skipped, answered with their numbers.
    done: dict[str, int] = {}
    for chunk in _chunks(t.external_id for t in tickets if t.external_id):
        for external_id, number in conn.execute(
            select(Ticket.external_id, Ticket.number).where(Ticket.external_id.in_(chunk))
        ):
            done[str(external_id)] = int(number)
    todo = [t for t in tickets if t.external_id is None or t.external_id not in done]

    # Customers by address (the sender's and Cc'd ones): stored, else new (one per address).
    names: dict[str, str] = {}
    for t in todo:
        for address, name in ((t.customer_email, t.customer_name), *t.cc):
            if name and not names.get(address):
                names[address] = name
            names.setdefault(address, "")
    customer_ids: dict[str, int] = {}
    unnamed: list[int] = []
    for chunk in _chunks(names):
        for value, customer_id, name in conn.execute(
            select(CustomerIdentity.value, Customer.id, Customer.name)
            .join(Customer, Customer.id == CustomerIdentity.customer_id)
            .where(CustomerIdentity.kind == IdentityKind.EMAIL, CustomerIdentity.value.in_(chunk))
        ):
            customer_ids[str(value)] = int(customer_id)
            if not name and names.get(str(value)):
                unnamed.append(int(customer_id))
    for customer_id in unnamed:  # a stored customer without a name gets the one given here
        known = session.get(Customer, customer_id)
        if known is not None and known.email:
            fill_in(known, names.get(known.email), None)
    session.flush()
    new_addresses = [a for a in names if a not in customer_ids]
    for address, customer_id in zip(
        new_addresses, _new_ids(conn, _CUSTOMERS, len(new_addresses)), strict=True
    ):
        customer_ids[address] = customer_id
    sql = _Sql(conn)
    # New customers join the organization of their address's domain, as on every channel.
    org_of = organizations.by_domains(session, {email_domain(a) or "" for a in new_addresses})
    if new_addresses:
        # A new customer's language is their first ticket's; they are a customer since then.
        first_language: dict[str, str | None] = {}
        since: dict[str, datetime] = {}
        for t in todo:
            first_language.setdefault(t.customer_email, t.language)
            for address in (t.customer_email, *(a for a, _n in t.cc)):
                since[address] = min(since.get(address, t.created_at), t.created_at)
        sql.insert(
            _CUSTOMERS,
            _CUSTOMER_COLUMNS,
            [
                (
                    customer_ids[a],
                    names[a],
                    a,
                    first_language.get(a),
                    org_of.get(email_domain(a) or ""),
                    "",
                    sql.time(since.get(a, now)),
                    sql.time(since.get(a, now)),
                )
                for a in new_addresses
            ],
        )
        sql.insert(
            _IDENTITIES,
            _IDENTITY_COLUMNS,
            [
                (
                    customer_ids[a],
                    IdentityKind.EMAIL.value,
                    a,
                    sql.flag(False),
                    sql.flag(False),
                    sql.time(since.get(a, now)),
                )
                for a in new_addresses
            ],
        )

    # Tags, created on first use as services.tags does.
    tag_ids: dict[str, int] = {}
    wanted_tags = {name for t in todo for name in t.tags}
    for chunk in _chunks(wanted_tags):
        for tag_id, name in conn.execute(select(Tag.id, Tag.name).where(Tag.name.in_(chunk))):
            tag_ids[str(name)] = int(tag_id)
    for name in sorted(wanted_tags - set(tag_ids)):
        tag_ids[name] = get_or_create_tag(session, name).id
    session.flush()

    numbers = reserve_ticket_numbers(session, len(todo))
    ticket_ids = _new_ids(conn, _TICKETS, len(todo))
    ticket_rows: list[tuple[Any, ...]] = []
    message_rows: list[tuple[Any, ...]] = []
    audit_rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[int, int]] = []
    participant_rows: list[tuple[int, int]] = []
    deltas: Counter[tuple[str, int]] = Counter()
    time, yes, no = sql.time, sql.flag(True), sql.flag(False)
    imported_at = time(now)
    meta = json.dumps({"imported": True})
    inbound, outbound = Direction.INBOUND.value, Direction.OUTBOUND.value
    sent, note = DeliveryStatus.SENT.value, MessageKind.NOTE.value
    for t, number, ticket_id in zip(todo, numbers, ticket_ids, strict=True):
        customer_id = customer_ids[t.customer_email]
        last = t.messages[-1].created_at
        first_response = next(
            (m.created_at for m in t.messages if m.from_agent and not m.internal), None
        )
        updated = t.updated_at or max(t.created_at, last)
        resolved = None
        if not t.status.active:
            resolved = t.resolved_at or updated
        # In _TICKET_COLUMNS' order.
        ticket_rows.append(
            (
                ticket_id,
                number,
                t.subject,
                t.status.value,
                sql.flag(t.status.active),
                t.priority,
                t.channel.value,
                customer_id,
                t.language,
                1,
                t.external_id,
                time(t.created_at),
                time(updated),
                time(first_response),
                time(resolved),
                time(last),
                len(t.messages),
            )
        )
        deltas[(t.status.value, 0)] += 1
        kind = _KIND_BY_CHANNEL[t.channel].value
        for index, m in enumerate(t.messages):
            at = time(m.created_at)
            if m.from_agent:
                agent_id = agents[m.agent_email] if m.agent_email else actor.id
                # Sent by the other helpdesk long ago: never the outbox's business.
                status, sent_at = (None, None) if m.internal else (sent, at)
            else:
                agent_id, status, sent_at = None, None, None
            # In _MESSAGE_COLUMNS' order.
            message_rows.append(
                (
                    ticket_id,
                    outbound if m.from_agent else inbound,
                    note if m.internal else kind,
                    yes if m.internal else no,
                    None if m.from_agent else customer_id,
                    agent_id,
                    t.subject if index == 0 else None,
                    m.body,
                    text_to_html(m.body),
                    "[]",
                    "[]",
                    meta,
                    status,
                    0,
                    sent_at,
                    at,
                )
            )
        data = json.dumps({"number": number, "external_id": t.external_id})
        audit_rows.append((ticket_id, actor.id, "ticket.imported", data, imported_at))
        tag_rows.extend((ticket_id, tag_ids[n]) for n in t.tags)
        cc_ids = dict.fromkeys(customer_ids[a] for a, _n in t.cc if customer_ids[a] != customer_id)
        participant_rows.extend((ticket_id, p) for p in cc_ids)
    if ticket_rows:
        sql.insert(_TICKETS, _TICKET_COLUMNS, ticket_rows)
        sql.insert(_MESSAGES, _MESSAGE_COLUMNS, message_rows)
        sql.insert(
            _AUDIT, ("ticket_id", "actor_agent_id", "action", "data", "created_at"), audit_rows
        )
        sql.insert(ticket_tags, ("ticket_id", "tag_id"), tag_rows)
        sql.insert(ticket_participants, ("ticket_id", "customer_id"), participant_rows)
        counts.adjust(conn, deltas)
        search_index.tickets_written(session, ticket_ids)
        stream.record(
            session,
            "tickets.imported",
            "ticket",
            ticket_ids[0],
            actor,
            count=len(ticket_rows),
            first_number=numbers[0],
            last_number=numbers[-1],
            skipped=len(tickets) - len(todo),
            customers_created=len(new_addresses),
        )
    result = ImportResult(customers_created=len(new_addresses))
    assigned = {id(t): n for t, n in zip(todo, numbers, strict=True)}
    for t in tickets:
        if id(t) in assigned:
            result.tickets.append(ImportedTicket(assigned[id(t)], t.external_id))
        else:
            assert t.external_id is not None
            result.tickets.append(ImportedTicket(done[t.external_id], t.external_id, True))
    return result
