"""The one inbound path: every channel's message enters the core here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Select, bindparam, func, inspect, select
from sqlalchemy.orm import Session, selectinload

from helpdesk.db import Base, utcnow
from helpdesk.i18n import _
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
    Team,
    Ticket,
    TicketStatus,
    ticket_participants,
)
from helpdesk.services import announcements, assignment, audit, tickets
from helpdesk.services.attachments import store_bytes
from helpdesk.services.conversations import (
    find_email_thread,
    follow_merge,
    is_participant,
    subject_ticket_number,
    thread_candidates,
    ticket_id_from_message_id,
)
from helpdesk.services.customers import (
    fill_in,
    new_customer,
    normalize_email,
    resolve_customer,
)
from helpdesk.services.customers import record_created as record_customer_created
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.messages import (
    append_message,
    can_write_now,
    count_message,
    finish_html,
    new_message,
    record_message,
    record_now,
)

_KIND_BY_CHANNEL = {
    ChannelKind.EMAIL: MessageKind.EMAIL,
    ChannelKind.PORTAL: MessageKind.PORTAL,
    ChannelKind.CHAT: MessageKind.CHAT,
}


@dataclass(frozen=True, slots=True)
class Received:
    ticket: Ticket
    message: Message
    created: bool  # a new ticket was opened
    duplicate: bool = False  # the same message was received before; nothing was written


def _dedupe_key(msg: InboundMessage) -> str | None:
    if msg.message_id:
        return msg.message_id.strip().strip("<>")
    fingerprint = msg.meta.get("fingerprint") if msg.meta else None
    return f"fp:{fingerprint}" if fingerprint else None


@dataclass(slots=True)
class BatchLookup:
    """What a batch of inbound messages of one channel needs to read, read up front.

    :func:`prefetch` fills it with one query each (not three or more per message);
    :func:`receive` reads it instead of querying and adds what it writes, so a reply later in
    the same batch finds the ticket, the customer and the Message-ID an earlier one stored.
    """

    channel_id: int | None
    channel_kind: str
    duplicates: dict[str, Message] = field(default_factory=dict)  # dedupe key -> inbound msg
    threads: dict[str, int] = field(default_factory=dict)  # any stored Message-ID -> ticket id
    customers: dict[str, Customer] = field(default_factory=dict)  # email address -> customer
    # The tickets of ``threads``, loaded up front. Held here because the session's identity map
    # holds objects weakly: without a reference they would be gone (and queried again) by the
    # time threading asks for them.
    tickets: dict[int, Ticket] = field(default_factory=dict)

    def serves(self, msg: InboundMessage) -> bool:
        return msg.channel_id == self.channel_id and msg.channel_kind == self.channel_kind


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
    keys = {k for k in (_dedupe_key(m) for m in msgs if lookup.serves(m)) if k is not None}
    for chunk in _chunks(keys):
        for found in session.scalars(
            _duplicate_query(lookup.channel_id, lookup.channel_kind)
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
    addresses: set[str] = set()
    for m in msgs:
        if m.identity_kind == IdentityKind.EMAIL.value:
            try:
                addresses.add(normalize_email(m.sender_address))
            except ServiceError:
                continue  # receive() reports it for that one message
    for chunk in _chunks(addresses):
        for value, customer in session.execute(
            select(CustomerIdentity.value, Customer)
            .join(Customer, Customer.id == CustomerIdentity.customer_id)
            .where(CustomerIdentity.kind == IdentityKind.EMAIL, CustomerIdentity.value.in_(chunk))
        ):
            lookup.customers[str(value)] = customer
    return lookup


def _duplicate_query(channel_id: int | None, channel_kind: str) -> Select[Message]:
    query = (
        select(Message)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.direction == Direction.INBOUND)
    )
    if channel_id is not None:
        return query.where(Ticket.channel_id == channel_id)
    return query.where(Ticket.channel == ChannelKind(channel_kind))


def _resolve_sender(session: Session, msg: InboundMessage, lookup: BatchLookup | None) -> Customer:
    if lookup is not None and msg.identity_kind == IdentityKind.EMAIL.value:
        return _email_customer(session, msg.sender_address, lookup, msg.sender_name, msg.language)
    return resolve_customer(
        session,
        IdentityKind(msg.identity_kind),
        msg.sender_address,
        name=msg.sender_name,
        language=msg.language,
    )


def _email_customer(
    session: Session,
    address: str,
    lookup: BatchLookup,
    name: str | None = None,
    language: str | None = None,
) -> Customer:
    """The customer of an email address in a batch: the batch's lookup is the one place that
    knows every customer the batch has created so far, whatever made them (a sender, a Cc).
    A customer created behind its back is created again by a later mail of the batch: two
    rows for one address, and the batch fails on the unique identity."""
    normalized = normalize_email(address)
    known = lookup.customers.get(normalized)
    if known is not None:
        fill_in(known, name, language)
        return known
    customer = resolve_customer(
        session, IdentityKind.EMAIL, normalized, name=name, language=language
    )
    lookup.customers[normalized] = customer
    return customer


@lru_cache(maxsize=64)
def _duplicate_by_key(channel_id: int | None, channel_kind: str) -> Select[Message]:
    # Built once per channel: constructing the statement anew cost more CPU than running it
    # (every chat line asks).
    return (
        _duplicate_query(channel_id, channel_kind)
        .where(Message.message_id == bindparam("key"))
        .limit(1)
    )


def _find_duplicate(session: Session, msg: InboundMessage, key: str) -> Message | None:
    query = _duplicate_by_key(msg.channel_id, msg.channel_kind)
    return session.scalars(query, {"key": key}).first()


def _add_participants(
    session: Session, ticket: Ticket, addresses: list[str], lookup: BatchLookup | None
) -> None:
    for address in addresses:
        try:
            person = (
                _email_customer(session, address, lookup)
                if lookup is not None
                else resolve_customer(session, IdentityKind.EMAIL, address)
            )
        except ServiceError:
            continue  # a malformed Cc address is not worth losing the mail over
        if person.id == ticket.customer_id or is_participant(session, ticket, person):
            continue
        session.execute(
            ticket_participants.insert().values(ticket_id=ticket.id, customer_id=person.id)
        )


# ---------------------------------------------------------------------------------------------
# The post-receive chain: what happens to a message once it is stored (Zammad's filters)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostReceiveStep:
    """One step of the chain. ``applies(msg)`` must be cheap and exact: a batch of mail none of
    whose messages a step applies to is written in bulk."""

    name: str
    order: int
    applies: Callable[[InboundMessage], bool]
    run: Callable[[Session, InboundMessage, Received], None]


_chain: list[PostReceiveStep] = []


def register_post_receive(step: PostReceiveStep) -> None:
    """Add (or replace, by name) a step; steps run in ``order`` after every stored message that
    is not a duplicate. Channels register theirs when the app is created."""
    global _chain
    _chain = sorted([s for s in _chain if s.name != step.name] + [step], key=lambda s: s.order)


def post_receive_steps() -> list[str]:
    return [step.name for step in _chain]


def _chained(msg: InboundMessage) -> bool:
    return any(step.applies(msg) for step in _chain)


def _run_chain(session: Session, msg: InboundMessage, received: Received) -> None:
    for step in _chain:
        if step.applies(msg):
            step.run(session, msg, received)


def give_default_team(session: Session, ticket: Ticket, team_id: int | None) -> None:
    """A new ticket goes to the team its channel names (an email account's, the chat's), unless
    it already has one. The one place of this rule: the chain's ``team`` step, and the chat,
    which must first create its chat row (a live chat is routed, not auto-assigned)."""
    if team_id is not None and ticket.team_id is None:
        team = session.get(Team, team_id)
        if team is not None:
            tickets.set_team(session, ticket, team, None)


def _default_team(session: Session, msg: InboundMessage, received: Received) -> None:
    if received.created:
        give_default_team(session, received.ticket, msg.team_id)


register_post_receive(
    PostReceiveStep("team", 10, lambda msg: msg.team_id is not None, _default_team)
)


def receive(
    session: Session,
    msg: InboundMessage,
    *,
    lookup: BatchLookup | None = None,
    sender: Customer | None = None,
) -> Received:
    """Resolve the customer, find or open the ticket, append the message, then run the
    post-receive chain (unless it was a duplicate).

    The caller owns the transaction and commits once per inbound message (or once per batch,
    with the batch's :func:`prefetch` as ``lookup``). Receiving the same message twice (same
    Message-ID on the same channel) writes nothing the second time.

    ``sender``: the customer the adapter already holds for this sender, instead of resolving
    the identity again (a line to a known chat: the chat's own customer, which it was opened
    by; one SELECT per line less). The ticket check below still applies to it.
    """
    received = _receive(session, msg, lookup=lookup, sender=sender)
    if not received.duplicate:
        _run_chain(session, msg, received)
    return received


def _receive(
    session: Session,
    msg: InboundMessage,
    *,
    lookup: BatchLookup | None = None,
    sender: Customer | None = None,
) -> Received:
    if lookup is not None and not lookup.serves(msg):
        lookup = None
    channel = ChannelKind(msg.channel_kind)
    key = _dedupe_key(msg)
    if key is not None:
        if lookup is not None:
            existing = lookup.duplicates.get(key)
        else:
            existing = _find_duplicate(session, msg, key)
        if existing is not None:
            return Received(existing.ticket, existing, created=False, duplicate=True)

    if sender is not None:
        customer = sender
        fill_in(customer, msg.sender_name, msg.language)
    else:
        customer = _resolve_sender(session, msg, lookup)

    ticket: Ticket | None = None
    if msg.ticket_id is not None:
        ticket = session.get(Ticket, msg.ticket_id)
        # The adapter named a ticket: it must be the sender's own (or one they take part in).
        if ticket is None or not is_participant(session, ticket, customer):
            raise NotFound(_("Ticket not found."))
        ticket = follow_merge(session, ticket)
    elif channel == ChannelKind.EMAIL:
        ticket = find_email_thread(
            session,
            customer=customer,
            subject=msg.subject,
            in_reply_to=msg.in_reply_to,
            references=msg.references,
            known=lookup.threads if lookup is not None else None,
        )

    created = ticket is None
    if ticket is None:
        ticket = tickets.open_ticket(
            session,
            customer=customer,
            subject=msg.subject or msg.text,
            channel=channel,
            channel_id=msg.channel_id,
            actor=customer,
            language=msg.language,
        )

    raw_sha = store_bytes(msg.raw) if msg.raw else None
    auto = msg.auto_submitted or msg.is_bounce
    meta = dict(msg.meta)
    if auto:
        meta["auto_submitted"] = True
    # A plain line to an open ticket (a chat line, mostly): nothing to reopen or assign, so the
    # message, the ticket's count and the audit entry are written at once with statements built
    # once instead of through two flushes of the unit of work (append_message).
    write_now = (
        not created
        and not auto
        and not msg.cc
        and lookup is None
        and not msg.attachments
        and ticket.status in (TicketStatus.NEW, TicketStatus.OPEN)
        and can_write_now(session, ticket)
    )
    message = append_message(
        session,
        ticket,
        direction=Direction.INBOUND,
        # Automatic mail is kept on the ticket as a system message: visible, never answered.
        kind=MessageKind.SYSTEM if auto else _KIND_BY_CHANNEL[channel],
        author=customer,
        text=msg.text,
        html=msg.html,
        subject=msg.subject or None,
        full_text=msg.full_text,
        message_id=key,
        in_reply_to=msg.in_reply_to,
        references=msg.references,
        attachments=msg.attachments,
        meta=meta,
        raw_sha256=raw_sha,
        write_now=write_now,
    )
    if lookup is not None and key is not None:
        lookup.duplicates.setdefault(key, message)
        lookup.threads.setdefault(key, ticket.id)
    if msg.cc:
        _add_participants(session, ticket, msg.cc, lookup)
    was_active = ticket.active
    if not created and not auto:
        tickets.reopen_on_customer_message(session, ticket, customer)
    if write_now:
        record_now(session, ticket, customer, "message.received", message_id=message.id)
    elif not created:
        audit.record(session, ticket, customer, "message.received", message_id=message.id)
    if created:
        assignment.auto_assign(session, ticket)  # opened straight into an auto-assigning team
    elif ticket.active and not was_active:
        assignment.on_reopened(session, ticket)
    announcements.announce(session, ticket)
    return Received(ticket, message, created=created)


# ---------------------------------------------------------------------------------------------
# Batches: the same outcome as ``receive`` mail by mail, with a few flushes per batch
# ---------------------------------------------------------------------------------------------


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
    message: Message | None = None


@dataclass(slots=True)
class _Run:
    """Messages planned since the last write, and what later ones in it may refer to."""

    items: list[_Planned] = field(default_factory=list)
    threads: dict[str, Ticket] = field(default_factory=dict)  # Message-ID -> its ticket
    duplicates: dict[str, _Planned] = field(default_factory=dict)
    repeats: list[tuple[int, _Planned]] = field(default_factory=list)  # in-run duplicates


def receive_batch(
    session: Session,
    msgs: Sequence[InboundMessage],
    lookup: BatchLookup,
    *,
    single: Callable[[InboundMessage], bool] | None = None,
) -> list[Received]:
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

    The plain case is planned: an email from an address, no Cc, not named by ``single``,
    threading by a Message-ID stored before or earlier in the batch, or a new ticket.
    Anything else (a Cc, a signed id or a ``[#1042]`` subject token to resolve, a reply that
    reopens a ticket, a message ``single`` names) goes through :func:`receive` itself, after
    the run before it is written, so it sees everything earlier in the batch.

    Like ``receive`` it raises on a message it cannot take (a sender that is not an
    address); the caller rolls the batch back and retries one by one.
    """
    results: list[Received | None] = [None] * len(msgs)
    run = _Run()
    for index, msg in enumerate(msgs):
        planned: _Planned | _DuplicateOf | Received | None = None
        if lookup.serves(msg) and (single is None or not single(msg)):
            with session.no_autoflush:
                planned = _plan(session, index, msg, lookup, run)
        if isinstance(planned, Received):  # a duplicate: nothing to write
            results[index] = planned
            continue
        if isinstance(planned, _DuplicateOf):
            run.repeats.append((index, planned.planned))
            continue
        if planned is not None:
            run.items.append(planned)
            if planned.key is not None:
                run.threads.setdefault(planned.key, planned.ticket)
                run.duplicates.setdefault(planned.key, planned)
            if planned.created and _chained(msg):
                # What the chain adds to a new ticket (its team, an acknowledgement) comes
                # before anything later mail adds to it, as mail by mail.
                _write_run(session, run, lookup, results)
                run = _Run()
            continue
        _write_run(session, run, lookup, results)
        run = _Run()
        results[index] = receive(session, msg, lookup=lookup)
    _write_run(session, run, lookup, results)
    done = [r for r in results if r is not None]
    assert len(done) == len(msgs)
    return done


