"""One raw mail through the whole inbound path: parse -> filters -> ``receive`` -> follow-ups.

:func:`process_mail` never raises for a bad mail: whatever goes wrong (bytes that are not a
mail, a sender that is not an address, a bug) rolls back a savepoint and the raw bytes go to
quarantine with the error, inside the caller's transaction. The caller (the IMAP fetcher, a
replay) owns that transaction and commits it together with the mailbox checkpoint.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from channels.email.filters import FilterContext, apply_filters
from channels.email.parser import MailParseError, parse_mail
from channels.inbound import InboundAttachment, InboundMessage
from helpdesk.models import Channel, Team
from helpdesk.services import mail as mail_service
from helpdesk.services import tickets
from helpdesk.services.errors import ServiceError
from helpdesk.services.inbound import receive
from helpdesk.services.mail import PipelineResult

log = logging.getLogger("helpdesk.mail")

_BENGALI = re.compile(r"[\u0980-\u09FF]")


def own_addresses(channel: Channel | None) -> set[str]:
    """Addresses mail from which is our own mail coming back (a loop)."""
    found = {str(current_app.config.get("MAIL_FROM") or "").lower()}
    if channel is not None and channel.address:
        found.add(channel.address.lower())
    return {a for a in found if a}


def _limit_attachments(msg: InboundMessage, max_bytes: int) -> None:
    """Attachments over the limit are not stored as files; the ticket says so.

    The raw message (kept for download) still holds them, so nothing is lost; the agent sees
    the name and size and where to find it.
    """
    kept: list[InboundAttachment] = []
    over: list[dict[str, Any]] = []
    for attachment in msg.attachments:
        if len(attachment.data) > max_bytes:
            over.append(
                {
                    "filename": attachment.filename,
                    "size": len(attachment.data),
                    "content_type": attachment.content_type,
                }
            )
        else:
            kept.append(attachment)
    if over:
        msg.attachments = kept
        msg.meta["attachments_over_limit"] = over
        msg.meta["attachment_limit"] = max_bytes


def _ingest(session: Session, raw: bytes, channel: Channel | None) -> PipelineResult:
    msg = parse_mail(raw)
    apply_filters(msg, FilterContext(own_addresses=own_addresses(channel)))
    msg.channel_id = channel.id if channel is not None else None
    if msg.language is None and _BENGALI.search(f"{msg.subject}\n{msg.text[:2000]}"):
        # Mail says nothing reliable about its language; a Bengali-script mail gets Bengali
        # acknowledgements and replies (an explicit customer setting still wins).
        msg.language = "bn"
    _limit_attachments(msg, int(current_app.config["ATTACHMENT_MAX_BYTES"]))
    bounce = msg.meta.get("bounce") if isinstance(msg.meta.get("bounce"), dict) else None
    if bounce and bounce.get("original_message_id") and not msg.in_reply_to:
        # A report carries no In-Reply-To; naming the mail that bounced threads the report
        # onto that ticket instead of opening one for MAILER-DAEMON.
        msg.in_reply_to = str(bounce["original_message_id"])
    received = receive(session, msg)
    if received.duplicate:
        return PipelineResult(received.message, None, duplicate=True)
    if msg.is_bounce and bounce is not None:
        mail_service.record_bounce(
            session,
            original_message_id=bounce.get("original_message_id"),
            recipient=bounce.get("recipient"),
            status=bounce.get("status"),
            diagnostic=bounce.get("diagnostic"),
        )
    if received.created and channel is not None:
        if channel.team_id is not None and received.ticket.team_id is None:
            team = session.get(Team, channel.team_id)
            tickets.set_team(session, received.ticket, team, None)
        # Never acknowledge automatic mail: two autoresponders answering each other is a loop.
        if (channel.settings or {}).get("acknowledge") and not msg.auto_submitted:
            mail_service.queue_acknowledgement(session, received.ticket, received.message)
    return PipelineResult(received.message, None, created=received.created)


def process_mail(
    session: Session,
    raw: bytes,
    channel: Channel | None,
    *,
    folder: str | None = None,
    uid: int | None = None,
) -> PipelineResult:
    """Ingest one mail in a savepoint of the caller's transaction, or quarantine it."""
    # Effects and announcements registered inside a rolled-back savepoint would still run at
    # the outer commit (only an outermost rollback drops them): keep a copy to restore.
    saved = {key: _copy(session.info[key]) for key in _PENDING_KEYS if key in session.info}
    try:
        with session.begin_nested():
            return _ingest(session, raw, channel)
    except (MailParseError, ServiceError) as exc:
        _restore(session, saved)
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        _restore(session, saved)
        # A bug or a database refusal for this one mail: keep it for replay, go on with the
        # next one. The worker never dies on bad mail.
        log.exception("mail uid=%s on channel %s could not be processed", uid, _name(channel))
        error = f"{type(exc).__name__}: {exc}"
    item = mail_service.quarantine(
        session,
        raw,
        error,
        channel_id=channel.id if channel is not None else None,
        folder=folder,
        uid=uid,
    )
    log.warning("mail uid=%s quarantined as #%s: %s", uid, item.id, error[:200])
    return PipelineResult(None, item)


_PENDING_KEYS = ("helpdesk.effects", "helpdesk.announce")


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else dict(value)


def _restore(session: Session, saved: dict[str, Any]) -> None:
    for key in _PENDING_KEYS:
        if key in saved:
            session.info[key] = saved[key]
        else:
            session.info.pop(key, None)


def _name(channel: Channel | None) -> str:
    return channel.name if channel is not None else "-"


def pipeline(session: Session, raw: bytes, channel: Channel | None) -> PipelineResult:
    """The pipeline as registered with ``services.mail`` (used for quarantine replay)."""
    return process_mail(session, raw, channel)
