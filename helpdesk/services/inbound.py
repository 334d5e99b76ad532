"""The one inbound path: every channel's message enters the core here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from channels.inbound import InboundMessage
from helpdesk.i18n import _
from helpdesk.models import (
    ChannelKind,
    Customer,
    CustomerIdentity,
    Direction,
    IdentityKind,
    Message,
    MessageKind,
    Ticket,
    ticket_participants,
)
from helpdesk.services import assignment, audit, tickets
from helpdesk.services.attachments import store_bytes
from helpdesk.services.customers import normalize_email, resolve_customer
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.threading import find_email_thread, follow_merge, is_participant

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
    email = lookup is not None and msg.identity_kind == IdentityKind.EMAIL.value
    if email:
        assert lookup is not None
        address = normalize_email(msg.sender_address)
        known = lookup.customers.get(address)
        if known is not None:
            # The same fill-in as resolve_customer for a returning sender.
            if msg.sender_name and not known.name:
                known.name = msg.sender_name
            if msg.language and not known.language:
                known.language = msg.language
            return known
    customer = resolve_customer(
        session,
        IdentityKind(msg.identity_kind),
        msg.sender_address,
        name=msg.sender_name,
        language=msg.language,
    )
    if email:
        assert lookup is not None
        lookup.customers[normalize_email(msg.sender_address)] = customer
    return customer


def _find_duplicate(session: Session, msg: InboundMessage, key: str) -> Message | None:
    query = _duplicate_query(msg.channel_id, msg.channel_kind).where(Message.message_id == key)
    return session.scalars(query.limit(1)).first()


def _add_participants(session: Session, ticket: Ticket, addresses: list[str]) -> None:
    for address in addresses:
        try:
            person = resolve_customer(session, IdentityKind.EMAIL, address)
        except ServiceError:
            continue  # a malformed Cc address is not worth losing the mail over
        if person.id == ticket.customer_id or is_participant(session, ticket, person):
            continue
        session.execute(
            ticket_participants.insert().values(ticket_id=ticket.id, customer_id=person.id)
        )


def receive(
    session: Session, msg: InboundMessage, *, lookup: BatchLookup | None = None
) -> Received:
    """Resolve the customer, find or open the ticket, append the message.

    The caller owns the transaction and commits once per inbound message (or once per batch,
    with the batch's :func:`prefetch` as ``lookup``). Receiving the same message twice (same
    Message-ID on the same channel) writes nothing the second time.
    """
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
    message = tickets.append_message(
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
        attachments=[
            tickets.NewAttachment(a.filename, a.content_type, a.data, a.content_id, a.inline)
            for a in msg.attachments
        ],
        meta=meta,
        raw_sha256=raw_sha,
    )
    if lookup is not None and key is not None:
        lookup.duplicates.setdefault(key, message)
        lookup.threads.setdefault(key, ticket.id)
    if msg.cc:
        _add_participants(session, ticket, msg.cc)
    was_active = ticket.active
    if not created and not auto:
        tickets.reopen_on_customer_message(session, ticket, customer)
    if not created:
        audit.record(session, ticket, customer, "message.received", message_id=message.id)
    if created:
        assignment.auto_assign(session, ticket)  # opened straight into an auto-assigning team
    elif ticket.active and not was_active:
        assignment.on_reopened(session, ticket)
    tickets.announce(session, ticket)
    return Received(ticket, message, created=created)