def _plan(
    session: Session, index: int, msg: InboundMessage, lookup: BatchLookup, run: _Run
) -> _Planned | _DuplicateOf | Received | None:
    """Decide one message without writing, or None when :func:`receive` must take it."""
    if (
        msg.channel_kind != ChannelKind.EMAIL.value
        or msg.identity_kind != IdentityKind.EMAIL.value
        or msg.ticket_id is not None
        or msg.cc
    ):
        return None
    key = _dedupe_key(msg)
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
    elif not ticket.active and not auto:
        return None  # a customer reopening a ticket: status change and reassignment
    customer = lookup.customers.get(address)
    if customer is not None:
        fill_in(customer, msg.sender_name, msg.language)
    else:
        # Added to the session (through its ticket) when the run is written.
        customer = new_customer(IdentityKind.EMAIL, address, msg.sender_name, msg.language)
        lookup.customers[address] = customer
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
        )
    # The ticket's side of the message now, so a new ticket is inserted with its final values.
    count_message(ticket, when)
    return _Planned(index, msg, key, customer, ticket, created, auto, when)


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
    # First-time senders: of new tickets, and of replies that thread by Message-ID.
    customers = [c for c in dict.fromkeys(p.customer for p in run.items) if c.id is None]
    _preassign_ids(session, customers)
    _preassign_ids(session, [i for c in customers for i in c.identities])
    _preassign_ids(session, opened)
    session.add_all(customers)  # with their identities
    session.add_all(opened)
    session.flush()
    for customer in customers:
        record_customer_created(session, customer)
    for p in run.items:
        msg = p.msg
        meta = dict(msg.meta)
        if p.auto:
            meta["auto_submitted"] = True
        p.message = new_message(
            p.ticket.id,
            direction=Direction.INBOUND,
            kind=MessageKind.SYSTEM if p.auto else _KIND_BY_CHANNEL[ChannelKind.EMAIL],
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
    trail: list[AuditEvent] = []
    chained = False
    for p in run.items:
        message = p.message
        assert message is not None
        finish_html(message, p.msg.html)
        record_message(session, p.ticket, message, p.customer)
        if p.key is not None:
            lookup.duplicates.setdefault(p.key, message)
            lookup.threads.setdefault(p.key, p.ticket.id)
        if p.created:
            trail.append(tickets.record_opened(session, p.ticket, p.customer))
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
        if _chained(p.msg):
            chained = True
            _run_chain(session, p.msg, received)
    if not chained:
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
