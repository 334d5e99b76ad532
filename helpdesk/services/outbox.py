"""Delivering outbound messages: the transactional outbox, drained by the worker.

A reply is stored as ``queued`` in the same transaction as everything else (``reply_to_ticket``).
``drain`` then, in three steps so no network call ever happens while a transaction holds the
database:

1. claim due messages (``queued`` and due, or ``sending`` whose lease expired because a worker
   died mid-send) and let the channel's sender *prepare* each one (render the mail, look up the
   chat room) inside a short transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several
   workers drain side by side;
2. *send* each prepared message with no transaction open;
3. record ``sent``, or a failure with the next attempt time (exponential backoff), or ``failed``
   for good after a permanent error or too many attempts, which shows on the ticket.

Senders register by channel kind in ``create_app``; the core never knows SMTP.

Mail that is no ticket message (portal sign-in links and confirmations) goes the same way:
:func:`queue_mail` stores an ``outbound_mails`` row in the caller's transaction; the drain
composes it with the composer registered for its purpose and sends it with the email sender.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from flask import Flask
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.models import ChannelKind, DeliveryStatus, Message, OutboundMail, Ticket
from helpdesk.services import audit, events, stream
from helpdesk.services.effects import wake_worker_on_commit

log = logging.getLogger("helpdesk.outbox")


class DeliveryError(Exception):
    """A send failed. ``permanent`` means retrying cannot help (a 5xx, no address)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Sender(Protocol):
    def prepare(self, session: Session, message: Message, ticket: Ticket) -> Any:
        """Build what will be sent, inside the claiming transaction. May raise DeliveryError."""

    def send(self, prepared: Any) -> dict[str, Any] | None:
        """Send it, with no transaction open. Returns details to keep on the message."""


def register_sender(app: Flask, kind: ChannelKind | str, sender: Sender) -> None:
    app.extensions.setdefault("helpdesk.senders", {})[ChannelKind(kind).value] = sender


def sender_for(app: Flask, kind: ChannelKind | str) -> Sender | None:
    senders: dict[str, Sender] = app.extensions.get("helpdesk.senders", {})
    return senders.get(ChannelKind(kind).value)


@dataclass
class _Claimed:
    message_id: int
    sender: Sender | None
    # Which claim this is: a worker whose lease ran out must not record over the claim of the
    # worker that took over (its late failure would queue a mail that was sent).
    attempt: int = 0
    prepared: Any = None
    error: DeliveryError | None = None
    result: dict[str, Any] | None = None


def _backoff(app: Flask, attempts: int) -> timedelta:
    base = float(app.config["OUTBOX_BACKOFF_BASE_SECONDS"])
    seconds = min(base * (2 ** max(attempts - 1, 0)), 3600.0)
    # Jitter so a hundred replies queued while SMTP was down don't all retry in one burst.
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def _claim(app: Flask, session: Session, limit: int) -> list[_Claimed]:
    now = utcnow()
    query = (
        select(Message)
        .where(
            or_(
                (Message.delivery_status == DeliveryStatus.QUEUED)
                & (Message.next_attempt_at <= now),
                (Message.delivery_status == DeliveryStatus.SENDING) & (Message.lease_until < now),
            )
        )
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Message)
    claimed: list[_Claimed] = []
    lease = timedelta(seconds=float(app.config["OUTBOX_LEASE_SECONDS"]))
    for message in session.scalars(query):
        message.delivery_status = DeliveryStatus.SENDING
        message.lease_until = now + lease
        message.delivery_attempts += 1
        ticket = message.ticket
        sender = sender_for(app, ticket.channel)
        item = _Claimed(message.id, sender, message.delivery_attempts)
        if sender is None:
            item.error = DeliveryError(
                f"no sender for channel {ticket.channel.value}", permanent=True
            )
        else:
            try:
                item.prepared = sender.prepare(session, message, ticket)
            except DeliveryError as exc:
                item.error = exc
            except Exception as exc:  # a bug in a template must not wedge the outbox
                log.exception("preparing message %s failed", message.id)
                item.error = DeliveryError(f"{type(exc).__name__}: {exc}")
        claimed.append(item)
    return claimed


