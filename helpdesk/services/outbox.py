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
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from flask import Flask
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.models import ChannelKind, DeliveryStatus, Message, Ticket
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
        item = _Claimed(message.id, sender)
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
    if message is None or message.delivery_status != DeliveryStatus.SENDING:
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
    """Deliver what is due; returns how many messages were attempted."""
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
