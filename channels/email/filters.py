"""Small ordered filters that annotate a parsed mail before the core sees it.

Each filter is ``(msg, ctx) -> None`` and changes ``msg`` in place; :func:`apply_filters` runs
them in :data:`FILTERS` order. They read only the :class:`InboundMessage` (its fields,
``meta["headers"]`` and the attachments the parser kept), never the raw MIME tree, so each can
be tested with a hand-built message.

Annotations:

- ``msg.auto_submitted`` / ``msg.meta["auto_reason"]``: automatic mail (RFC 3834 auto-replies,
  mailing lists, our own mail coming back, bounces, a null envelope sender, auto-responders'
  subjects in English, Bengali and a few other languages). The first filter that decides wins the
  reason, so a bounce stays "bounce" even though bounces also say ``Auto-Submitted``.
- ``msg.is_bounce`` / ``msg.meta["bounce"]``: a delivery failure, with ``recipient``,
  ``status`` ("5.1.1"), ``action`` ("failed"), ``diagnostic`` and ``original_message_id``
  (any of them ``None`` when the report does not say).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from helpdesk.inbound import InboundMessage


@dataclass(frozen=True, slots=True)
class FilterContext:
    """What the filters know about the channel: its own addresses (lower-cased on use)."""

    own_addresses: set[str] = field(default_factory=set)


Filter = Callable[[InboundMessage, FilterContext], None]

# Precedence values that mean "nobody typed this" (RFC 3834 section 2, and common practice).
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
_DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})
_BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|returned to sender|returned mail|delivery status notification"
    r"|delivery failure|failure notice|mail delivery failed|delivery has failed",
    re.IGNORECASE,
)
# Subjects auto-responders write (Outlook "Automatic reply:", Gmail/Yahoo "Out of Office:",
# German, French, Spanish, Swedish ones, and Bengali), as a prefix with a colon or the whole
# subject. A person's "Out of office hours?" has neither. Matched on NFC text: Bengali য় has two
# encodings.
_AUTO_SUBJECT_WORDS = (
    r"auto(?:matic)?[ -]?(?:reply|response|answer)|autosvar|abwesenheitsnotiz"
    r"|r[ée]ponse automatique|respuesta autom[áa]tica"
    r"|out of (?:the )?office(?: (?:auto[ -]?)?reply)?|ooo|vacation (?:reply|notice|response)"
    r"|স্বয়ংক্রিয় (?:উত্তর|জবাব|প্রতিউত্তর)|অফিসের বাইরে"
)
_AUTO_SUBJECT_RE = re.compile(
    unicodedata.normalize("NFC", rf"^\s*(?:{_AUTO_SUBJECT_WORDS})\s*(?:[:ঃ]|$)"),
    re.IGNORECASE,
)
_STATUS_RE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_RECIPIENT_RE = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>\s*:")
_MESSAGE_ID_LINE_RE = re.compile(r"^[ \t>]*Message-ID:[ \t]*<([^<>]+)>", re.IGNORECASE | re.M)
_HEADER_BLOCKS = ("message/rfc822", "message/global", "text/rfc822-headers")


def apply_filters(msg: InboundMessage, ctx: FilterContext) -> None:
    for mail_filter in FILTERS:
        mail_filter(msg, ctx)


def _mark_automatic(msg: InboundMessage, reason: str) -> None:
    msg.auto_submitted = True
    msg.meta.setdefault("auto_reason", reason)


def _headers(msg: InboundMessage) -> dict[str, str]:
    headers = msg.meta.get("headers")
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


# --- auto-reply, list and loop ------------------------------------------------------------


def detect_auto_reply(msg: InboundMessage, ctx: FilterContext) -> None:
    """RFC 3834 auto-replies, Exchange/vacation headers, mailing lists and mail loops."""
    reason = _auto_reason(msg, ctx)
    if reason:
        _mark_automatic(msg, reason)


def _auto_reason(msg: InboundMessage, ctx: FilterContext) -> str | None:
    own = {address.lower() for address in ctx.own_addresses}
    headers = _headers(msg)
    # Our own address as sender means one of our mails came back to us: answering it would
    # loop forever, whatever the other headers say.
    if msg.sender_address.lower() in own:
        return "loop"
    if own and any(address in headers.get("x-loop", "").lower() for address in own):
        return "loop"
    # "auto-replied (vacation)", "no (sent by a person)": the keyword is what counts.
    keyword = re.sub(r"\([^)]*\)", " ", headers.get("auto-submitted", "")).split(";", 1)[0]
    auto_submitted = keyword.strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto-submitted"
    if any(name in headers for name in _AUTOREPLY_HEADERS):
        return "x-autoreply"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"precedence-{precedence.replace('_', '-')}"
    # Exchange sets this on out-of-office and other machine mail to stop reply storms.
    if "x-auto-response-suppress" in headers:
        return "x-auto-response-suppress"
    if "list-id" in headers or "list-unsubscribe" in headers:
        return "list"
    # RFC 3834 §3.3: automatic responses go out with a null envelope sender.
    if headers.get("return-path", "").strip() == "<>":
        return "null-sender"
    if _AUTO_SUBJECT_RE.match(unicodedata.normalize("NFC", msg.subject)):
        return "subject"
    return None


# --- bounces -------------------------------------------------------------------------------


def detect_bounce(msg: InboundMessage, ctx: FilterContext) -> None:
    """Delivery status notifications (RFC 3464) and the common non-standard bounces."""
    headers = _headers(msg)
    content_type = headers.get("content-type", "").lower()
    reports = [a for a in msg.attachments if a.content_type == "message/delivery-status"]
    is_dsn = bool(reports) or (
        content_type.startswith("multipart/report")
        and re.search(r"report-type\s*=\s*\"?delivery-status", content_type) is not None
    )
    if is_dsn:
        bounce = _dsn_fields(b"\n\n".join(a.data for a in reports))
    elif _from_daemon(msg) and _BOUNCE_SUBJECT_RE.search(msg.subject):
        bounce = _guessed_fields(msg, headers)
    else:
        return
    bounce["original_message_id"] = _original_message_id(msg)
    msg.meta["bounce"] = bounce
    action = bounce.get("action")
    # A "delayed" or "delivered" report is automatic mail, but the address still works.
    if action in (None, "failed"):
        msg.is_bounce = True
        _mark_automatic(msg, "bounce")
    else:
        _mark_automatic(msg, f"dsn-{action}")


def _from_daemon(msg: InboundMessage) -> bool:
    local_part = msg.sender_address.split("@", 1)[0].lower()
    name = (msg.sender_name or "").lower()
    return local_part in _DAEMON_LOCAL_PARTS or name.startswith("mail delivery")


def _dsn_fields(data: bytes) -> dict[str, Any]:
    """Fields of the first failed recipient of a message/delivery-status body."""
    blocks = [_header_block(chunk) for chunk in re.split(rb"\r?\n[ \t]*\r?\n", data)]
    recipients = [block for block in blocks if _field(block, "final-recipient", "action")]
    chosen = next(
        (block for block in recipients if _field(block, "action").lower() == "failed"),
        recipients[0] if recipients else None,
    )
    if chosen is None:
        return {"recipient": None, "status": None, "action": None, "diagnostic": None}
    status = _STATUS_RE.search(_field(chosen, "status"))
    return {
        "recipient": (
            _typed_value(_field(chosen, "final-recipient", "original-recipient")) or ""
        ).lower()
        or None,
        "status": status.group(1) if status else None,
        "action": _field(chosen, "action").lower() or None,
        "diagnostic": _typed_value(_field(chosen, "diagnostic-code")),
    }


def _guessed_fields(msg: InboundMessage, headers: dict[str, str]) -> dict[str, Any]:
    """Best effort for bounces without a delivery-status part (qmail, old Exchange, Exim)."""
    text = msg.full_text or msg.text
    recipient = headers.get("x-failed-recipients", "").split(",")[0].strip()
    if not recipient:
        found = _RECIPIENT_RE.search(text)
        recipient = found.group(1) if found else ""
    status = _STATUS_RE.search(text)
    diagnostic = next(
        (line.strip() for line in text.splitlines() if re.search(r"\b[45]\d\d[ -]", line)),
        None,
    )
    return {
        "recipient": recipient.lower() or None,
        "status": status.group(1) if status else None,
        "action": None,
        "diagnostic": diagnostic,
    }


def _original_message_id(msg: InboundMessage) -> str | None:
    """Message-ID of the mail that bounced: from the returned message or its headers."""
    for attachment in msg.attachments:
        if attachment.content_type in _HEADER_BLOCKS:
            message_id = _field(_header_block(attachment.data), "message-id")
            found = re.search(r"<([^<>]+)>", message_id)
            if found or message_id.strip():
                return found.group(1).strip() if found else message_id.strip()
    # Non-standard bounces quote the original headers in the body text.
    match = _MESSAGE_ID_LINE_RE.search(msg.full_text or msg.text)
    return match.group(1).strip() if match else None


def _header_block(data: bytes) -> Message:
    # compat32 never parses values, so a mangled report cannot raise here.
    return BytesParser(policy=policy.compat32).parsebytes(data.lstrip(b"\r\n"), headersonly=True)


def _field(block: Message, *names: str) -> str:
    wanted = set(names)
    for name, value in block.raw_items():
        if name.lower() in wanted:
            return " ".join(str(value).split())
    return ""


def _typed_value(value: str) -> str | None:
    """Drop the type of a typed DSN field: ``rfc822; user@example.com`` -> the address."""
    _, _, rest = value.partition(";")
    result = (rest or value).strip()
    return result or None


FILTERS: tuple[Filter, ...] = (detect_bounce, detect_auto_reply)
