"""Storing a message on a ticket: the shared step of inbound mail, chat lines, replies and notes.

``append_message`` builds the row (``new_message``), writes it through the ORM's flush or, for a
plain chat line, at once with statements built once (``write_now``), counts it on the ticket,
and records its ``message.created`` event and its live announcement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Table, bindparam, insert, inspect, update
from sqlalchemy.orm import Session, make_transient, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from helpdesk.db import Base, utcnow
from helpdesk.html import sanitize_html, text_to_html
from helpdesk.inbound import InboundAttachment
from helpdesk.models import (
    Agent,
    AuditEvent,
    Customer,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Ticket,
)
from helpdesk.services import audit, search_index, stream
from helpdesk.services.announcements import announce_message
from helpdesk.services.attachments import add_attachment, attachment_url
from helpdesk.services.audit import Actor
from helpdesk.unit_of_work import unit_of_work


def touch(ticket: Ticket, when: datetime | None = None) -> None:
    """A ticket changed: its time and version move on (a reply form's version goes stale)."""
    ticket.updated_at = when or utcnow()
    ticket.version = (ticket.version or 0) + 1


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
    touch(ticket, when)
