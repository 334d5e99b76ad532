"""Turn the raw bytes of one mail into an :class:`~channels.inbound.InboundMessage`.

Pure: no network, no database. The stdlib ``email`` package with ``policy.default`` does the
MIME work; this module adds what real mail needs on top of it:

- Mail in the wild breaks the modern header parser (it raises ``IndexError`` and friends on
  bad address lists, Message-IDs or parameters, see cpython #151857, #148518). Every header
  read goes through a helper that falls back to the raw header string, and a message whose
  parsing itself raises is re-parsed with ``compat32``. Nothing a sender writes should cost
  us the mail.
- Declared charsets lie. Text is decoded with declared charset -> utf-8 -> cp1252 ->
  latin-1, the first that decodes cleanly. Escape codecs are refused, so backslashes in
  bodies (``C:\\new\\table``) survive byte-exact.

What the filters need beyond the InboundMessage fields goes to ``meta``:
``meta["headers"]`` (auto-reply/list/bounce headers, lower-cased names), ``meta["fingerprint"]``
(sha256 of From, To, Date, Subject and the first 4 KiB of the body, for dedupe when there is
no Message-ID) and ``meta["parse_defects"]`` (what we had to fall back on, for support).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import hashlib
import mimetypes
import quopri
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from io import BytesIO
from typing import Any

from channels.email.reply import is_inline_forward, strip_reply
from helpdesk.inbound import InboundAttachment, InboundMessage

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

# Codecs that are not charsets: they interpret backslashes or hostnames instead of decoding
# bytes of text ("undefined" always raises).
_REFUSED_CODECS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)
_FALLBACK_CHARSETS = ("utf-8", "cp1252")

_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_MSGID_RE = re.compile(r"<([^<>]+)>")
_ADDR_SPEC_RE = re.compile(r"[^\s<>()\[\]@,;:\"]+@[^\s<>()\[\]@,;:\"]+")
_FORWARD_SUBJECT_RE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|fw)\s*:", re.IGNORECASE)
_FINGERPRINT_BODY_BYTES = 4096

# Built-in table only: the system's mime.types differs between machines, generated names must not.
_MIME_TYPES = mimetypes.MimeTypes()
# Report parts have no filename; a name that says what they are beats "attachment-2.txt".
_GENERATED_NAMES = {
    "message/delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "text/rfc822-headers": "original-headers.txt",
}
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
}


def parse_mail(raw: bytes) -> InboundMessage:
    """Parse one mail. Raises :class:`MailParseError` only when ``raw`` is not a mail at all."""
    raw = bytes(raw)
    defects: list[str] = []
    tree, complete = _parse_tree(raw, defects)
    if not {name.lower() for name in _header_names(tree)} & _MAIL_HEADERS:
        raise MailParseError("no mail header fields found")

    # Re-serialised message/* attachments use the line ending the mail came with.
    linesep = "\r\n" if b"\r\n" in raw[:65536] else "\n"
    body = _parse_body(tree, raw, linesep, defects) if complete else _Body.opaque(raw)

    sender_name, sender_address = _sender(tree, defects)
    subject = " ".join(_text_header(tree, "subject", defects).split())
    full_text = body.text()
    if not sender_address and not full_text.strip() and not body.attachments:
        raise MailParseError("no sender and no content")

    forwarded = bool(_FORWARD_SUBJECT_RE.match(subject)) or is_inline_forward(full_text)
    message_ids = _msg_ids(_raw_header(tree, "message-id"))
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
        in_reply_to=next(iter(_msg_ids(_raw_header(tree, "in-reply-to"))), None),
        references=_unique(_msg_ids(_raw_header(tree, "references"))),
        cc=_unique(
            address
            for value in _all_raw_headers(tree, "cc")
            for _, address in _addresses(tree, "cc", value, defects)
        ),
        attachments=body.attachments,
        received_at=_date(tree, defects),
        raw=raw,
        language=None,
        meta=_meta(tree, raw, defects),
    )


class _CachingPolicy(EmailPolicy):
    """``policy.default`` that parses each distinct header value once per process.

    ``policy.default`` parses a header every time it is read, and the stdlib reads
    Content-Type many times per part (building the tree, ``get_content_type``,
    ``get_param``, walking): that was over half of the time spent parsing a mail. Parsed
    headers depend only on (name, value) and are never modified once made, so equal headers
    (the same Content-Type in mail after mail) share one. Exceptions are not cached: a header
    the parser fails on fails the same way every time it is read. A parsed header keeps its
    parse tree (~15 KB), hence the small cache: the values that repeat (Content-Type,
    Content-Transfer-Encoding, MIME-Version) are few.
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):
            return value
        return _parsed_header(self, name, value)


