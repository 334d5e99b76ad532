"""Ticket verbs: open, reply, note, assign, status, priority, team, tags.

Each verb takes the caller's session, changes rows, records an AuditEvent, bumps the ticket's
``version`` and registers the live event for after commit. None of them commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Table, bindparam, func, insert, inspect, select, update
from sqlalchemy.orm import Session, make_transient, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from helpdesk.db import Base, utcnow
from helpdesk.html import sanitize_html, text_to_html
from helpdesk.i18n import _
from helpdesk.inbound import InboundAttachment
from helpdesk.models import (
    Agent,
    AuditEvent,
    ChannelKind,
    Customer,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Priority,
    Tag,
    Team,
    Ticket,
    TicketCounter,
    TicketStatus,
    ticket_tags,
)
from helpdesk.services import audit, counts, events, search_index, stream  # noqa: F401  (counts)
from helpdesk.services.attachments import add_attachment, attachment_url
from helpdesk.services.audit import Actor
from helpdesk.services.conversations import make_message_id
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import Conflict, ServiceError
from helpdesk.unit_of_work import UnitOfWork, add_commit_step, unit_of_work

FIRST_TICKET_NUMBER = 1001
MAX_TAG_LENGTH = 64
MAX_SUBJECT_LENGTH = 500


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def next_ticket_number(session: Session) -> int:
    """Hand out the next human ticket number (see :func:`reserve_ticket_numbers`)."""
    return reserve_ticket_numbers(session, 1)[0]


def reserve_ticket_numbers(session: Session, count: int) -> range:
    """Hand out ``count`` consecutive human ticket numbers with one statement.

    One ``UPDATE ... SET value = value + count RETURNING value`` on a single counter row:
    atomic on PostgreSQL (the row lock serialises concurrent workers until commit) and on
    SQLite (the transaction already holds the write lock), so numbers never repeat and a
    rolled-back transaction gives its numbers back. A Core statement on the session's
    connection: the ORM's bulk UPDATE would autoflush first and then walk the identity map to
    synchronise objects, which no one holds for this row (that walk grew with every ticket
    of a batch).
    """
    if count < 1:
        return range(0)
    value = (
        session.connection()
        .execute(
            update(TicketCounter)
            .where(TicketCounter.id == 1)
            .values(value=TicketCounter.value + count)
            .returning(TicketCounter.value)
        )
        .scalar()
    )
    if value is None:
        # A database created without the migration's seed row (fresh create_all).
        last = FIRST_TICKET_NUMBER + count - 1
        session.add(TicketCounter(id=1, value=last))
        session.flush()
        return range(FIRST_TICKET_NUMBER, last + 1)
    return range(int(value) - count + 1, int(value) + 1)


# A summary's assignee ({id, name} or None) and tag names.
_SummaryParts = tuple[dict[str, Any] | None, list[str]]


def ticket_summary(ticket: Ticket, people: _SummaryParts | None = None) -> dict[str, Any]:
    """Payload of ``ticket.created`` / ``ticket.updated`` on the agent namespace.

    ``{id, number, subject, status, priority, channel, customer: {id, name, email},
    assignee: {id, name} | null, team_id, tags: [str], message_count, updated_at (ISO 8601),
    version}``. Documented in docs/architecture.md#events.

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


def _touch(ticket: Ticket, when: datetime | None = None) -> None:
    ticket.updated_at = when or utcnow()
    ticket.version = (ticket.version or 0) + 1


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
    if not pending:
        return
    # Payloads are built now, while the session can still load what they need; they are sent
    # only after the commit succeeds.
    session.flush()
    parts = _summary_parts(session, (ticket for ticket, _name in pending.values()))
    for ticket, name in pending.values():
        summary = ticket_summary(ticket, parts.get(ticket.id))
        events.send_event_on_commit(session, name, summary, rooms=["agents"])


add_commit_step("live.announcements", _build_announcements, order=10)


def _kick_outbox(session: Session) -> None:
    wake_worker_on_commit(session)


def _clean_subject(subject: str, fallback_text: str = "") -> str:
    subject = " ".join((subject or "").split())
    if not subject:
        words = " ".join(fallback_text.split())
        subject = (words[:77] + "…") if len(words) > 80 else words
    return (subject or _("(no subject)"))[:MAX_SUBJECT_LENGTH]