def _record(app: Flask, session: Session, item: _Claimed) -> None:
    message = session.get(Message, item.message_id)
    if (
        message is None
        or message.delivery_status != DeliveryStatus.SENDING
        or message.delivery_attempts != item.attempt
    ):
        return
    ticket = message.ticket
    now = utcnow()
    message.lease_until = None
    if item.error is None:
        message.delivery_status = DeliveryStatus.SENT
        message.sent_at = now
        message.delivery_error = None
        if item.result:
            message.meta = {**message.meta, "delivery": item.result}
        name = "message.sent"
    else:
        message.delivery_error = str(item.error)[:2000]
        max_attempts = int(app.config["OUTBOX_MAX_ATTEMPTS"])
        if item.error.permanent or message.delivery_attempts >= max_attempts:
            message.delivery_status = DeliveryStatus.FAILED
            audit.record(
                session,
                ticket,
                None,
                "message.failed",
                message_id=message.id,
                reason=message.delivery_error,
                attempts=message.delivery_attempts,
            )
            name = "message.failed"
        else:
            message.delivery_status = DeliveryStatus.QUEUED
            message.next_attempt_at = now + _backoff(app, message.delivery_attempts)
            name = "message.retry"
    stream.record(
        session,
        "message.delivery",
        "message",
        message.id,
        None,
        ticket_id=ticket.id,
        status=message.delivery_status.value,
        attempts=message.delivery_attempts,
        error=message.delivery_error,
    )
    events.send_event_on_commit(
        session,
        "message.delivery",
        {
            "ticket_id": ticket.id,
            "message_id": message.id,
            "status": message.delivery_status.value,
            "error": message.delivery_error,
            "event": name,
        },
        rooms=[f"ticket:{ticket.id}"],
    )


def drain(app: Flask, limit: int = 50) -> int:
    """Deliver what is due (ticket messages, then other mail); returns how many were attempted."""
    return _drain_messages(app, limit) + _drain_mails(app, limit)


def _drain_messages(app: Flask, limit: int) -> int:
    with db.transaction(app) as session:
        claimed = _claim(app, session, limit)
    for item in claimed:
        if item.error is not None or item.sender is None:
            continue
        try:
            item.result = item.sender.send(item.prepared)
        except DeliveryError as exc:
            item.error = exc
        except Exception as exc:  # network trouble and the like: retry later
            log.warning("delivery of message %s failed: %s", item.message_id, exc)
            item.error = DeliveryError(f"{type(exc).__name__}: {exc}")
    if claimed:
        with db.transaction(app) as session:
            for item in claimed:
                _record(app, session, item)
    return len(claimed)


def retry_now(session: Session, message: Message) -> None:
    """An agent asks to try a failed message again."""
    if message.delivery_status in (DeliveryStatus.FAILED, DeliveryStatus.QUEUED):
        message.delivery_status = DeliveryStatus.QUEUED
        message.next_attempt_at = utcnow()
        message.delivery_attempts = 0
        audit.record(session, message.ticket, None, "message.retry", message_id=message.id)
        wake_worker_on_commit(session)


# --- mail that belongs to no ticket message ------------------------------------------------------
# Portal sign-in links and ticket confirmations (later: reminders, notifications). The same
# three steps and the same backoff as replies; the mail is composed when claimed, by the composer
# registered for its purpose, and sent by the email channel's sender.

MailComposer = Callable[[Session, OutboundMail], Any]


def register_mail_composer(app: Flask, purpose: str, composer: MailComposer) -> None:
    """``composer(session, row)`` builds the mail for ``row`` (inside the claiming transaction;
    may raise DeliveryError) in the form the email sender sends."""
    app.extensions.setdefault("helpdesk.mail_composers", {})[purpose] = composer


