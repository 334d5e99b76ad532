"""The one inbound path: every channel's message enters the core here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.inbound import InboundMessage
from helpdesk.i18n import _
from helpdesk.models import (
    ChannelKind,
    Customer,
    Direction,
    IdentityKind,
    Message,
    MessageKind,
    Ticket,
    ticket_participants,
)
from helpdesk.services import audit, tickets
from helpdesk.services.attachments import store_bytes
from helpdesk.services.customers import resolve_customer
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


def _find_duplicate(session: Session, msg: InboundMessage, key: str) -> Message | None:
    query = (
        select(Message)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.message_id == key, Message.direction == Direction.INBOUND)
    )
    if msg.channel_id is not None:
        query = query.where(Ticket.channel_id == msg.channel_id)
    else:
        query = query.where(Ticket.channel == ChannelKind(msg.channel_kind))
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


def receive(session: Session, msg: InboundMessage) -> Received:
    """Resolve the customer, find or open the ticket, append the message.

    The caller owns the transaction and commits once per inbound message. Receiving the same
    message twice (same Message-ID on the same channel) writes nothing the second time.
    """
    channel = ChannelKind(msg.channel_kind)
    key = _dedupe_key(msg)
    if key is not None:
        existing = _find_duplicate(session, msg, key)
        if existing is not None:
            return Received(existing.ticket, existing, created=False, duplicate=True)

    customer: Customer = resolve_customer(
        session,
        IdentityKind(msg.identity_kind),
        msg.sender_address,
        name=msg.sender_name,
        language=msg.language,
    )

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
    if msg.cc:
        _add_participants(session, ticket, msg.cc)
    if not created and not auto:
        tickets.reopen_on_customer_message(session, ticket, customer)
    if not created:
        audit.record(session, ticket, customer, "message.received", message_id=message.id)
    tickets.announce(session, ticket)
    return Received(ticket, message, created=created)