def _set_status(ticket: Ticket, status: TicketStatus, when: datetime) -> None:
    ticket.status = status
    ticket.active = status.active
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        ticket.resolved_at = ticket.resolved_at or when
    else:
        ticket.resolved_at = None


# ---------------------------------------------------------------------------------------------
# Verbs
# ---------------------------------------------------------------------------------------------


def open_ticket(
    session: Session,
    *,
    customer: Customer,
    subject: str,
    channel: ChannelKind | str,
    channel_id: int | None = None,
    actor: Actor = None,
    priority: int = Priority.NORMAL,
    team: Team | None = None,
    language: str | None = None,
    created_at: datetime | None = None,
) -> Ticket:
    """A new ticket with no messages yet; callers append the first message."""
    ticket = new_ticket(
        customer=customer,
        number=next_ticket_number(session),
        subject=subject,
        channel=channel,
        channel_id=channel_id,
        priority=priority,
        team=team,
        language=language,
        created_at=created_at,
    )
    session.add(ticket)
    session.flush()
    record_opened(session, ticket, actor)
    return ticket


def new_ticket(
    *,
    customer: Customer,
    number: int,
    subject: str,
    channel: ChannelKind | str,
    channel_id: int | None = None,
    priority: int = Priority.NORMAL,
    team: Team | None = None,
    language: str | None = None,
    created_at: datetime | None = None,
) -> Ticket:
    """The row of :func:`open_ticket`, not yet added or flushed (batch paths build many and
    flush once; they call :func:`record_opened` once it has an id)."""
    when = created_at or utcnow()
    return Ticket(
        number=number,
        subject=_clean_subject(subject),
        status=TicketStatus.NEW,
        active=True,
        priority=int(Priority(priority)),
        channel=ChannelKind(channel),
        channel_id=channel_id,
        customer=customer,
        team=team,
        language=language or customer.language,
        created_at=when,
        updated_at=when,
        version=1,
        message_count=0,
        # A new ticket has no tags: an empty loaded collection spares the SELECT that building
        # its announcement would make.
        tags=[],
    )


def record_opened(session: Session, ticket: Ticket, actor: Actor) -> AuditEvent:
    """Audit and announce a ticket just opened (flushed: it has its id)."""
    entry = audit.record(
        session, ticket, actor, "ticket.created", channel=ticket.channel.value, number=ticket.number
    )
    stream.record(
        session,
        "ticket.created",
        "ticket",
        ticket.id,
        actor,
        ticket_id=ticket.id,
        number=ticket.number,
        subject=ticket.subject,
        channel=ticket.channel.value,
        status=ticket.status.value,
        priority=int(ticket.priority),
        customer_id=ticket.customer_id if ticket.customer_id is not None else ticket.customer.id,
        team_id=ticket.team_id if ticket.team_id is not None else getattr(ticket.team, "id", None),
        assignee_id=ticket.assignee_id,
        language=ticket.language,
    )
    announce(session, ticket, "ticket.created")
    return entry


def append_message(
    session: Session,
    ticket: Ticket,
    *,
    direction: Direction,
    kind: MessageKind,
    author: Actor,
    text: str,
    html: str | None = None,
    internal: bool = False,
    subject: str | None = None,
    full_text: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    recipients: Sequence[str] = (),
    attachments: Iterable[InboundAttachment] = (),
    delivery_status: DeliveryStatus | None = None,
    meta: dict[str, Any] | None = None,
    raw_sha256: str | None = None,
    created_at: datetime | None = None,
    write_now: bool = False,
) -> Message:
    """Store one message on a ticket (the shared step of inbound, reply and note).

    ``write_now``: write the message and the ticket's side of it at once, with statements built
    once, instead of through the unit of work (a chat line: its flushes were about a quarter of
    the line's CPU). The rows, the search index and the events are the same; it applies only to
    a message without attachments on a ticket with no unflushed changes, and falls back to the
    flush otherwise.
    """
    when = created_at or utcnow()
    message = new_message(
        ticket.id,
        direction=direction,
        kind=kind,
        author=author,
        text=text,
        html=html,
        internal=internal,
        subject=subject,
        full_text=full_text,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        recipients=recipients,
        attachments=attachments,
        delivery_status=delivery_status,
        meta=meta,
        raw_sha256=raw_sha256,
        created_at=when,
    )
    if write_now and not message.attachments and can_write_now(session, ticket):
        _write_message_now(session, ticket, message, when)
    else:
        session.add(message)
        session.flush()
        finish_html(message, html)
        count_message(ticket, when)
    record_message(session, ticket, message, author)
    announce_message(session, ticket, message)
    return message


