"""Bytes and header strings of a mail as text: the charset chain and RFC 2047 encoded-words.

Declared charsets lie. :func:`decode_bytes` tries the declared charset, then utf-8, cp1252 and
latin-1, the first that decodes cleanly. Escape codecs are refused, so backslashes in bodies
(``C:\\new\\table``) survive byte-exact. :func:`decode_words` is our lenient RFC 2047 decoder,
used when ``policy.default`` gives up on a header.

Used by every other part of the parser (:mod:`channels.email.parser`); imports nothing of ours.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re

__all__ = ["decode_8bit", "decode_bytes", "decode_words", "recover_bytes", "unfold"]

# Codecs that are not charsets: they interpret backslashes or hostnames instead of decoding
# bytes of text ("undefined" always raises).
_REFUSED_CODECS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)
_FALLBACK_CHARSETS = ("utf-8", "cp1252")

_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


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


def recover_bytes(value: str) -> bytes | None:
    """The original bytes of a header the parser kept as surrogate escapes, else ``None``."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return None
    return value.encode("utf-8", errors="surrogateescape")


def decode_8bit(value: str) -> str:
    """Raw 8-bit header text (RFC 6532 utf-8, or whatever the client had) as real text."""
    data = recover_bytes(value)
    return value if data is None else decode_bytes(data)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words leniently (our fallback when ``policy.default`` gives up).

    Adjacent words in the same charset are joined as bytes before decoding because clients
    split multi-byte Bengali characters across words; whitespace between words is dropped.
    """
    value = decode_8bit(unfold(value))
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


def unfold(value: str) -> str:
    """A header value with its folding line breaks removed, stripped."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()
