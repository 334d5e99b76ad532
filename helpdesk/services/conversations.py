"""Which ticket a message belongs to, and Message-IDs that carry their ticket.

Our outbound Message-IDs look like ``hd.<ticket id>.<random>.<mac>@<domain>``; the MAC (HMAC of
the ticket id and random part with the instance secret) lets a reply thread even when the
Message-ID was never stored (a restored backup, a mail sent by another instance), and a forged
id naming someone else's ticket is rejected.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Customer, Message, Ticket, ticket_participants

_OUR_ID = re.compile(r"^hd\.(\d+)\.([A-Za-z0-9]+)\.([0-9a-f]{16})@", re.ASCII)
_SUBJECT_TOKEN = re.compile(r"\[#(\d+)\]")


def _mac(ticket_id: int, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"msgid:{ticket_id}:{nonce}".encode(), hashlib.sha256).hexdigest()[:16]


def message_domain() -> str:
    sender = str(current_app.config.get("MAIL_FROM") or "helpdesk.invalid")
    return sender.rsplit("@", 1)[-1] or "helpdesk.invalid"


def make_message_id(ticket_id: int, domain: str | None = None) -> str:
    """A new Message-ID (without angle brackets) that names its ticket, signed."""
    nonce = secrets.token_hex(8)
    return f"hd.{ticket_id}.{nonce}.{_mac(ticket_id, nonce)}@{domain or message_domain()}"


def ticket_id_from_message_id(message_id: str) -> int | None:
    """The ticket id from one of our Message-IDs, or None when it is not ours or is forged."""
    m = _OUR_ID.match(message_id.strip().strip("<>"))
    if not m:
        return None
    ticket_id, nonce, mac = int(m.group(1)), m.group(2), m.group(3)
    return ticket_id if hmac.compare_digest(mac, _mac(ticket_id, nonce)) else None


def subject_ticket_number(subject: str) -> int | None:
    m = _SUBJECT_TOKEN.search(subject or "")
    return int(m.group(1)) if m else None


def is_participant(session: Session, ticket: Ticket, customer: Customer) -> bool:
    if ticket.customer_id == customer.id:
        return True
    return (
        session.scalar(
            select(ticket_participants.c.customer_id).where(
                ticket_participants.c.ticket_id == ticket.id,
                ticket_participants.c.customer_id == customer.id,
            )
        )
        is not None
    )


def follow_merge(session: Session, ticket: Ticket) -> Ticket:
    """Mail to a merged ticket lands in the ticket it was merged into."""
    seen = {ticket.id}
    while ticket.merged_into_id is not None and ticket.merged_into_id not in seen:
        target = session.get(Ticket, ticket.merged_into_id)
        if target is None:
            break
        seen.add(target.id)
        ticket = target
    return ticket


def thread_candidates(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    """The ids a mail may continue, in the order they are tried: In-Reply-To, then References
    right to left (angle brackets removed)."""
    candidates: list[str] = []
    for ref in [in_reply_to, *reversed(references)]:
        if ref and ref not in candidates:
            candidates.append(ref.strip().strip("<>"))
    return candidates


def find_email_thread(
    session: Session,
    *,
    customer: Customer | None,
    subject: str,
    in_reply_to: str | None,
    references: list[str],
    known: Mapping[str, int] | None = None,
) -> Ticket | None:
    """The ticket an inbound mail continues, in the order of the design:

    1. In-Reply-To and References (right to left) against stored Message-IDs;
    2. our signed Message-IDs (even when never stored);
    3. a ``[#1042]`` subject token, only when the sender is a participant of that ticket
       (``customer`` is ``None`` for a sender with no record yet: never a participant).
    A plain "Re:" from an unrelated sender never joins someone else's ticket.

    ``known`` (stored Message-ID -> ticket id), when given, already holds every stored id among
    the candidates (a batch read them in one query), so none is looked up one by one.
    """
    candidates = thread_candidates(in_reply_to, references)
    for ref in candidates:
        if known is not None:
            ticket_id = known.get(ref)
        else:
            ticket_id = session.scalar(
                select(Message.ticket_id).where(Message.message_id == ref).limit(1)
            )
        if ticket_id is not None:
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None:
                return follow_merge(session, ticket)
    for ref in candidates:
        ticket_id = ticket_id_from_message_id(ref)
        if ticket_id is not None:
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None:
                return follow_merge(session, ticket)
    number = subject_ticket_number(subject) if customer is not None else None
    if number is not None and customer is not None:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number))
        if ticket is not None and is_participant(session, ticket, customer):
            return follow_merge(session, ticket)
    return None


_MESSAGE_ID = re.compile(r"^[^\s<>@]+@[^\s<>@]+$")


def is_message_id(value: str | None) -> bool:
    """Whether ``value`` (without angle brackets) is a Message-ID a mail header may carry
    (RFC 5322: ``left@right``); a chat line's client id is not."""
    return bool(value) and _MESSAGE_ID.match(value or "") is not None