def record_message(session: Session, ticket: Ticket, message: Message, author: Actor) -> None:
    """The stream's ``message.created`` for a message just stored (it has its id)."""
    stream.record(
        session,
        "message.created",
        "message",
        message.id,
        author,
        ticket_id=ticket.id,
        direction=message.direction.value,
        kind=message.kind.value,
        internal=message.internal,
        attachments=len(message.attachments),
    )


# --- writing without the unit of work ---------------------------------------------------------
# For the chat line path (services.inbound.receive of a plain line to an open ticket). The rows
# are built by the usual builders (new_message, audit.new_event), so what a row holds is defined
# once; only how it reaches the database differs: one INSERT or UPDATE built once per table, then
# the object joins the session as persistent and clean, as if loaded.


def can_write_now(session: Session, ticket: Ticket) -> bool:
    """Whether a message to ``ticket`` may be written at once (``append_message(write_now=True)``
    and :func:`record_now`): the ticket has no unflushed changes and no savepoint is open (its
    rollback expires only what the unit of work flushed in it, so the ticket would keep the
    count and version this path set, and a later flush would write them)."""
    state = inspect(ticket)
    return state.persistent and not state.modified and not session.in_nested_transaction()


@lru_cache(maxsize=8)
def _insert_returning_id(table: Table) -> Insert:
    return insert(table).returning(table.c.id)


def _column_values(row: Base) -> dict[str, Any]:
    """Every column of a new row but its id, as the INSERT of a flush would write it; column
    defaults are applied (and set on the object, which then has no unloaded column)."""
    mapper = inspect(type(row))
    values: dict[str, Any] = {}
    for column in mapper.local_table.columns:
        if column.primary_key:
            continue
        key = mapper.get_property_by_column(column).key
        if key in row.__dict__:
            value = row.__dict__[key]
        else:
            default = column.default
            value = None
            if isinstance(default, ScalarElementColumnDefault):
                value = default.arg
            elif isinstance(default, CallableColumnDefault):
                # utcnow, dict, list: SQLAlchemy wraps them to take an execution context, which
                # they ignore.
                value = default.arg(None)  # type: ignore[arg-type]
            elif default is not None or column.server_default is not None:
                raise TypeError(f"{column} has a default this path cannot apply")
            setattr(row, key, value)
        values[column.key] = value
    return values


def _insert_now(session: Session, row: Base) -> None:
    """INSERT a new row now and add it to the session as persistent (no flush will write it)."""
    session.flush()  # anything pending goes first, so ids keep the order of the calls
    table = inspect(type(row)).local_table
    assert isinstance(table, Table)
    values = _column_values(row)
    row_id = session.connection().execute(_insert_returning_id(table), values).scalar_one()
    row.id = row_id  # type: ignore[attr-defined]
    make_transient_to_detached(row)
    session.add(row)
    # The session thinks the row existed before, so a rollback would leave it in the identity
    # map: if the transaction rolls back, the row leaves the session and becomes transient, as
    # SQLAlchemy does with the rows its flush inserted.
    assert not session.in_nested_transaction()
    unit_of_work(session).on_rollback(lambda: _forget_written(session, row))


def _forget_written(session: Session, row: Base) -> None:
    if row in session:
        session.expunge(row)
    make_transient(row)


_COUNT_MESSAGE = (
    update(Ticket)
    .where(Ticket.id == bindparam("ticket_id"))
    .values(
        message_count=Ticket.message_count + 1,
        last_message_at=bindparam("when", type_=Ticket.__table__.c.last_message_at.type),
        updated_at=bindparam("when", type_=Ticket.__table__.c.updated_at.type),
        version=Ticket.version + 1,
    )
    .returning(Ticket.message_count, Ticket.version)
)


def _write_message_now(session: Session, ticket: Ticket, message: Message, when: datetime) -> None:
    _insert_now(session, message)
    # count_message() in one statement; the ticket keeps what the database now holds.
    count, version = (
        session.connection().execute(_COUNT_MESSAGE, {"ticket_id": ticket.id, "when": when}).one()
    )
    set_committed_value(ticket, "message_count", count)
    set_committed_value(ticket, "last_message_at", when)
    set_committed_value(ticket, "updated_at", when)
    set_committed_value(ticket, "version", version)
    search_index.message_written(session, ticket.id, message.id, message.body_text)