@functools.lru_cache(maxsize=256)
def _parsed_header(email_policy: EmailPolicy, name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(email_policy, name, value)


_POLICY = _CachingPolicy()


def _parse_tree(raw: bytes, defects: list[str]) -> tuple[Message, bool]:
    """The MIME tree: ``policy.default``, else ``compat32``, else the headers alone.

    ``policy.default`` parses Content-Type while building the tree, so a broken parameter
    (``name*`` with nothing after it) fails the whole parse; compat32 never parses values.
    Both recurse per nesting level, so a hostile mail nested a few hundred levels deep
    raises RecursionError: then only the headers are read (the bool says so) and the body
    is kept whole as an attachment.
    """
    for email_policy in (_POLICY, policy.compat32):
        try:
            return BytesParser(policy=email_policy).parsebytes(raw), True
        except Exception as exc:  # IndexError/ValueError from the header value parser
            defects.append(f"tree: {type(exc).__name__}")
    return BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True), False


def _parse_body(tree: Message, raw: bytes, linesep: str, defects: list[str]) -> _Body:
    try:
        return _Body.of(tree, linesep)
    except Exception as exc:  # an undocumented stdlib failure deep in a MIME part
        defects.append(f"body: {type(exc).__name__}")
    try:
        return _Body.of(BytesParser(policy=policy.compat32).parsebytes(raw), linesep)
    except Exception as exc:
        defects.append(f"body: {type(exc).__name__}")
    return _Body.opaque(raw)


# --- text decoding -------------------------------------------------------------------------


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Decode with the declared charset, then utf-8, cp1252, latin-1: the first that fits."""
    for charset in _charset_chain(declared):
        try:
            return data.decode(charset)
        except (UnicodeError, LookupError):
            continue
    # cp1252 leaves five bytes undefined; latin-1 maps every byte, so this always succeeds.
    return data.decode("latin-1", errors="replace")


def _charset_chain(declared: str | None) -> list[str]:
    chain: list[str] = []
    name = (declared or "").strip().strip("\"'").lower()
    if name:
        try:
            info = codecs.lookup(name)
        except (LookupError, ValueError, TypeError):
            info = None
        if info is not None and info.name not in _REFUSED_CODECS:
            chain.append(info.name)
    chain.extend(_FALLBACK_CHARSETS)
    return chain


def _recover_bytes(value: str) -> bytes | None:
    """The original bytes of a header the parser kept as surrogate escapes, else ``None``."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return None
    return value.encode("utf-8", errors="surrogateescape")


def _decode_8bit(value: str) -> str:
    """Raw 8-bit header text (RFC 6532 utf-8, or whatever the client had) as real text."""
    data = _recover_bytes(value)
    return value if data is None else decode_bytes(data)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words leniently (our fallback when ``policy.default`` gives up).

    Adjacent words in the same charset are joined as bytes before decoding because clients
    split multi-byte Bengali characters across words; whitespace between words is dropped.
    """
    value = _decode_8bit(_unfold(value))
    pieces: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending_charset is not None:
            pieces.append(decode_bytes(bytes(pending), pending_charset))
        pending, pending_charset = bytearray(), None

    after_word = False
    for match in _ENCODED_WORD_RE.finditer(value):
        gap = value[position : match.start()]
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix: utf-8*bn
        data = _decode_word(match.group(2), match.group(3))
        if data is None:  # looked like an encoded word but is not one: keep its text
            flush()
            pieces.append(gap + match.group(0))
            after_word = False
        else:
            if gap.strip() or not after_word:
                flush()
                pieces.append(gap)
            elif charset.lower() != (pending_charset or "").lower():
                flush()  # whitespace between two encoded words is not part of the text
            pending_charset = charset
            pending.extend(data)
            after_word = True
        position = match.end()
    flush()
    pieces.append(value[position:])
    return "".join(pieces)


def _decode_word(encoding: str, text: str) -> bytes | None:
    if encoding.lower() == "b":
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None
    return quopri.decodestring(text.encode("ascii", "replace"), header=True)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


# --- headers -------------------------------------------------------------------------------


def _header_names(message: Message) -> list[str]:
    return [name for name, _ in message.raw_items()]


def _all_raw_headers(message: Message, name: str) -> list[str]:
    """Raw values of ``name``: never parsed, so reading them cannot raise."""
    return [str(value) for key, value in message.raw_items() if key.lower() == name]


def _raw_header(message: Message, name: str) -> str:
    values = _all_raw_headers(message, name)
    return _unfold(values[0]) if values else ""


def _text_header(message: Message, name: str, defects: list[str]) -> str:
    """An unstructured header (Subject) decoded; policy.default first, our decoder second."""
    raw = _raw_header(message, name)
    if not raw:
        return ""
    if isinstance(message.policy, EmailPolicy):
        try:
            value = str(message[name])
        except Exception as exc:  # broken encoded-words and friends
            defects.append(f"header {name}: {type(exc).__name__}")
        else:
            # U+FFFD means policy.default met a charset it did not know or bytes that did
            # not fit; our chain usually reads those (x-unknown, latin-1 in utf-8 headers).
            if ("\ufffd" not in value or "\ufffd" in raw) and _recover_bytes(value) is None:
                return value
    return decode_words(raw)


def _addresses(message: Message, name: str, raw: str, defects: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased addr-spec) pairs of one address header value."""
    pairs: list[tuple[str, str]] | None = None
    if isinstance(message.policy, EmailPolicy):
        try:
            pairs = _modern_addresses(message.policy, name, raw)
        except Exception as exc:  # IndexError on '"', "(c):" and other broken lists
            defects.append(f"header {name}: {type(exc).__name__}")
    if pairs is None:
        pairs = [(decode_words(display), addr) for display, addr in getaddresses([raw])]
    found = [(display.strip(), addr.strip().lower()) for display, addr in pairs]
    found = [(display, addr) for display, addr in found if "@" in addr and " " not in addr]
    if not found:
        # Last resort for lists no parser accepts: anything shaped like an addr-spec.
        found = [("", addr.lower()) for addr in _ADDR_SPEC_RE.findall(_decode_8bit(raw))]
    return found


