"""Turn the raw bytes of one mail into an :class:`~channels.inbound.InboundMessage`.

Pure: no network, no database. The stdlib ``email`` package with ``policy.default`` does the
MIME work; the modules next to this one add what real mail needs on top of it. This module is
the entry point (:func:`parse_mail`); by topic:

- :mod:`channels.email.decoding`: declared charsets lie. Text is decoded with declared
  charset -> utf-8 -> cp1252 -> latin-1, the first that decodes cleanly; escape codecs are
  refused, so backslashes in bodies (``C:\\new\\table``) survive byte-exact. Lenient RFC 2047.
- :mod:`channels.email.headers`: mail in the wild breaks the modern header parser (it raises
  ``IndexError`` and friends on bad address lists, Message-IDs or parameters, see cpython
  #151857, #148518). Every header read goes through a helper that falls back to the raw header
  string; addresses, the sender, Message-IDs, the Date.
- :mod:`channels.email.body` walks the MIME tree for the text and HTML;
  :mod:`channels.email.mime_parts` reads one part without raising;
  :mod:`channels.email.attachments` makes attachments and inline images of the other parts;
  :mod:`channels.email.html_text` reads an HTML-only body as text.

A message whose parsing itself raises is re-parsed here with ``compat32``. Nothing a sender
writes should cost us the mail.

What the filters need beyond the InboundMessage fields goes to ``meta``:
``meta["headers"]`` (auto-reply/list/bounce headers, lower-cased names), ``meta["fingerprint"]``
(sha256 of From, To, Date, Subject and the first 4 KiB of the body, for dedupe when there is
no Message-ID) and ``meta["parse_defects"]`` (what we had to fall back on, for support).

Parser processes import this module (through :mod:`channels.email.prepare`): it and its
submodules import only the standard library, :mod:`channels.email.reply` and
:mod:`helpdesk.inbound`, never Flask, SQLAlchemy or the services.
"""

from __future__ import annotations

import hashlib
import re
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from channels.email.body import MailBody
from channels.email.decoding import decode_8bit, decode_bytes, decode_words, unfold
from channels.email.headers import (
    CACHING_POLICY,
    all_raw_headers,
    header_addresses,
    header_names,
    mail_date,
    msg_ids,
    raw_header,
    sender,
    text_header,
)
from channels.email.html_text import html_to_text
from channels.email.reply import is_inline_forward, strip_reply
from helpdesk.inbound import InboundMessage

__all__ = [
    "META_HEADERS",
    "MailParseError",
    "decode_bytes",
    "decode_words",
    "html_to_text",
    "parse_mail",
]


class MailParseError(Exception):
    """The bytes are not a mail at all: no header fields, or no sender and no content."""


# Headers the filters read (RFC 3834 auto-replies, mailing lists, loops, bounces).
META_HEADERS = (
    "auto-submitted",
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "precedence",
    "x-auto-response-suppress",
    "list-id",
    "list-unsubscribe",
    "x-loop",
    "x-failed-recipients",
    "return-path",
    "content-type",
)

# Without at least one of these the bytes are some other text that happened to contain a colon.
_MAIL_HEADERS = frozenset(
    {
        "from",
        "sender",
        "return-path",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "received",
        "mime-version",
        "content-type",
        "delivered-to",
        "reply-to",
        "in-reply-to",
        "references",
    }
)

_FORWARD_SUBJECT_RE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|fw)\s*:", re.IGNORECASE)
_FINGERPRINT_BODY_BYTES = 4096