def record_now(
    session: Session, ticket: Ticket | None, actor: Actor, action: str, **data: Any
) -> AuditEvent:
    """``audit.record`` written at once (see ``append_message(write_now=True)``)."""
    entry = audit.new_event(ticket, actor, action, **data)
    _insert_now(session, entry)
    return entry


def new_message(
    ticket_id: int | None,
    *,
    direction: Direction,
    kind: MessageKind,
    author: Actor,
    text: str,
    html: str | None = None,
    internal: bool = False,
    subject: str | None = None,
    full_text: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    recipients: Sequence[str] = (),
    attachments: Iterable[InboundAttachment] = (),
    delivery_status: DeliveryStatus | None = None,
    meta: dict[str, Any] | None = None,
    raw_sha256: str | None = None,
    created_at: datetime | None = None,
) -> Message:
    """The row of :func:`append_message` with its attachments, not yet added or flushed.

    ``body_html`` is set here unless the HTML shows inline images by ``cid:`` of its own
    attachments: their URLs need the attachments' ids, so :func:`finish_html` sets it after
    the flush (an UPDATE only for those).
    """
    when = created_at or utcnow()
    message = Message(
        ticket_id=ticket_id,
        # A new message's attachments are only those added below: an empty loaded collection
        # spares a SELECT (and an autoflush) each time a payload lists them.
        attachments=[],
        direction=direction,
        kind=kind,
        internal=internal,
        author_agent_id=author.id if isinstance(author, Agent) else None,
        author_customer_id=author.id if isinstance(author, Customer) else None,
        subject=subject,
        body_text=text,
        full_text=full_text,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=list(references),
        recipients=list(recipients),
        meta=meta or {},
        raw_sha256=raw_sha256,
        delivery_status=delivery_status,
        next_attempt_at=when if delivery_status == DeliveryStatus.QUEUED else None,
        created_at=when,
    )
    for att in attachments:
        add_attachment(
            message,
            att.filename,
            att.content_type,
            att.data,
            content_id=att.content_id,
            inline=att.inline,
        )
    if html is None:
        # Plain text needs no attachment URLs: written with the INSERT, not a later UPDATE.
        message.body_html = text_to_html(text)
    elif not _has_cid_attachments(message):
        # No attachment to point ``cid:`` images at: the same result as after the flush
        # (unknown ``cid:`` references are dropped either way), without the UPDATE.
        message.body_html = sanitize_html(html, {})
    return message


def _has_cid_attachments(message: Message) -> bool:
    return any(a.content_id for a in message.attachments)


def finish_html(message: Message, html: str | None) -> None:
    """Sanitize ``html`` with ``cid:`` images pointing at the flushed message's attachments."""
    if html is not None and _has_cid_attachments(message):
        cid_urls = {a.content_id: attachment_url(a) for a in message.attachments if a.content_id}
        message.body_html = sanitize_html(html, cid_urls)


def count_message(ticket: Ticket, when: datetime) -> None:
    """The ticket's side of a new message: count, last message time, version."""
    ticket.message_count = (ticket.message_count or 0) + 1
    ticket.last_message_at = when
    _touch(ticket, when)


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


def _check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != ticket.version:
        raise Conflict(_("This ticket changed while you were writing. Review it and send again."))


