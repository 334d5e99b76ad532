"""A batch of one channel's messages (an IMAP fetch), received with a few flushes: the same
outcome as :func:`helpdesk.services.inbound.receive` mail by mail (a test compares the two)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, selectinload

from helpdesk.db import Base, utcnow
from helpdesk.inbound import InboundMessage
from helpdesk.models import (
    AuditEvent,
    ChannelKind,
    Customer,
    CustomerIdentity,
    Direction,
    IdentityKind,
    Message,
    MessageKind,
    Priority,
    Ticket,
    ticket_participants,
)
from helpdesk.services import announcements, assignment, audit, organizations, tickets
from helpdesk.services.attachments import store_bytes
from helpdesk.services.conversations import (
    follow_merge,
    subject_ticket_number,
    thread_candidates,
    ticket_id_from_message_id,
)
from helpdesk.services.customers import fill_in, new_customer, normalize_email
from helpdesk.services.customers import record_created as record_customer_created
from helpdesk.services.errors import ServiceError
from helpdesk.services.inbound import (
    KIND_BY_CHANNEL,
    BatchLookup,
    Received,
    chained,
    dedupe_key,
    duplicate_query,
    receive_or_hold,
    run_chain,
)
from helpdesk.services.messages import count_message, finish_html, new_message, record_message

_IN_CHUNK = 500  # bound parameters per IN (...) list


def _chunks(values: set[str]) -> list[list[str]]:
    ordered = sorted(values)
    return [ordered[i : i + _IN_CHUNK] for i in range(0, len(ordered), _IN_CHUNK)]


def prefetch(session: Session, msgs: Sequence[InboundMessage]) -> BatchLookup:
    """Read what ``receive`` will need for ``msgs`` (all of one channel) in a few queries."""
    first = msgs[0] if msgs else None
    lookup = BatchLookup(
        channel_id=first.channel_id if first else None,
        channel_kind=first.channel_kind if first else "email",
    )
    keys = {k for k in (dedupe_key(m) for m in msgs if lookup.serves(m)) if k is not None}
    for chunk in _chunks(keys):
        for found in session.scalars(
            duplicate_query(lookup.channel_id, lookup.channel_kind)
            .where(Message.message_id.in_(chunk))
            .order_by(Message.id)
        ):
            lookup.duplicates.setdefault(str(found.message_id), found)
    refs = {
        ref.strip().strip("<>")
        for m in msgs
        for ref in (m.in_reply_to, *m.references)
        if ref and ref.strip().strip("<>")
    }
    for chunk in _chunks(refs):
        for message_id, ticket_id in session.execute(
            select(Message.message_id, Message.ticket_id)
            .where(Message.message_id.in_(chunk))
            .order_by(Message.id)
        ):
            lookup.threads.setdefault(str(message_id), int(ticket_id))
    # The tickets replies continue, with what announcing them reads (their tags), into the
    # identity map: threading's session.get() and the announcement then query nothing.
    for chunk in _chunks({str(t) for t in lookup.threads.values()}):
        for ticket in session.scalars(
            select(Ticket)
            .where(Ticket.id.in_([int(t) for t in chunk]))
            .options(selectinload(Ticket.tags))
        ):
            lookup.tickets[ticket.id] = ticket
    for chunk in _chunks({str(t) for t in lookup.tickets}):
        for listed in chunk:
            lookup.participants.setdefault(int(listed), set())
        for ticket_id, customer_id in session.execute(
            select(ticket_participants.c.ticket_id, ticket_participants.c.customer_id).where(
                ticket_participants.c.ticket_id.in_([int(t) for t in chunk])
            )
        ):
            lookup.participants[int(ticket_id)].add(int(customer_id))
    addresses: set[str] = set()
    for m in msgs:
        if m.identity_kind == IdentityKind.EMAIL.value:
            # The sender and everyone Cc'd: a Cc'd address that writes later in the batch, or
            # a sender Cc'd later, is one customer however it is spelt (case, display name).
            for address in (m.sender_address, *m.cc):
                try:
                    addresses.add(normalize_email(address))
                except ServiceError:
                    continue  # receive() reports a bad sender for that one message
    for chunk in _chunks(addresses):
        for value, customer in session.execute(
            select(CustomerIdentity.value, Customer)
            .join(Customer, Customer.id == CustomerIdentity.customer_id)
            .where(CustomerIdentity.kind == IdentityKind.EMAIL, CustomerIdentity.value.in_(chunk))
        ):
            lookup.customers[str(value)] = customer
    return lookup


@dataclass(slots=True)
class _Planned:
    """One message of a run, decided (customer, ticket) but not yet written."""

    index: int
    msg: InboundMessage
    key: str | None
    customer: Customer
    ticket: Ticket
    created: bool
    auto: bool
    when: datetime
    # Cc'd customers who become participants of the ticket, in the order of the Cc header.
    cc: list[Customer] = field(default_factory=list)
    message: Message | None = None


@dataclass(slots=True)
class _Run:
    """Messages planned since the last write, and what later ones in it may refer to."""

    items: list[_Planned] = field(default_factory=list)
    threads: dict[str, Ticket] = field(default_factory=dict)  # Message-ID -> its ticket
    duplicates: dict[str, _Planned] = field(default_factory=dict)
    repeats: list[tuple[int, _Planned]] = field(default_factory=list)  # in-run duplicates
    # Participants planned in this run, by ticket object (new tickets have no id yet).
    participants: dict[int, list[Customer]] = field(default_factory=dict)


def receive_batch(
    session: Session,
    msgs: Sequence[InboundMessage],
    lookup: BatchLookup,
    *,
    single: Callable[[InboundMessage], bool] | None = None,
) -> list[Received | None]:
    """:func:`receive` for a batch of one channel's messages, written with a few flushes.

    The result, the rows and the events are those of calling ``receive(session, msg,
    lookup=lookup)`` for each message in order (its post-receive chain included; a run ends
    after each new ticket a step applies to, so what the chain adds, like a team or an
    acknowledgement, keeps its place): the same tickets (numbers in the
    same order), customers, messages, audit entries in the same order, announcements after
    commit. What differs is
    the cost. Messages are *planned* in order (dedupe, the sender's customer, the ticket they
    continue or open) without writing; each run of planned messages is then written in bulk:
    one counter UPDATE reserving the run's ticket numbers, one flush for new customers and
    tickets, one for messages and attachments, then audit entries and the chain in order.

    The plain case is planned: an email from an address (its Cc's becoming participants), not
    named by ``single``, threading by a Message-ID stored before or earlier in the batch, or a
    new ticket. Anything else (a signed id or a ``[#1042]`` subject token to resolve, a reply
    that reopens a ticket, a message ``single`` names) goes through :func:`receive` itself,
    after the run before it is written, so it sees everything earlier in the batch.

    A ``thread_only`` message that continues no conversation is held, as by
    :func:`~helpdesk.services.inbound.receive_or_hold`: nothing is written and its place in
    the result is ``None``.

    Like ``receive`` it raises on a message it cannot take (a sender that is not an
    address); the caller rolls the batch back and retries one by one.
    """
    results: list[Received | None] = [None] * len(msgs)
    decided = [False] * len(msgs)
    run = _Run()
    for index, msg in enumerate(msgs):
        planned: _Planned | _DuplicateOf | Received | _Held | None = None
        if lookup.serves(msg) and (single is None or not single(msg)):
            with session.no_autoflush:
                planned = _plan(session, index, msg, lookup, run)
        if isinstance(planned, _Held):  # automatic mail of no conversation: nothing to write
            decided[index] = True
            continue
        if isinstance(planned, Received):  # a duplicate: nothing to write
            results[index] = planned
            decided[index] = True
            continue
        if isinstance(planned, _DuplicateOf):
            run.repeats.append((index, planned.planned))
            continue
        if planned is not None:
            run.items.append(planned)
            if planned.key is not None:
                run.threads.setdefault(planned.key, planned.ticket)
                run.duplicates.setdefault(planned.key, planned)
            if planned.created and chained(msg):
                # What the chain adds to a new ticket (its team, an acknowledgement) comes
                # before anything later mail adds to it, as mail by mail.
                _write_run(session, run, lookup, results)
                run = _Run()
            continue
        _write_run(session, run, lookup, results)
        run = _Run()
        results[index] = receive_or_hold(session, msg, lookup=lookup)
        decided[index] = True
    _write_run(session, run, lookup, results)
    assert all(decided[i] or results[i] is not None for i in range(len(msgs)))
    return results


def _plan(
    session: Session, index: int, msg: InboundMessage, lookup: BatchLookup, run: _Run
) -> _Planned | _DuplicateOf | Received | _Held | None:
    """Decide one message without writing, or None when :func:`receive` must take it."""
    if (
        msg.channel_kind != ChannelKind.EMAIL.value
        or msg.identity_kind != IdentityKind.EMAIL.value
        or msg.ticket_id is not None
    ):
        return None
    key = dedupe_key(msg)
    if key is not None:
        existing = lookup.duplicates.get(key)
        if existing is not None:
            return Received(existing.ticket, existing, created=False, duplicate=True)
        earlier = run.duplicates.get(key)
        if earlier is not None:
            # Written (with its message) before the batch returns.
            return _DuplicateOf(earlier)
    address = normalize_email(msg.sender_address)  # a bad sender raises, as in receive()
    ticket: Ticket | None = None
    candidates = thread_candidates(msg.in_reply_to, msg.references)
    for ref in candidates:  # the first rule of find_email_thread, earlier messages included
        ticket = run.threads.get(ref)
        if ticket is None and ref in lookup.threads:
            stored = session.get(Ticket, lookup.threads[ref])
            ticket = follow_merge(session, stored) if stored is not None else None
        if ticket is not None:
            break
    auto = msg.auto_submitted or msg.is_bounce
    if ticket is None:
        if subject_ticket_number(msg.subject) is not None or any(
            ticket_id_from_message_id(ref) is not None for ref in candidates
        ):
            return None  # threading's later rules read the database: receive() decides
        if msg.thread_only:
            return _HELD
    elif not ticket.active and not auto:
        return None  # a customer reopening a ticket: status change and reassignment
    if (
        msg.cc
        and ticket is not None
        and ticket.id is not None
        and ticket.id not in lookup.participants  # a ticket opened by receive() in this batch
    ):
        lookup.participants[ticket.id] = set(
            session.scalars(
                select(ticket_participants.c.customer_id).where(
                    ticket_participants.c.ticket_id == ticket.id
                )
            )
        )
    customer = _customer(lookup, address, msg.sender_name, msg.language)
    when = utcnow()
    created = ticket is None
    if ticket is None:
        ticket = tickets.new_ticket(
            customer=customer,
            number=0,  # reserved for the whole run when it is written
            subject=msg.subject or msg.text,
            channel=ChannelKind.EMAIL,
            channel_id=msg.channel_id,
            language=msg.language,
            created_at=when,
            priority=Priority.NORMAL if msg.priority is None else msg.priority,
        )
    # The ticket's side of the message now, so a new ticket is inserted with its final values.
    count_message(ticket, when)
    planned = _Planned(index, msg, key, customer, ticket, created, auto, when)
    if msg.cc:
        planned.cc = _new_participants(lookup, run, ticket, msg.cc)
    return planned


def _customer(
    lookup: BatchLookup, address: str, name: str | None = None, language: str | None = None
) -> Customer:
    """The batch's customer of a normalised address: known to the lookup (read up front, or
    made earlier in the batch by anyone: a sender, a Cc), else a new one, added to the session
    when its run is written. The lookup is the one place that decides, so an address never
    gets two records in one batch."""
    customer = lookup.customers.get(address)
    if customer is not None:
        fill_in(customer, name, language)
        return customer
    customer = new_customer(IdentityKind.EMAIL, address, name, language)
    lookup.customers[address] = customer
    return customer


def _new_participants(
    lookup: BatchLookup, run: _Run, ticket: Ticket, cc: list[str]
) -> list[Customer]:
    """Who of ``cc`` becomes a participant of ``ticket``: what receive()'s participants step
    decides, from the lookup instead of the database."""
    stored = lookup.participants.get(ticket.id) if ticket.id is not None else None
    planned = run.participants.setdefault(id(ticket), [])
    added: list[Customer] = []
    for address in cc:
        try:
            person = _customer(lookup, normalize_email(address))
        except ServiceError:
            continue  # a malformed Cc address is not worth losing the mail over
        if person is ticket.customer if ticket.id is None else person.id == ticket.customer_id:
            continue
        if (stored is not None and person.id in stored) or any(p is person for p in planned):
            continue
        planned.append(person)
        added.append(person)
    return added


class _Held:
    """A ``thread_only`` message that continues no conversation: nothing to write."""


_HELD = _Held()


@dataclass(frozen=True, slots=True)
class _DuplicateOf:
    """A repeat of a message planned earlier in the same run."""

    planned: _Planned


def _write_run(
    session: Session,
    run: _Run,
    lookup: BatchLookup,
    results: list[Received | None],
) -> None:
    if not run.items:
        return
    session.flush()  # what earlier steps left pending, so the ids handed out below are free
    opened = [p.ticket for p in run.items if p.created]
    for ticket, number in zip(
        opened, tickets.reserve_ticket_numbers(session, len(opened)), strict=True
    ):
        ticket.number = number
    # First-time senders (of new tickets, and of replies that thread by Message-ID) and Cc'd
    # people, in the order mail by mail would create them.
    customers = [
        c for c in dict.fromkeys(c for p in run.items for c in (p.customer, *p.cc)) if c.id is None
    ]
    if customers:
        # First-time senders from an organization's email domain join it (one statement).
        organizations.assign_by_domain(session, customers)
    _preassign_ids(session, customers)
    _preassign_ids(session, [i for c in customers for i in c.identities])
    _preassign_ids(session, opened)
    session.add_all(customers)  # with their identities
    session.add_all(opened)
    session.flush()
    for p in run.items:
        msg = p.msg
        meta = dict(msg.meta)
        if p.auto:
            meta["auto_submitted"] = True
        p.message = new_message(
            p.ticket.id,
            direction=Direction.INBOUND,
            kind=MessageKind.SYSTEM if p.auto else KIND_BY_CHANNEL[ChannelKind.EMAIL],
            author=p.customer,
            text=msg.text,
            html=msg.html,
            subject=msg.subject or None,
            full_text=msg.full_text,
            message_id=p.key,
            in_reply_to=msg.in_reply_to,
            references=msg.references,
            attachments=msg.attachments,
            meta=meta,
            raw_sha256=store_bytes(msg.raw) if msg.raw else None,
            created_at=p.when,
        )
    messages = [p.message for p in run.items if p.message is not None]
    _preassign_ids(session, messages)
    _preassign_ids(session, [a for m in messages for a in m.attachments])
    session.add_all(messages)
    session.flush()
    rows = [
        {"ticket_id": p.ticket.id, "customer_id": person.id} for p in run.items for person in p.cc
    ]
    if rows:
        session.execute(ticket_participants.insert(), rows)
    for p in run.items:
        # A new ticket's participants are all known; an older one's only if read before.
        known = (
            lookup.participants.setdefault(p.ticket.id, set())
            if p.created
            else lookup.participants.get(p.ticket.id)
        )
        if known is not None:
            known.update(person.id for person in p.cc)
    trail: list[AuditEvent] = []
    any_chained = False
    # The stream's events in receive()'s order, mail by mail: the sender's customer.created
    # (first mail only), ticket.created, message.created.
    unrecorded = {id(c) for c in customers}
    for p in run.items:
        message = p.message
        assert message is not None
        finish_html(message, p.msg.html)
        if id(p.customer) in unrecorded:
            unrecorded.discard(id(p.customer))
            record_customer_created(session, p.customer)
        if p.created:
            trail.append(tickets.record_opened(session, p.ticket, p.customer))
        record_message(session, p.ticket, message, p.customer)
        for person in p.cc:  # receive() creates Cc'd people after storing the message
            if id(person) in unrecorded:
                unrecorded.discard(id(person))
                record_customer_created(session, person)
        if p.key is not None:
            lookup.duplicates.setdefault(p.key, message)
            lookup.threads.setdefault(p.key, p.ticket.id)
        announcements.announce_message(session, p.ticket, message)
        if p.created:
            assignment.auto_assign(session, p.ticket)  # new tickets have no team: a no-op
        else:
            trail.append(
                audit.record(
                    session, p.ticket, p.customer, "message.received", message_id=message.id
                )
            )
        announcements.announce(session, p.ticket)
        received = Received(p.ticket, message, created=p.created)
        results[p.index] = received
        if chained(p.msg):
            any_chained = True
            run_chain(session, p.msg, received)
    if not any_chained:
        # Nothing but these entries was added since the flush above, in this order.
        _preassign_ids(session, trail)
    for index, p in run.repeats:
        assert p.message is not None
        results[index] = Received(p.ticket, p.message, created=False, duplicate=True)


def _preassign_ids(session: Session, rows: Sequence[Base]) -> None:
    """Give new rows of one table the ids SQLite would give them, before they are flushed.

    SQLite cannot tell which generated id belongs to which row of a multi-row
    ``INSERT ... RETURNING``, so SQLAlchemy inserts rows one statement each when the database
    makes the ids; with the ids known it sends one ``executemany`` per table. The ids are those
    SQLite would pick (its rowid is the largest one + 1, these tables have no AUTOINCREMENT),
    and they are safe: the transaction holds SQLite's write lock (``BEGIN IMMEDIATE``), and
    the caller flushes first, so no pending row of the table is waiting for an id. PostgreSQL
    batches the INSERTs by itself (its sequences' order is known): nothing to do there.
    """
    if not rows or session.get_bind().dialect.name != "sqlite":
        return
    mapper = inspect(type(rows[0]))
    column = mapper.primary_key[0]
    attribute = mapper.get_property_by_column(column).key
    start = session.connection().scalar(select(func.max(column))) or 0
    for offset, row in enumerate(rows, start=1):
        setattr(row, attribute, start + offset)
