"""Cut quoted history and signatures off a plain-text mail body.

Two layers, in this order:

1. Our own reply separator. Every mail we send carries a line like
   ``##- Please type your reply above this line -##`` (also in Bengali); everything from the
   first line holding ``##- ... -##`` on is history we wrote, whatever the client did to it.
2. ``mail-parser-reply`` (maintained, multi-language) for the quote headers of the common
   clients: Gmail/Apple "On ... wrote:", Outlook "From: ... Sent: ..." blocks,
   "-----Original Message-----", and signatures ("-- ", "Sent from my ...").

The library strips every line it reads (it normalises whitespace before matching), so we use
it only to find *where* the latest reply ends and then return the original lines, keeping
indentation of code, paths and tables intact.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailMessage

REPLY_SEPARATOR_EN = "##- Please type your reply above this line -##"
REPLY_SEPARATOR_BN = "##- অনুগ্রহ করে এই লাইনের উপরে উত্তর লিখুন -##"

# Any line carrying "##-" ... "-##", quoted ("> ##- ...") or translated: the marker is the
# stable part, the words in between are localised and may be re-wrapped by clients.
_SEPARATOR_RE = re.compile(r"^.*##-.*-##.*$", re.MULTILINE)

# Gmail in Bengali writes "<date> তারিখে <name> লিখেছেন:" above the quote; the library has no
# Bengali rules, so we cut at that line ourselves.
_BN_WROTE_RE = re.compile(r"^(?!>)[^\n]*লিখেছেন\s*:\s*$", re.MULTILINE)

# Markers of an inline forward (Gmail, Thunderbird, Apple Mail; Outlook's "FW:" is seen in
# the subject by the parser). A forward's quoted part *is* the content the customer wants
# us to read, so the history is not stripped then.
_FORWARD_RE = re.compile(
    r"^\s*(?:-{2,}\s*Forwarded message\s*-{2,}|Begin forwarded message:)",
    re.MULTILINE | re.IGNORECASE,
)

# The library's signature regex ends in ``(.|\s)*``; bodies of pasted logs can be megabytes
# long, where that costs seconds. Above this size only our own separator is applied.
_MAX_LIBRARY_CHARS = 100_000


def cut_at_separator(text: str) -> str:
    """Drop everything from the first ``##- ... -##`` line on."""
    match = _SEPARATOR_RE.search(text)
    return text[: match.start()] if match else text


def is_inline_forward(text: str) -> bool:
    return _FORWARD_RE.search(text) is not None


def strip_reply(full_text: str, *, forwarded: bool = False) -> str:
    """The latest reply of ``full_text``: without our separator, quotes and signature.

    Never empty when ``full_text`` has content: when stripping would remove everything (a
    reply typed below the quote, a mail that is all signature) the full text is returned.
    ``forwarded`` keeps the quoted part (subject ``Fwd:`` or a forward marker in the body).
    """
    text = cut_at_separator(full_text)
    if not forwarded and not is_inline_forward(text):
        match = _BN_WROTE_RE.search(text)
        if match:
            text = text[: match.start()]
        text = _latest_reply(text)
    text = text.strip("\n")
    if not text.strip():
        return full_text
    return text


def _latest_reply(text: str) -> str:
    if len(text) > _MAX_LIBRARY_CHARS or not text.strip():
        return text
    # keep_hyphen_lists: a customer's "- step one" list is not a signature.
    message = EmailMessage(text=text, languages=["en"], keep_hyphen_lists=True).read()
    if not message.replies:
        return text
    first = message.replies[0]
    if first.headers:
        # The mail starts with a quote header (nothing typed above it): nothing to keep.
        return ""
    return _with_original_lines(text, message.text, first.body)


def _with_original_lines(original: str, normalised: str, body: str) -> str:
    """Map ``body`` (found in the library's line-stripped text) back to the original lines."""
    original_lines = original.replace("\r\n", "\n").split("\n")
    if not body or len(original_lines) != normalised.count("\n") + 1:
        return body
    start = normalised.find(body)
    end = start + len(body)
    starts_line = start == 0 or normalised[start - 1 : start] == "\n"
    ends_line = end == len(normalised) or normalised[end : end + 1] == "\n"
    if start < 0 or not starts_line or not ends_line:
        return body
    first = normalised.count("\n", 0, start)
    last = first + body.count("\n")
    return "\n".join(original_lines[first : last + 1])