def reply_to_ticket(
    session: Session,
    ticket: Ticket,
    agent: Agent,
    text: str,
    *,
    attachments: Iterable[InboundAttachment] = (),
    status: TicketStatus | None = None,
    expected_version: int | None = None,
) -> Message:
    """A public reply to the customer, stored as ``queued`` (the transactional outbox).

    The worker delivers it after commit through the sender registered for the ticket's
    channel; the message is in the database before anyone tries to send it.
    """
    text = (text or "").strip()
    if not text:
        raise ServiceError(_("A reply cannot be empty."))
    _check_version(ticket, expected_version)
    when = utcnow()
    customer = ticket.customer
    previous = session.scalar(
        select(Message)
        .where(Message.ticket_id == ticket.id, Message.message_id.is_not(None))
        .where(Message.internal.is_(False))
        .order_by(Message.id.desc())
        .limit(1)
    )
    references: list[str] = []
    if previous is not None:
        references = [*previous.references, previous.message_id or ""][-20:]
    kind = {
        ChannelKind.EMAIL: MessageKind.EMAIL,
        ChannelKind.CHAT: MessageKind.CHAT,
        ChannelKind.PORTAL: MessageKind.PORTAL,
    }[ticket.channel]
    message = append_message(
        session,
        ticket,
        direction=Direction.OUTBOUND,
        kind=kind,
        author=agent,
        text=text,
        subject=ticket.subject,
        message_id=make_message_id(ticket.id),
        in_reply_to=previous.message_id if previous is not None else None,
        references=[r for r in references if r],
        recipients=[customer.email] if customer.email else [],
        attachments=attachments,
        delivery_status=DeliveryStatus.QUEUED,
        created_at=when,
    )
    if ticket.first_response_at is None:
        ticket.first_response_at = when
    new_status = status or (TicketStatus.OPEN if ticket.status == TicketStatus.NEW else None)
    if new_status is not None and new_status != ticket.status:
        old = ticket.status
        _set_status(ticket, new_status, when)
        audit.record(
            session, ticket, agent, "ticket.status", **{"from": old.value, "to": new_status.value}
        )
        stream.ticket_changed(session, ticket.id, agent, "status", old.value, new_status.value)
    audit.record(session, ticket, agent, "message.reply", message_id=message.id)
    announce(session, ticket)
    _kick_outbox(session)
    return message


def add_note(session: Session, ticket: Ticket, agent: Agent, text: str) -> Message:
    """An internal note: agents only, never sent, never shown to the customer."""
    text = (text or "").strip()
    if not text:
        raise ServiceError(_("A note cannot be empty."))
    message = append_message(
        session,
        ticket,
        direction=Direction.OUTBOUND,
        kind=MessageKind.NOTE,
        author=agent,
        text=text,
        internal=True,
    )
    audit.record(session, ticket, agent, "message.note", message_id=message.id)
    from helpdesk.services.mentions import notify_mentions

    notify_mentions(session, ticket, message, agent)
    announce(session, ticket)
    return message


def add_system_message(session: Session, ticket: Ticket, text: str, **meta: Any) -> Message:
    """A line in the timeline written by the helpdesk itself (delivery failures, auto-replies)."""
    message = append_message(
        session,
        ticket,
        direction=Direction.INBOUND,
        kind=MessageKind.SYSTEM,
        author=None,
        text=text,
        internal=True,
        meta=meta,
    )
    announce(session, ticket)
    return message


def assign_ticket(
    session: Session,
    ticket: Ticket,
    assignee: Agent | None,
    actor: Actor,
    *,
    auto: str | None = None,
) -> None:
    """``auto``: the team's assignment mode when ``services.assignment`` chose the agent (kept
    in the audit entry, so the history says "assigned automatically")."""
    if assignee is not None and not assignee.active:
        raise ServiceError(
            _("%(name)s is deactivated and cannot take tickets.", name=assignee.name)
        )
    old = ticket.assignee
    if (old.id if old else None) == (assignee.id if assignee else None):
        return
    ticket.assignee = assignee
    _touch(ticket)
    audit.record(
        session,
        ticket,
        actor,
        "ticket.assignee",
        **{
            "from": old.name if old else None,
            "to": assignee.name if assignee else None,
            "to_id": assignee.id if assignee else None,
            **({"auto": auto} if auto else {}),
        },
    )
    stream.ticket_changed(
        session,
        ticket.id,
        actor,
        "assignee_id",
        old.id if old else None,
        assignee.id if assignee else None,
    )
    announce(session, ticket)


TeamReaction = Callable[[Session, Ticket], object]
_team_reactions: list[TeamReaction] = []


def on_team_set(reaction: TeamReaction) -> None:
    """Call ``reaction(session, ticket)`` in the same transaction whenever a ticket moves into a
    team (``create_app`` registers auto-assignment, which builds on this module)."""
    if reaction not in _team_reactions:
        _team_reactions.append(reaction)


def set_team(session: Session, ticket: Ticket, team: Team | None, actor: Actor) -> None:
    old = ticket.team
    if (old.id if old else None) == (team.id if team else None):
        return
    ticket.team = team
    _touch(ticket)
    audit.record(
        session,
        ticket,
        actor,
        "ticket.team",
        **{"from": old.name if old else None, "to": team.name if team else None},
    )
    stream.ticket_changed(
        session, ticket.id, actor, "team_id", old.id if old else None, team.id if team else None
    )
    announce(session, ticket)
    if team is not None:
        for reaction in _team_reactions:
            reaction(session, ticket)