def _modern_addresses(
    email_policy: EmailPolicy, name: str, raw: str
) -> list[tuple[str, str]] | None:
    found = _cached_addresses(email_policy, name, raw)
    return None if found is None else list(found)


@functools.lru_cache(maxsize=4096)
def _cached_addresses(
    email_policy: EmailPolicy, name: str, raw: str
) -> tuple[tuple[str, str], ...] | None:
    """The pairs of one address header value, parsed once per distinct value: customers write
    again and again from the same From line, and parsing an address list was a fifth of a
    mail's parse. Only the pairs are kept (a parsed header holds its whole parse tree, ~15 KB);
    exceptions are not cached."""
    header = email_policy.header_factory(name, raw)
    addresses = getattr(header, "addresses", None)
    if addresses is None:  # Return-Path is not an address header to the registry
        return None
    pairs: list[tuple[str, str]] = []
    for address in addresses:
        # The display name may still hold raw 8-bit bytes (as surrogates) or U+FFFD for a
        # charset the stdlib does not know; our decoder reads both from the raw value.
        display = str(address.display_name or "")
        # "user@host (Full Name)" (old Postfix/sendmail form) has its name in a comment,
        # which policy.default drops and compat32 reads.
        if not display or "\ufffd" in display or _recover_bytes(display) is not None:
            display = decode_words(_display_from_raw(raw, address.addr_spec) or display)
        pairs.append((display, str(address.addr_spec)))
    return tuple(pairs)


def _display_from_raw(raw: str, addr: str) -> str | None:
    for display, address in getaddresses([raw]):
        if address.lower() == addr.lower():
            return display
    return None


def _sender(message: Message, defects: list[str]) -> tuple[str | None, str]:
    for name in ("from", "sender", "return-path"):
        for raw in _all_raw_headers(message, name):
            for display, address in _addresses(message, name, _unfold(raw), defects):
                return (" ".join(display.split()) or None), address
    return None, ""


def _msg_ids(raw: str) -> list[str]:
    """Message ids without angle brackets, in order; garbage between them is ignored."""
    ids = ["".join(found.split()) for found in _MSGID_RE.findall(raw)]
    if not ids:
        # Some clients drop the brackets; take the tokens that look like ids.
        ids = [token for token in re.split(r"[\s,]+", raw) if "@" in token]
    return [value for value in ids if value]


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))


def _date(message: Message, defects: list[str]) -> datetime | None:
    raw = _raw_header(message, "date")
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(_decode_8bit(raw))
        # RFC 5322 "-0000" parses naive: the time is UTC with no local offset known.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (TypeError, ValueError, OverflowError, IndexError):
        defects.append("header date: unparseable")
        return None


def _meta(message: Message, raw: bytes, defects: list[str]) -> dict[str, Any]:
    headers = {name: _decode_8bit(_raw_header(message, name)) for name in META_HEADERS}
    return {
        "headers": {name: value for name, value in headers.items() if value},
        "fingerprint": _fingerprint(message, raw),
        "parse_defects": defects,
    }


