"""The email channel's services: mailbox checkpoints, quarantine and replay, bounces, the
auto-reply limit, acknowledgements.

Like every service they take the caller's session and never commit. Replaying quarantined mail
runs the ingest pipeline, which imports this module, so ``channels.registry`` hands the pipeline
over (:func:`register_pipeline`) instead of this module importing it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.email.models import AutoReplyLog, MailCheckpoint, QuarantinedMail
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import (
    Channel,
    CustomerIdentity,
    DeliveryStatus,
    Direction,
    IdentityKind,
    Message,
    MessageKind,
    Ticket,
)
from helpdesk.services import announcements, audit, events, messages, stream
from helpdesk.services.attachments import read_bytes, store_bytes
from helpdesk.services.conversations import make_message_id
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import NotFound, ServiceError

_MAX_ERROR = 4000

# --- checkpoints ------------------------------------------------------------------------------


def get_checkpoint(session: Session, channel_id: int, folder: str) -> MailCheckpoint | None:
    return session.scalar(
        select(MailCheckpoint).where(
            MailCheckpoint.channel_id == channel_id, MailCheckpoint.folder == folder
        )
    )


def set_checkpoint(
    session: Session, channel_id: int, folder: str, uidvalidity: int, last_uid: int
) -> MailCheckpoint:
    """Move the checkpoint forward (never back: a ``--since`` backfill re-reads old UIDs)."""
    checkpoint = get_checkpoint(session, channel_id, folder)
    if checkpoint is None:
        checkpoint = MailCheckpoint(
            channel_id=channel_id, folder=folder, uidvalidity=uidvalidity, last_uid=last_uid
        )
        session.add(checkpoint)
    elif checkpoint.uidvalidity != uidvalidity:
        # The server renumbered the folder: the old UIDs mean nothing any more.
        checkpoint.uidvalidity = uidvalidity
        checkpoint.last_uid = last_uid
    else:
        checkpoint.last_uid = max(checkpoint.last_uid, last_uid)
    checkpoint.updated_at = utcnow()
    return checkpoint


# --- quarantine -------------------------------------------------------------------------------


ERROR = "error"  # QuarantinedMail.reason: the mail could not be processed
AUTOMATIC = "automatic"  # automatic mail that continues no conversation: held, no ticket


def quarantine(
    session: Session,
    raw: bytes,
    error: str,
    *,
    channel_id: int | None,
    folder: str | None = None,
    uid: int | None = None,
    reason: str = ERROR,
) -> QuarantinedMail:
    """Keep a mail we could not process: its bytes go to the attachment store, never lost."""
    item = QuarantinedMail(
        channel_id=channel_id,
        raw_sha256=store_bytes(raw),
        size=len(raw),
        error=error[:_MAX_ERROR],
        reason=reason,
        folder=folder,
        uid=uid,
    )
    session.add(item)
    session.flush()
    return item


@dataclass(frozen=True, slots=True)
class Automatic:
    """One automatic mail to hold: its bytes, the filter's reason, where it was read."""

    raw: bytes
    auto_reason: str
    uid: int | None = None


def hold_automatic(
    session: Session,
    mails: Sequence[Automatic],
    *,
    channel_id: int | None,
    folder: str | None = None,
) -> list[QuarantinedMail]:
    """Keep automatic mail that continues no conversation (an out-of-office from a stranger, a
    newsletter) out of the queue, where an admin sees it and can replay it into a ticket.

    The same mail fetched again (a ``--since`` backfill, a UIDVALIDITY resync) is held once.
    A batch's held mails are looked up and written together (one query, one flush).
    """
    digests = [store_bytes(mail.raw) for mail in mails]
    same_channel = (
        QuarantinedMail.channel_id.is_(None)
        if channel_id is None
        else QuarantinedMail.channel_id == channel_id
    )
    held: dict[str, QuarantinedMail] = {}
    for chunk in (digests[i : i + 500] for i in range(0, len(digests), 500)):
        for item in session.scalars(
            select(QuarantinedMail).where(
                QuarantinedMail.raw_sha256.in_(chunk),
                QuarantinedMail.reason == AUTOMATIC,
                same_channel,
            )
        ):
            held.setdefault(item.raw_sha256, item)
    result: list[QuarantinedMail] = []
    for mail, digest in zip(mails, digests, strict=True):
        found = held.get(digest)
        if found is None:
            found = QuarantinedMail(
                channel_id=channel_id,
                raw_sha256=digest,
                size=len(mail.raw),
                error=mail.auto_reason[:_MAX_ERROR],
                reason=AUTOMATIC,
                folder=folder,
                uid=mail.uid,
            )
            session.add(found)
            held[digest] = found
        result.append(found)
    session.flush()
    return result