def parse_mail(raw: bytes) -> InboundMessage:
    """Parse one mail. Raises :class:`MailParseError` only when ``raw`` is not a mail at all."""
    raw = bytes(raw)
    defects: list[str] = []
    tree, complete = _parse_tree(raw, defects)
    if not {name.lower() for name in header_names(tree)} & _MAIL_HEADERS:
        raise MailParseError("no mail header fields found")

    # Re-serialised message/* attachments use the line ending the mail came with.
    linesep = "\r\n" if b"\r\n" in raw[:65536] else "\n"
    body = _parse_body(tree, raw, linesep, defects) if complete else MailBody.opaque(raw)

    sender_name, sender_address = sender(tree, defects)
    subject = " ".join(text_header(tree, "subject", defects).split())
    full_text = body.text()
    if not sender_address and not full_text.strip() and not body.attachments:
        raise MailParseError("no sender and no content")

    forwarded = bool(_FORWARD_SUBJECT_RE.match(subject)) or is_inline_forward(full_text)
    message_ids = msg_ids(raw_header(tree, "message-id"))
    return InboundMessage(
        channel_kind="email",
        identity_kind="email",
        sender_address=sender_address,
        sender_name=sender_name,
        subject=subject,
        text=strip_reply(full_text, forwarded=forwarded) if full_text else "",
        full_text=full_text,
        html=body.html(),
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=next(iter(msg_ids(raw_header(tree, "in-reply-to"))), None),
        references=_unique(msg_ids(raw_header(tree, "references"))),
        cc=_unique(
            address
            for value in all_raw_headers(tree, "cc")
            for _, address in header_addresses(tree, "cc", value, defects)
        ),
        attachments=body.attachments,
        received_at=mail_date(tree, defects),
        raw=raw,
        language=None,
        meta=_meta(tree, raw, defects),
    )


def _parse_tree(raw: bytes, defects: list[str]) -> tuple[Message, bool]:
    """The MIME tree: ``policy.default``, else ``compat32``, else the headers alone.

    ``policy.default`` parses Content-Type while building the tree, so a broken parameter
    (``name*`` with nothing after it) fails the whole parse; compat32 never parses values.
    Both recurse per nesting level, so a hostile mail nested a few hundred levels deep
    raises RecursionError: then only the headers are read (the bool says so) and the body
    is kept whole as an attachment.
    """
    for email_policy in (CACHING_POLICY, policy.compat32):
        try:
            return BytesParser(policy=email_policy).parsebytes(raw), True
        except Exception as exc:  # IndexError/ValueError from the header value parser
            defects.append(f"tree: {type(exc).__name__}")
    return BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True), False


def _parse_body(tree: Message, raw: bytes, linesep: str, defects: list[str]) -> MailBody:
    try:
        return MailBody.of(tree, linesep)
    except Exception as exc:  # an undocumented stdlib failure deep in a MIME part
        defects.append(f"body: {type(exc).__name__}")
    try:
        return MailBody.of(BytesParser(policy=policy.compat32).parsebytes(raw), linesep)
    except Exception as exc:
        defects.append(f"body: {type(exc).__name__}")
    return MailBody.opaque(raw)


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))


_META_SET = frozenset(META_HEADERS)


def _meta(message: Message, raw: bytes, defects: list[str]) -> dict[str, Any]:
    # The first value of each, as raw_header() reads it, in one pass over the headers (not
    # one per name: a twentieth of a mail's parse).
    first: dict[str, str] = {}
    for key, value in message.raw_items():
        name = key.lower()
        if name in _META_SET and name not in first:
            first[name] = unfold(str(value))
    headers = {name: decode_8bit(first.get(name, "")) for name in META_HEADERS}
    return {
        "headers": {name: value for name, value in headers.items() if value},
        "fingerprint": _fingerprint(message, raw),
        "parse_defects": defects,
    }


def _fingerprint(message: Message, raw: bytes) -> str:
    digest = hashlib.sha256()
    for name in ("from", "to", "date", "subject"):
        digest.update(raw_header(message, name).encode("utf-8", errors="surrogateescape"))
        digest.update(b"\x00")
    digest.update(_raw_body(raw)[:_FINGERPRINT_BODY_BYTES])
    return digest.hexdigest()


def _raw_body(raw: bytes) -> bytes:
    ends = [index for index in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if index >= 0]
    if not ends:
        return b""
    end = min(ends)
    return raw[end:].lstrip(b"\r\n")