def queue_mail(
    session: Session,
    purpose: str,
    recipient: str,
    *,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    language: str | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboundMail:
    """Queue a mail in the caller's transaction; the worker sends it after the commit."""
    row = OutboundMail(
        purpose=purpose,
        recipient=recipient,
        customer_id=customer_id,
        ticket_id=ticket_id,
        language=language,
        payload=payload or {},
        status=DeliveryStatus.QUEUED,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    session.flush()
    wake_worker_on_commit(session)
    return row


@dataclass
class _ClaimedMail:
    mail_id: int
    attempt: int  # as _Claimed.attempt
    prepared: Any = None
    error: DeliveryError | None = None


def _claim_mails(app: Flask, session: Session, limit: int) -> list[_ClaimedMail]:
    now = utcnow()
    query = (
        select(OutboundMail)
        .where(
            or_(
                (OutboundMail.status == DeliveryStatus.QUEUED)
                & (OutboundMail.next_attempt_at <= now),
                (OutboundMail.status == DeliveryStatus.SENDING) & (OutboundMail.lease_until < now),
            )
        )
        .order_by(OutboundMail.next_attempt_at, OutboundMail.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    composers: dict[str, MailComposer] = app.extensions.get("helpdesk.mail_composers", {})
    lease = timedelta(seconds=float(app.config["OUTBOX_LEASE_SECONDS"]))
    claimed: list[_ClaimedMail] = []
    for row in session.scalars(query):
        row.status = DeliveryStatus.SENDING
        row.lease_until = now + lease
        row.attempts += 1
        item = _ClaimedMail(row.id, row.attempts)
        composer = composers.get(row.purpose)
        if composer is None:
            item.error = DeliveryError(f"nobody composes {row.purpose} mail", permanent=True)
        else:
            try:
                item.prepared = composer(session, row)
            except DeliveryError as exc:
                item.error = exc
            except Exception as exc:  # a bug in a template must not wedge the outbox
                log.exception("composing mail %s failed", row.id)
                item.error = DeliveryError(f"{type(exc).__name__}: {exc}")
        claimed.append(item)
    return claimed


def _drain_mails(app: Flask, limit: int) -> int:
    with db.transaction(app) as session:
        claimed = _claim_mails(app, session, limit)
    if not claimed:
        return 0
    sender = sender_for(app, ChannelKind.EMAIL)
    for item in claimed:
        if item.error is not None:
            continue
        if sender is None:
            item.error = DeliveryError("no email sender", permanent=True)
            continue
        try:
            sender.send(item.prepared)
        except DeliveryError as exc:
            item.error = exc
        except Exception as exc:  # network trouble and the like: retry later
            log.warning("delivery of mail %s failed: %s", item.mail_id, exc)
            item.error = DeliveryError(f"{type(exc).__name__}: {exc}")
    with db.transaction(app) as session:
        for item in claimed:
            _record_mail(app, session, item)
    return len(claimed)


def _record_mail(app: Flask, session: Session, item: _ClaimedMail) -> None:
    row = session.get(OutboundMail, item.mail_id)
    if row is None or row.status != DeliveryStatus.SENDING or row.attempts != item.attempt:
        return
    now = utcnow()
    row.lease_until = None
    if item.error is None:
        row.status = DeliveryStatus.SENT
        row.sent_at = now
        row.error = None
        return
    row.error = str(item.error)[:2000]
    if item.error.permanent or row.attempts >= int(app.config["OUTBOX_MAX_ATTEMPTS"]):
        row.status = DeliveryStatus.FAILED
        log.warning("%s mail %s failed for good: %s", row.purpose, row.id, row.error)
    else:
        row.status = DeliveryStatus.QUEUED
        row.next_attempt_at = now + _backoff(app, row.attempts)