def quarantined(
    session: Session, *, include_replayed: bool = False, reason: str | None = None
) -> list[QuarantinedMail]:
    """Quarantined mail, newest first; ``reason`` keeps one kind (``ERROR``/``AUTOMATIC``)."""
    query = select(QuarantinedMail).order_by(QuarantinedMail.id.desc())
    if not include_replayed:
        query = query.where(QuarantinedMail.replayed_at.is_(None))
    if reason is not None:
        query = query.where(QuarantinedMail.reason == reason)
    return list(session.scalars(query))


def get_quarantined(session: Session, item_id: int) -> QuarantinedMail:
    item = session.get(QuarantinedMail, item_id)
    if item is None:
        raise NotFound(_("Quarantined mail not found."))
    return item


def quarantined_raw(item: QuarantinedMail) -> bytes:
    return read_bytes(item.raw_sha256)


def quarantine_row(item: QuarantinedMail) -> dict[str, Any]:
    return {
        "id": item.id,
        "channel_id": item.channel_id,
        "size": item.size,
        "reason": item.reason,
        "error": item.error,
        "folder": item.folder,
        "uid": item.uid,
        "received_at": item.received_at.isoformat(),
        "replayed_at": item.replayed_at.isoformat() if item.replayed_at else None,
        "replayed_message_id": item.replayed_message_id,
    }


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """What the adapter's pipeline did with one raw mail."""

    message: Message | None  # the stored message (also for a duplicate)
    quarantined: QuarantinedMail | None  # also automatic mail held (``reason`` AUTOMATIC)
    created: bool = False
    duplicate: bool = False
    # Stored by the per-mail fallback after its batch failed (the slow path; a bench counts it).
    redone: bool = False

    @property
    def held(self) -> bool:
        return self.quarantined is not None and self.quarantined.reason == AUTOMATIC


# (session, raw, channel, as_person) -> result; must not raise for bad mail (it quarantines
# instead). ``as_person``: the mail is a person's whatever the filters say (a replay of held
# automatic mail): it is not held again, and it opens a ticket like any customer's mail.
Pipeline = Callable[[Session, bytes, Channel | None, bool], PipelineResult]


def register_pipeline(app: Flask, pipeline: Pipeline) -> None:
    app.extensions["helpdesk.mail_pipeline"] = pipeline


def replay(session: Session, item: QuarantinedMail) -> QuarantinedMail | Message:
    """Run a quarantined mail through the pipeline again.

    Returns the stored message on success, or the new quarantine entry when it fails again
    (the old entry stays, so the history of attempts is visible). Held automatic mail is
    replayed as a person's mail: the admin says the filters were wrong, so it opens a ticket.
    """
    if item.replayed_at is not None:
        raise ServiceError(_("This mail was already replayed."))
    pipeline: Pipeline | None = current_app.extensions.get("helpdesk.mail_pipeline")
    if pipeline is None:
        raise ServiceError(_("The email channel is not installed."))
    channel = session.get(Channel, item.channel_id) if item.channel_id else None
    result = pipeline(session, quarantined_raw(item), channel, item.reason == AUTOMATIC)
    if result.message is None:
        assert result.quarantined is not None
        if result.held:
            # Processed after all: automatic mail of no conversation, held from now on.
            item.replayed_at = utcnow()
        return result.quarantined
    item.replayed_at = utcnow()
    item.replayed_message_id = result.message.id
    return result.message


# --- bounces ----------------------------------------------------------------------------------