def _fingerprint(message: Message, raw: bytes) -> str:
    digest = hashlib.sha256()
    for name in ("from", "to", "date", "subject"):
        digest.update(_raw_header(message, name).encode("utf-8", errors="surrogateescape"))
        digest.update(b"\x00")
    digest.update(_raw_body(raw)[:_FINGERPRINT_BODY_BYTES])
    return digest.hexdigest()


def _raw_body(raw: bytes) -> bytes:
    ends = [index for index in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if index >= 0]
    if not ends:
        return b""
    end = min(ends)
    return raw[end:].lstrip(b"\r\n")


# --- MIME parts ----------------------------------------------------------------------------


@dataclass
class _Body:
    """What a walk over the MIME tree collects, in document order."""

    plain: list[str] = field(default_factory=list)
    rich: list[str] = field(default_factory=list)
    attachments: list[InboundAttachment] = field(default_factory=list)

    @classmethod
    def of(cls, message: Message, linesep: str) -> _Body:
        body = cls()
        body.walk(message, linesep)
        return body

    @classmethod
    def opaque(cls, raw: bytes) -> _Body:
        """A mail we could not take apart, kept whole so nothing the sender sent is lost."""
        return cls(attachments=[InboundAttachment("message.eml", "message/rfc822", raw)])

    def text(self) -> str:
        if self.plain:
            return "\n".join(part.strip("\n") for part in self.plain).strip("\n")
        if self.rich:
            return html_to_text("\n".join(self.rich))
        return ""

    def html(self) -> str | None:
        return "\n".join(self.rich) if self.rich else None

    def walk(self, part: Message, linesep: str) -> None:
        content_type = _content_type(part)
        maintype = content_type.split("/", 1)[0]
        if maintype == "message" or content_type == "text/rfc822-headers":
            self.attachments.append(self._message_attachment(part, content_type, linesep))
        elif content_type == "multipart/alternative" and part.is_multipart():
            self._alternative(part, linesep)
        elif part.is_multipart():
            for child in _children(part):
                self.walk(child, linesep)
        elif maintype == "multipart":
            # A multipart without a usable boundary: the parser kept it as one text blob.
            self.plain.append(decode_bytes(_payload(part), _charset(part)))
        elif content_type in ("text/plain", "text/html") and _is_body(part):
            charset = _charset(part, sniff_html=True)
            text = _normalise_newlines(decode_bytes(_payload(part), charset))
            (self.plain if content_type == "text/plain" else self.rich).append(text)
        else:
            self.attachments.append(self._leaf_attachment(part, content_type))

    def _alternative(self, part: Message, linesep: str) -> None:
        # Plain: the first alternative that has one; HTML: the last (the richest, RFC 2046).
        variants: list[_Body] = []
        for child in _children(part):
            variant = _Body()
            variant.walk(child, linesep)
            variants.append(variant)
        self.plain.extend(next((v.plain for v in variants if v.plain), []))
        self.rich.extend(next((v.rich for v in reversed(variants) if v.rich), []))
        for variant in variants:
            self.attachments.extend(variant.attachments)

    def _leaf_attachment(self, part: Message, content_type: str) -> InboundAttachment:
        content_id = _content_id(part)
        disposition = _disposition(part)
        return InboundAttachment(
            filename=_filename(part) or self._generated_name(content_type),
            content_type=content_type,
            data=_payload(part),
            content_id=content_id,
            # multipart/related images often carry only a Content-ID, no disposition.
            inline=disposition == "inline" or (disposition is None and content_id is not None),
        )

    def _message_attachment(
        self, part: Message, content_type: str, linesep: str
    ) -> InboundAttachment:
        filename = _filename(part)
        if not filename and content_type in ("message/rfc822", "message/global"):
            inner = _children(part)
            subject = _text_header(inner[0], "subject", []) if inner else ""
            filename = _safe_filename(subject)[:100] + ".eml" if subject.strip() else None
        return InboundAttachment(
            filename=filename or self._generated_name(content_type),
            content_type=content_type,
            data=_message_bytes(part, linesep),
            content_id=_content_id(part),
            inline=False,
        )

    def _generated_name(self, content_type: str) -> str:
        if content_type in _GENERATED_NAMES:
            return _GENERATED_NAMES[content_type]
        extension = _EXTENSIONS.get(content_type) or _MIME_TYPES.guess_extension(content_type)
        return f"attachment-{len(self.attachments) + 1}{extension or '.bin'}"


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return (
        [child for child in payload if isinstance(child, Message)]
        if isinstance(payload, list)
        else []
    )


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # header value parser failure; compat32 reads the raw value
        return _compat(part).get_content_type()


