"""Header fields of a mail, read without ever raising.

Mail in the wild breaks the modern header parser (it raises ``IndexError`` and friends on bad
address lists, Message-IDs or parameters, see cpython #151857, #148518). Every read here goes
through the raw header string first and falls back to it: raw values, the Subject, address
lists and the sender, Message-IDs and the Date. :data:`CACHING_POLICY` is the
``policy.default`` the parser builds the MIME tree with, parsing each distinct header once.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from email.message import Message
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from channels.email.decoding import decode_8bit, decode_words, recover_bytes, unfold

__all__ = [
    "CACHING_POLICY",
    "all_raw_headers",
    "header_addresses",
    "header_names",
    "mail_date",
    "msg_ids",
    "raw_header",
    "sender",
    "text_header",
]

_MSGID_RE = re.compile(r"<([^<>]+)>")
_ADDR_SPEC_RE = re.compile(r"[^\s<>()\[\]@,;:\"]+@[^\s<>()\[\]@,;:\"]+")


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


CACHING_POLICY = _CachingPolicy()


def header_names(message: Message) -> list[str]:
    return [name for name, _ in message.raw_items()]


def all_raw_headers(message: Message, name: str) -> list[str]:
    """Raw values of ``name``: never parsed, so reading them cannot raise."""
    return [str(value) for key, value in message.raw_items() if key.lower() == name]


def raw_header(message: Message, name: str) -> str:
    values = all_raw_headers(message, name)
    return unfold(values[0]) if values else ""


def text_header(message: Message, name: str, defects: list[str]) -> str:
    """An unstructured header (Subject) decoded; policy.default first, our decoder second."""
    raw = raw_header(message, name)
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
            if ("\ufffd" not in value or "\ufffd" in raw) and recover_bytes(value) is None:
                return value
    return decode_words(raw)


def header_addresses(
    message: Message, name: str, raw: str, defects: list[str]
) -> list[tuple[str, str]]:
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
        found = [("", addr.lower()) for addr in _ADDR_SPEC_RE.findall(decode_8bit(raw))]
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
        if not display or "\ufffd" in display or recover_bytes(display) is not None:
            display = decode_words(_display_from_raw(raw, address.addr_spec) or display)
        pairs.append((display, str(address.addr_spec)))
    return tuple(pairs)


def _display_from_raw(raw: str, addr: str) -> str | None:
    for display, address in getaddresses([raw]):
        if address.lower() == addr.lower():
            return display
    return None


def sender(message: Message, defects: list[str]) -> tuple[str | None, str]:
    """(display name or ``None``, address) of the first From, Sender or Return-Path address."""
    for name in ("from", "sender", "return-path"):
        for raw in all_raw_headers(message, name):
            for display, address in header_addresses(message, name, unfold(raw), defects):
                return (" ".join(display.split()) or None), address
    return None, ""


def msg_ids(raw: str) -> list[str]:
    """Message ids without angle brackets, in order; garbage between them is ignored."""
    ids = ["".join(found.split()) for found in _MSGID_RE.findall(raw)]
    if not ids:
        # Some clients drop the brackets; take the tokens that look like ids.
        ids = [token for token in re.split(r"[\s,]+", raw) if "@" in token]
    return [value for value in ids if value]


def mail_date(message: Message, defects: list[str]) -> datetime | None:
    """The Date header in UTC; ``None`` when there is none or it cannot be read."""
    raw = raw_header(message, "date")
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(decode_8bit(raw))
        # RFC 5322 "-0000" parses naive: the time is UTC with no local offset known.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (TypeError, ValueError, OverflowError, IndexError):
        defects.append("header date: unparseable")
        return None