def record_bounce(
    session: Session,
    *,
    original_message_id: str | None,
    recipient: str | None,
    status: str | None,
    diagnostic: str | None,
) -> Message | None:
    """A delivery failure report for one of our mails.

    The outbound message is marked ``failed`` with the DSN status and reason (shown on the
    ticket), and the recipient's address is flagged as bouncing. Returns the failed message.
    """
    # Stored as the report says it (like SMTP errors): the ticket page words it for the reader.
    reason = " ".join(p for p in (status, diagnostic) if p) or "bounced"
    failed: Message | None = None
    if original_message_id:
        failed = session.scalar(
            select(Message)
            .where(
                Message.message_id == original_message_id.strip().strip("<>"),
                Message.direction == Direction.OUTBOUND,
            )
            .limit(1)
        )
    if failed is not None and failed.delivery_status is not None:
        failed.delivery_status = DeliveryStatus.FAILED
        failed.delivery_error = f"bounce: {reason}"[:2000]
        failed.lease_until = None
        failed.meta = {**failed.meta, "bounce": {"status": status, "diagnostic": diagnostic}}
        ticket = failed.ticket
        audit.record(session, ticket, None, "message.bounced", message_id=failed.id, reason=reason)
        stream.record(
            session,
            "message.delivery",
            "message",
            failed.id,
            None,
            ticket_id=ticket.id,
            status=failed.delivery_status.value,
            attempts=failed.delivery_attempts,
            error=reason,
            bounced=True,
        )
        events.send_event_on_commit(
            session,
            "message.delivery",
            {
                "ticket_id": ticket.id,
                "message_id": failed.id,
                "status": DeliveryStatus.FAILED.value,
                "error": failed.delivery_error,
                "event": "message.failed",
            },
            rooms=[f"ticket:{ticket.id}"],
        )
        announcements.announce(session, ticket)
        if not recipient and failed.recipients:
            recipient = failed.recipients[0]
    if recipient:
        identity = session.scalar(
            select(CustomerIdentity).where(
                CustomerIdentity.kind == IdentityKind.EMAIL,
                CustomerIdentity.value == recipient.strip().lower(),
            )
        )
        if identity is not None:
            identity.bouncing = True
    return failed


def is_bouncing(session: Session, address: str) -> bool:
    return bool(
        session.scalar(
            select(CustomerIdentity.bouncing).where(
                CustomerIdentity.kind == IdentityKind.EMAIL,
                CustomerIdentity.value == address.strip().lower(),
            )
        )
    )


# --- automatic mail ---------------------------------------------------------------------------


def may_auto_reply(session: Session, address: str) -> bool:
    """Per-recipient rate limit of our automatic mails (``MAIL_AUTO_REPLY_LIMIT`` per hour).

    A customer whose own autoresponder answers every mail, or a flood of forged senders, gets
    at most a few acknowledgements, never a mail storm.
    """
    limit = int(current_app.config.get("MAIL_AUTO_REPLY_LIMIT", 3))
    window = timedelta(seconds=float(current_app.config.get("MAIL_AUTO_REPLY_WINDOW", 3600)))
    sent = session.scalar(
        select(func.count(AutoReplyLog.id)).where(
            AutoReplyLog.address == address.lower(), AutoReplyLog.sent_at >= utcnow() - window
        )
    )
    return int(sent or 0) < limit


def queue_acknowledgement(session: Session, ticket: Ticket, inbound: Message) -> Message | None:
    """The "we got your mail" answer to a new ticket, through the outbox.

    System-authored (no agent), never changes the ticket's status, and skipped for bouncing
    addresses and over the per-recipient limit. The sender marks it ``Auto-Submitted``.
    """
    customer = ticket.customer
    address = customer.email
    if not address or is_bouncing(session, address) or not may_auto_reply(session, address):
        return None
    session.add(AutoReplyLog(address=address.lower()))
    language = customer.language or ticket.language or current_app.config["BABEL_DEFAULT_LOCALE"]
    # The timeline line is stored in the customer's language (the language of the mail itself).
    with force_locale(language):
        text = _("Automatic acknowledgement of ticket #%(number)s", number=ticket.number)
    # Dedupe keys of mail without a Message-ID ("fp:<hash>") are ours, not the customer's.
    thread_id = inbound.message_id if not (inbound.message_id or "fp:").startswith("fp:") else None
    message = messages.append_message(
        session,
        ticket,
        direction=Direction.OUTBOUND,
        kind=MessageKind.EMAIL,
        author=None,
        text=text,
        subject=ticket.subject,
        message_id=make_message_id(ticket.id),
        in_reply_to=thread_id,
        references=[r for r in [*inbound.references, thread_id or ""] if r][-20:],
        recipients=[address],
        delivery_status=DeliveryStatus.QUEUED,
        meta={"template": "acknowledgement", "automatic": True},
    )
    wake_worker_on_commit(session)
    return message