def change_status(
    session: Session, ticket: Ticket, status: TicketStatus | str, actor: Actor
) -> None:
    status = TicketStatus(status)
    old = ticket.status
    if old == status:
        return
    when = utcnow()
    _set_status(ticket, status, when)
    _touch(ticket, when)
    audit.record(session, ticket, actor, "ticket.status", **{"from": old.value, "to": status.value})
    stream.ticket_changed(session, ticket.id, actor, "status", old.value, status.value)
    announce(session, ticket)


def set_priority(session: Session, ticket: Ticket, priority: int, actor: Actor) -> None:
    try:
        new = Priority(int(priority))
    except ValueError:
        raise ServiceError(_("Unknown priority.")) from None
    old = Priority(ticket.priority)
    if old == new:
        return
    ticket.priority = int(new)
    _touch(ticket)
    audit.record(session, ticket, actor, "ticket.priority", **{"from": int(old), "to": int(new)})
    stream.ticket_changed(session, ticket.id, actor, "priority", int(old), int(new))
    announce(session, ticket)


def normalize_tag(name: str) -> str:
    tag = " ".join(name.strip().lower().split()).replace(" ", "-")
    if not tag:
        raise ServiceError(_("A tag cannot be empty."))
    if len(tag) > MAX_TAG_LENGTH:
        raise ServiceError(_("A tag can have at most %(n)d characters.", n=MAX_TAG_LENGTH))
    return tag


def _get_or_create_tag(session: Session, name: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        # A concurrent creator of the same tag would violate the unique index; a savepoint keeps
        # the outer transaction usable so we can read the winner's row.
        try:
            with session.begin_nested():
                tag = Tag(name=name)
                session.add(tag)
        except Exception:
            tag = session.scalar(select(Tag).where(Tag.name == name))
            if tag is None:
                raise
    return tag


def set_tags(session: Session, ticket: Ticket, names: Iterable[str], actor: Actor) -> None:
    wanted = sorted({normalize_tag(n) for n in names if n.strip()})
    current = sorted(t.name for t in ticket.tags)
    if wanted == current:
        return
    ticket.tags = [_get_or_create_tag(session, n) for n in wanted]
    _touch(ticket)
    added = sorted(set(wanted) - set(current))
    removed = sorted(set(current) - set(wanted))
    audit.record(session, ticket, actor, "ticket.tags", added=added, removed=removed)
    stream.ticket_changed(session, ticket.id, actor, "tags", current, wanted)
    announce(session, ticket)


def add_tags(session: Session, ticket: Ticket, names: Iterable[str], actor: Actor) -> None:
    set_tags(session, ticket, [*(t.name for t in ticket.tags), *names], actor)


def remove_tags(session: Session, ticket: Ticket, names: Iterable[str], actor: Actor) -> None:
    drop = {normalize_tag(n) for n in names if n.strip()}
    set_tags(session, ticket, [t.name for t in ticket.tags if t.name not in drop], actor)


def reopen_on_customer_message(session: Session, ticket: Ticket, customer: Customer) -> None:
    """A customer writing again on a pending or resolved ticket puts it back in the queue."""
    if ticket.status in (TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED):
        old = ticket.status
        _set_status(ticket, TicketStatus.OPEN, utcnow())
        audit.record(
            session, ticket, customer, "ticket.status", **{"from": old.value, "to": "open"}
        )
        stream.ticket_changed(session, ticket.id, customer, "status", old.value, "open")


def lock_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """Load a ticket for update (a row lock on PostgreSQL; SQLite already holds the DB lock)."""
    return session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update())


# ---------------------------------------------------------------------------------------------
# Merge, split, bulk
# ---------------------------------------------------------------------------------------------