def _compat(part: Message) -> Message:
    """The part's headers in a compat32 message: parameters parsed without raising."""
    clone = Message(policy=policy.compat32)
    for name, value in part.raw_items():
        clone[name] = _unfold(str(value))
    return clone


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return _compat(part).get_content_disposition()


def _is_body(part: Message) -> bool:
    # A text part with a filename is a file the sender attached (.csv, .log), not the body.
    return _disposition(part) != "attachment" and not _filename(part)


def _charset(part: Message, *, sniff_html: bool = False) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = _compat(part).get_content_charset()
    if not charset and sniff_html and _content_type(part) == "text/html":
        found = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", _payload(part)[:4096], re.I)
        charset = found.group(1).decode("ascii") if found else None
    return str(charset) if charset else None


def _payload(part: Message) -> bytes:
    """The decoded bytes of a leaf part (base64, quoted-printable, 7bit, 8bit, binary)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", errors="surrogateescape")
    return b""


def _message_bytes(part: Message, linesep: str) -> bytes:
    """The body of a message/* part (the attached mail itself) as bytes."""
    if not part.is_multipart():
        return _payload(part)
    for gen_policy in (policy.compat32, part.policy):
        buffer = BytesIO()
        try:
            BytesGenerator(buffer, mangle_from_=False, policy=gen_policy).flatten(
                part, linesep=linesep
            )
        except Exception:  # noqa: S112 - re-serialising broken headers can fail; try the next
            continue
        data = buffer.getvalue()
        blank = (linesep * 2).encode("ascii")
        if data.startswith(linesep.encode("ascii")):
            return data[len(linesep) :]
        index = data.find(blank)
        return data[index + len(blank) :] if index >= 0 else b""
    return b""


def _filename(part: Message) -> str | None:
    name: str | None = None
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None or "\ufffd" in name:
        name = _compat_filename(_compat(part)) or name
    if name is None:
        return None
    name = decode_words(name) if "=?" in name else _decode_8bit(name)
    return _safe_filename(name) or None


def _compat_filename(part: Message) -> str | None:
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = part.get_param(param, header=header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded as latin-1)
            charset, _, text = value
            try:
                return decode_bytes(str(text).encode("latin-1"), str(charset or "") or None)
            except UnicodeEncodeError:
                return str(text)
        if value:
            return str(value).strip('"')
    return None


def _safe_filename(name: str) -> str:
    # Keep the name, drop any directory part a sender put in front ("../", "C:\\Users\\").
    name = re.split(r"[\\/]", name)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    return " ".join(name.split())


def _content_id(part: Message) -> str | None:
    value = _raw_header(part, "content-id").strip().strip("<>").strip()
    return value or None


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


# --- HTML to text --------------------------------------------------------------------------

# Elements that start a new line, and the ones that stand apart by a blank line, as a browser
# renders them.
_LINE_TAGS = frozenset(
    {
        "address", "article", "aside", "center", "dd", "div", "dl", "dt", "fieldset", "figure",
        "footer", "form", "header", "hr", "li", "main", "nav", "section", "tr",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset(
    {"blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "pre", "table", "ul"}
)
_SKIPPED_TAGS = frozenset({"head", "script", "style", "template", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.preformatted = 0

    def _break(self, lines: int) -> None:
        # Adjacent blocks share their breaks: </div><div> is one line break, not two.
        tail = "".join(self.out[-2:])
        present = len(tail) - len(tail.rstrip("\n"))
        if self.out and present < lines:
            self.out.append("\n" * (lines - present))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag in _LINE_TAGS or tag in _PARAGRAPH_TAGS:
            self._break(2 if tag in _PARAGRAPH_TAGS else 1)
            if tag == "li":
                self.out.append("- ")
            elif tag == "pre":
                self.preformatted += 1
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIPPED_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _LINE_TAGS or tag in _PARAGRAPH_TAGS:
            self._break(2 if tag in _PARAGRAPH_TAGS else 1)
            if tag == "pre":
                self.preformatted = max(0, self.preformatted - 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if not self.preformatted:
            data = re.sub(r"\s+", " ", data)
            if not data.strip() and (not self.out or self.out[-1].endswith("\n")):
                return  # whitespace between blocks is not text
        self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: block elements and <br> become line breaks."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
        text = "".join(extractor.out)
    except Exception:  # _markupbase raises AssertionError on some broken "<![" sections
        text = unescape(re.sub(r"<[^>]*>", " ", html))
    lines = [line.strip() for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
