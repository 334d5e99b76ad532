"""The one inbound path: every channel's message enters the core here (``receive``), then the
post-receive chain. A batch of mail takes the same path in bulk: ``services/inbound_batch.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.inbound import InboundMessage
from helpdesk.models import (
    ChannelKind,
    Customer,
    Direction,
    FieldObject,
    IdentityKind,
    Message,
    MessageKind,
    Priority,
    Team,
    Ticket,
    TicketStatus,
    ticket_participants,
)
from helpdesk.services import announcements, assignment, audit, custom_fields, tickets
from helpdesk.services.attachments import store_bytes
from helpdesk.services.conversations import (
    find_email_thread,
    follow_merge,
    is_participant,
)
from helpdesk.services.customers import (
    fill_in,
    find_by_identity,
    normalize_email,
    resolve_customer,
)
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.messages import (
    append_message,
    can_write_now,
    record_now,
)

KIND_BY_CHANNEL = {
    ChannelKind.EMAIL: MessageKind.EMAIL,
    ChannelKind.PORTAL: MessageKind.PORTAL,
    ChannelKind.CHAT: MessageKind.CHAT,
}


class NoConversation(ServiceError):
    """A message that may only continue a conversation (``InboundMessage.thread_only``)
    continues none: nothing was written."""

    code = "no_conversation"


@dataclass(frozen=True, slots=True)
class Received:
    ticket: Ticket
    message: Message
    created: bool  # a new ticket was opened
    duplicate: bool = False  # the same message was received before; nothing was written


def dedupe_key(msg: InboundMessage) -> str | None:
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
    # Participants (customer ids) of tickets the batch knows them of: those of ``tickets``
    # read up front, new tickets' (none), and what the batch adds.
    participants: dict[int, set[int]] = field(default_factory=dict)

    def serves(self, msg: InboundMessage) -> bool:
        return msg.channel_id == self.channel_id and msg.channel_kind == self.channel_kind


def duplicate_query(channel_id: int | None, channel_kind: str) -> Select[Message]:
    query = (
        select(Message)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.direction == Direction.INBOUND)
    )
    if channel_id is not None:
        return query.where(Ticket.channel_id == channel_id)
    return query.where(Ticket.channel == ChannelKind(channel_kind))


def _known_sender(
    session: Session, msg: InboundMessage, lookup: BatchLookup | None
) -> Customer | None:
    """The sender's customer if there is one, creating none (a thread-only message that
    continues no conversation must leave no customer behind)."""
    kind = IdentityKind(msg.identity_kind)
    if kind == IdentityKind.EMAIL:
        address = normalize_email(msg.sender_address)
        if lookup is not None:  # it holds every customer of the batch's senders
            return lookup.customers.get(address)
        return find_by_identity(session, kind, address)
    return find_by_identity(session, kind, msg.sender_address) if msg.sender_address else None


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
        duplicate_query(channel_id, channel_kind)
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
        known = lookup.participants.get(ticket.id) if lookup is not None else None
        if person.id == ticket.customer_id or (
            person.id in known if known is not None else is_participant(session, ticket, person)
        ):
            continue
        session.execute(
            ticket_participants.insert().values(ticket_id=ticket.id, customer_id=person.id)
        )
        if known is not None:
            known.add(person.id)


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


def chained(msg: InboundMessage) -> bool:
    return any(step.applies(msg) for step in _chain)


def run_chain(session: Session, msg: InboundMessage, received: Received) -> None:
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

    A ``thread_only`` message that continues no conversation raises :class:`NoConversation`
    having written nothing; :func:`receive_or_hold` returns ``None`` instead.
    """
    received = receive_or_hold(session, msg, lookup=lookup, sender=sender)
    if received is None:
        raise NoConversation(_("This message continues no conversation."))
    return received


def receive_or_hold(
    session: Session,
    msg: InboundMessage,
    *,
    lookup: BatchLookup | None = None,
    sender: Customer | None = None,
) -> Received | None:
    """:func:`receive`, except that a ``thread_only`` message (automatic mail) that continues
    no conversation is *held*: nothing is written (no customer, no ticket) and the result is
    ``None``, for the adapter to keep it where an admin can see it."""
    received = _receive(session, msg, lookup=lookup, sender=sender)
    if received is not None and not received.duplicate:
        run_chain(session, msg, received)
    return received


def _receive(
    session: Session,
    msg: InboundMessage,
    *,
    lookup: BatchLookup | None = None,
    sender: Customer | None = None,
) -> Received | None:
    if lookup is not None and not lookup.serves(msg):
        lookup = None
    channel = ChannelKind(msg.channel_kind)
    key = dedupe_key(msg)
    if key is not None:
        if lookup is not None:
            existing = lookup.duplicates.get(key)
        else:
            existing = _find_duplicate(session, msg, key)
        if existing is not None:
            return Received(existing.ticket, existing, created=False, duplicate=True)

    known: Customer | None = sender
    thread: Ticket | None = None
    if sender is not None:
        fill_in(sender, msg.sender_name, msg.language)
    elif msg.thread_only and msg.ticket_id is None and channel == ChannelKind.EMAIL:
        # Automatic mail: find its conversation before anything is created for it.
        known = _known_sender(session, msg, lookup)
        thread = find_email_thread(
            session,
            customer=known,
            subject=msg.subject,
            in_reply_to=msg.in_reply_to,
            references=msg.references,
            known=lookup.threads if lookup is not None else None,
        )
        if thread is None:
            return None
    customer = known if known is not None else _resolve_sender(session, msg, lookup)
    if known is not None and sender is None:
        fill_in(customer, msg.sender_name, msg.language)

    ticket: Ticket | None = None
    if msg.ticket_id is not None:
        ticket = session.get(Ticket, msg.ticket_id)
        # The adapter named a ticket: it must be the sender's own (or one they take part in).
        if ticket is None or not is_participant(session, ticket, customer):
            raise NotFound(_("Ticket not found."))
        ticket = follow_merge(session, ticket)
    elif thread is not None:
        ticket = thread
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
            priority=Priority.NORMAL if msg.priority is None else msg.priority,
        )
        if msg.custom:
            fields = custom_fields.fields_for(session, FieldObject.TICKET)
            ticket.custom = custom_fields.initial_values(fields, msg.custom)
    if msg.customer_custom:
        custom_fields.set_values(
            session, customer, msg.customer_custom, customer, strict_keys=False
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
        kind=MessageKind.SYSTEM if auto else KIND_BY_CHANNEL[channel],
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