def merge_tickets(session: Session, source: Ticket, target: Ticket, actor: Actor) -> None:
    """Move everything of ``source`` into ``target``; the source stays as a closed pointer.

    Messages (with their attachments), participants, tags and history move; the source shows
    "merged into #N" and mail or portal replies to it land in the target (``follow_merge``).
    Nothing is copied, so nothing can be duplicated, and nothing is deleted.
    """
    from helpdesk.models import AuditEvent, ticket_participants
    from helpdesk.services.conversations import follow_merge

    if source.id == target.id:
        raise ServiceError(_("A ticket cannot be merged into itself."))
    if source.merged_into_id is not None:
        raise ServiceError(_("Ticket %(number)s is already merged.", number=source.display_number))
    if follow_merge(session, target).id != target.id:
        raise ServiceError(_("Ticket %(number)s is already merged.", number=target.display_number))
    # Row locks in id order (PostgreSQL) so two agents merging crosswise cannot deadlock; the
    # identity map hands back the same objects.
    for ticket_id in sorted((source.id, target.id)):
        lock_ticket(session, ticket_id)

    moved = int(
        session.scalar(
            select(func.count()).select_from(Message).where(Message.ticket_id == source.id)
        )
        or 0
    )
    session.execute(
        update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id)
    )
    session.execute(
        update(AuditEvent).where(AuditEvent.ticket_id == source.id).values(ticket_id=target.id)
    )
    # Participants: the source's customer and its Cc's may now follow the target.
    people = {source.customer_id} | {
        row.customer_id
        for row in session.execute(
            select(ticket_participants.c.customer_id).where(
                ticket_participants.c.ticket_id == source.id
            )
        )
    }
    already = {target.customer_id} | {
        row.customer_id
        for row in session.execute(
            select(ticket_participants.c.customer_id).where(
                ticket_participants.c.ticket_id == target.id
            )
        )
    }
    for customer_id in sorted(people - already):
        session.execute(
            ticket_participants.insert().values(ticket_id=target.id, customer_id=customer_id)
        )
    session.execute(
        ticket_participants.delete().where(ticket_participants.c.ticket_id == source.id)
    )
    target.tags = sorted({*target.tags, *source.tags}, key=lambda t: t.name)
    source.tags = []
    session.expire(source, ["messages"])

    when = utcnow()
    target.message_count = (target.message_count or 0) + moved
    target.last_message_at = max(
        (d for d in (target.last_message_at, source.last_message_at) if d is not None), default=None
    )
    if target.first_response_at is None:
        target.first_response_at = source.first_response_at
    source.message_count = 0
    source.merged_into_id = target.id
    stream.ticket_changed(session, source.id, actor, "merged_into_id", None, target.id)
    if source.status != TicketStatus.CLOSED:
        stream.ticket_changed(
            session, source.id, actor, "status", source.status.value, TicketStatus.CLOSED.value
        )
        _set_status(source, TicketStatus.CLOSED, when)
    _touch(source, when)
    _touch(target, when)
    session.flush()
    audit.record(session, target, actor, "ticket.merged", source=source.number, messages=moved)
    stream.record(
        session,
        "ticket.merged",
        "ticket",
        source.id,
        actor,
        ticket_id=source.id,
        into_ticket_id=target.id,
        messages=moved,
    )
    audit.record(session, source, actor, "ticket.merged_into", target=target.number)
    add_system_message(
        session,
        source,
        _("Merged into ticket %(number)s.", number=target.display_number),
        merged_into=target.id,
    )
    announce(session, source)
    announce(session, target)


def split_message(session: Session, message: Message, actor: Actor) -> Ticket:
    """Move one customer message out of its ticket into a new ticket of the same customer."""
    if message.internal or message.kind == MessageKind.SYSTEM:
        raise ServiceError(_("Only a customer's or an agent's message can be split off."))
    old = message.ticket
    if old.message_count <= 1:
        raise ServiceError(_("The only message of a ticket cannot be split off."))
    new = open_ticket(
        session,
        customer=old.customer,
        subject=message.subject or old.subject,
        channel=old.channel,
        channel_id=old.channel_id,
        actor=actor,
        priority=old.priority,
        team=old.team,
        language=old.language,
    )
    message.ticket_id = new.id
    old.message_count -= 1
    new.message_count = 1
    new.last_message_at = message.created_at
    _touch(old)
    session.flush()
    audit.record(session, old, actor, "ticket.split", message_id=message.id, new=new.number)
    stream.record(
        session,
        "ticket.split",
        "ticket",
        old.id,
        actor,
        ticket_id=old.id,
        message_id=message.id,
        new_ticket_id=new.id,
    )
    audit.record(session, new, actor, "ticket.split_from", message_id=message.id, old=old.number)
    announce(session, old)
    announce(session, new)
    return new


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
            _get_or_create_tag(session, normalize_tag(name))
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
            change_status(session, ticket, change.status, actor)
        if change.add_tags:
            add_tags(session, ticket, change.add_tags, actor)
        if change.remove_tags:
            remove_tags(session, ticket, change.remove_tags, actor)
