"""One MIME part of a mail, read without raising: its type, disposition, charset, payload,
filename, Content-ID and sub-parts.

``policy.default`` parses a part's Content-Type and Content-Disposition on every read and
raises on broken parameters; each reader here falls back to a compat32 copy of the part's
headers, which never parses values. Filenames are decoded (RFC 2047 and RFC 2231) and made
safe: no directory part, no control characters.
"""

from __future__ import annotations

import re
from email import policy
from email.message import Message

from channels.email.decoding import decode_8bit, decode_bytes, decode_words, unfold
from channels.email.headers import raw_header

__all__ = [
    "is_body_text",
    "part_charset",
    "part_children",
    "part_content_id",
    "part_content_type",
    "part_disposition",
    "part_filename",
    "part_payload",
    "safe_filename",
]


def part_children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return (
        [child for child in payload if isinstance(child, Message)]
        if isinstance(payload, list)
        else []
    )


def part_content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # header value parser failure; compat32 reads the raw value
        return _compat(part).get_content_type()


def _compat(part: Message) -> Message:
    """The part's headers in a compat32 message: parameters parsed without raising."""
    clone = Message(policy=policy.compat32)
    for name, value in part.raw_items():
        clone[name] = unfold(str(value))
    return clone


def part_disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return _compat(part).get_content_disposition()


def is_body_text(part: Message) -> bool:
    # A text part with a filename is a file the sender attached (.csv, .log), not the body.
    return part_disposition(part) != "attachment" and not part_filename(part)


def part_charset(part: Message, *, sniff_html: bool = False) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = _compat(part).get_content_charset()
    if not charset and sniff_html and part_content_type(part) == "text/html":
        found = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", part_payload(part)[:4096], re.I)
        charset = found.group(1).decode("ascii") if found else None
    return str(charset) if charset else None


def part_payload(part: Message) -> bytes:
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


def part_filename(part: Message) -> str | None:
    name: str | None = None
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None or "\ufffd" in name:
        name = _compat_filename(_compat(part)) or name
    if name is None:
        return None
    name = decode_words(name) if "=?" in name else decode_8bit(name)
    return safe_filename(name) or None


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


def safe_filename(name: str) -> str:
    # Keep the name, drop any directory part a sender put in front ("../", "C:\\Users\\").
    name = re.split(r"[\\/]", name)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    return " ".join(name.split())


def part_content_id(part: Message) -> str | None:
    value = raw_header(part, "content-id").strip().strip("<>").strip()
    return value or None
