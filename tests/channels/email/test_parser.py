"""The email parser: every case file, plus the properties no case file can pin down.

Case files live in ``cases/``: ``NNN-what.eml`` (the mail as a client sent it, read as bytes)
next to ``NNN-what.json`` (``expect``: the fields asserted; ``filters``: the channel addresses
for the filters that run after parsing, like in production). One quirk per case.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.filters import FilterContext, apply_filters
from channels.email.parser import MailParseError, decode_bytes, html_to_text, parse_mail
from channels.email.reply import REPLY_SEPARATOR_BN, REPLY_SEPARATOR_EN, strip_reply
from helpdesk.inbound import InboundMessage

CASES = Path(__file__).parent / "cases"
CASE_FILES = sorted(CASES.glob("*.eml"))
DEFAULT_OWN = {"support@example.com", "help@example.com"}

# Plain equality between the expected value and the InboundMessage attribute.
_EQUAL_FIELDS = (
    "sender_address",
    "sender_name",
    "subject",
    "text",
    "message_id",
    "in_reply_to",
    "references",
    "cc",
    "auto_submitted",
    "is_bounce",
)


def _parse_case(path: Path) -> tuple[InboundMessage, dict[str, Any]]:
    spec = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    msg = parse_mail(path.read_bytes())
    own = set(spec.get("filters", {}).get("own_addresses", DEFAULT_OWN))
    apply_filters(msg, FilterContext(own_addresses=own))
    return msg, spec["expect"]


def _check_attachments(msg: InboundMessage, expected: list[dict[str, Any]]) -> None:
    assert len(msg.attachments) == len(expected), [a.filename for a in msg.attachments]
    for attachment, want in zip(msg.attachments, expected, strict=True):
        for key, value in want.items():
            actual = len(attachment.data) if key == "size" else getattr(attachment, key)
            assert actual == value, (attachment.filename, key)


def _check_bounce(msg: InboundMessage, expected: dict[str, Any]) -> None:
    bounce = msg.meta["bounce"]
    for key, value in expected.items():
        if key == "diagnostic_contains":
            assert value in (bounce["diagnostic"] or "")
        else:
            assert bounce[key] == value, key


def _check(msg: InboundMessage, expect: dict[str, Any]) -> None:
    for key, value in expect.items():
        if key in _EQUAL_FIELDS:
            assert getattr(msg, key) == value, key
        elif key == "auto_reason":
            assert msg.meta.get("auto_reason") == value
        elif key == "received_at":
            actual = msg.received_at.isoformat() if msg.received_at else None
            assert actual == value
        elif key == "text_contains":
            for fragment in value:
                assert fragment in msg.text, fragment
        elif key == "text_not_contains":
            for fragment in value:
                assert fragment not in msg.text, fragment
        elif key == "full_text_contains":
            for fragment in value:
                assert fragment in (msg.full_text or ""), fragment
        elif key == "subject_contains":
            assert value in msg.subject
        elif key == "html_present":
            assert (msg.html is not None) == value
        elif key == "html_contains":
            for fragment in value:
                assert fragment in (msg.html or ""), fragment
        elif key == "attachments":
            _check_attachments(msg, value)
        elif key == "bounce":
            _check_bounce(msg, value)
        elif key == "fingerprint_present":
            assert bool(msg.meta.get("fingerprint")) == value
        elif key == "eml_attachment_subject":
            inner = parse_mail(_first_eml(msg))
            assert inner.subject == value
        elif key == "eml_attachment_message_id":
            assert parse_mail(_first_eml(msg)).message_id == value
        else:
            pytest.fail(f"unknown expectation {key!r} in case file")
    # Unless the case says otherwise, a mail is from a person and did not bounce.
    expect_auto = expect.get("auto_submitted", "auto_reason" in expect or "bounce" in expect)
    assert msg.auto_submitted == expect_auto
    assert msg.is_bounce == expect.get("is_bounce", False)


def _first_eml(msg: InboundMessage) -> bytes:
    return next(a.data for a in msg.attachments if a.content_type == "message/rfc822")


def _check_invariants(raw: bytes, msg: InboundMessage) -> None:
    assert msg.raw == raw
    assert msg.channel_kind == "email"
    assert msg.language is None
    if (msg.full_text or "").strip():
        assert msg.text.strip()
    if msg.received_at is not None:
        assert msg.received_at.tzinfo is UTC
    assert msg.sender_address == msg.sender_address.lower()
    assert len(msg.meta["fingerprint"]) == 64
    json.dumps(msg.meta)  # the core stores meta as JSON


def test_case_files_come_in_pairs() -> None:
    stems = {path.stem for path in CASES.iterdir() if path.suffix in (".eml", ".json")}
    for stem in stems:
        assert (CASES / f"{stem}.eml").exists() and (CASES / f"{stem}.json").exists(), stem
    assert len(CASE_FILES) >= 40


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda path: path.stem)
def test_case(path: Path) -> None:
    msg, expect = _parse_case(path)
    _check(msg, expect)
    _check_invariants(path.read_bytes(), msg)


# --- properties the case files cannot show ------------------------------------------------


def test_a_mail_parses_the_same_every_time() -> None:
    """Parsed headers and address lists are cached per distinct value: reading every case
    again, in another order, with the caches full, gives what the first reading gave."""
    first = {path: parse_mail(path.read_bytes()) for path in CASE_FILES}
    for path in reversed(CASE_FILES):
        assert parse_mail(path.read_bytes()) == first[path], path.name


def test_fingerprint_is_stable_without_message_id() -> None:
    raw = (CASES / "029-no-message-id.eml").read_bytes()
    first, second = parse_mail(raw), parse_mail(raw)
    assert first.message_id is None
    assert first.meta["fingerprint"] == second.meta["fingerprint"]
    other = parse_mail(raw.replace(b"Subject: no id", b"Subject: no id either"))
    assert other.meta["fingerprint"] != first.meta["fingerprint"]


def test_duplicate_message_id_yields_same_id_and_fingerprint() -> None:
    first = parse_mail((CASES / "030-duplicate-message-id-a.eml").read_bytes())
    second = parse_mail((CASES / "031-duplicate-message-id-b.eml").read_bytes())
    assert first.message_id == second.message_id == "dup-42@example.net"
    # Received lines differ per delivery; the fingerprint ignores them on purpose.
    assert first.meta["fingerprint"] == second.meta["fingerprint"]


def test_huge_attachment_is_kept_whole() -> None:
    # ~12 MB generated here so the repository stays small.
    block = hashlib.sha256(b"seed").digest() * 32  # 1 KiB of non-repeating-looking bytes
    data = bytes(range(256)) + block * (12 * 1024)
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    raw = (
        b"From: Big Sender <big@example.net>\r\nTo: support@example.com\r\n"
        b"Subject: huge\r\nMessage-ID: <huge@example.net>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee dump.\r\n--XX\r\n"
        b'Content-Type: application/octet-stream; name="dump.bin"\r\n'
        b'Content-Disposition: attachment; filename="dump.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--XX--\r\n"
    )
    assert len(raw) > 16 * 1024 * 1024
    msg = parse_mail(raw)
    assert msg.text == "See dump."
    assert [(a.filename, len(a.data)) for a in msg.attachments] == [("dump.bin", len(data))]
    assert msg.attachments[0].data == data


@pytest.mark.parametrize(
    "raw",
    [b"", b"\r\n", b"hello world", b"\x00\x01\x02\xff", b"no colon here\n\nbody", b"X-Foo: bar"],
)
def test_not_a_mail(raw: bytes) -> None:
    with pytest.raises(MailParseError):
        parse_mail(raw)


def test_headers_only_mail_is_a_mail() -> None:
    msg = parse_mail(b"From: Only Headers <only@example.net>\r\nSubject: empty\r\n\r\n")
    assert (msg.sender_address, msg.subject, msg.text, msg.full_text) == (
        "only@example.net",
        "empty",
        "",
        "",
    )


def test_mail_without_sender_keeps_its_content() -> None:
    msg = parse_mail(b"Subject: who sent this\r\nTo: support@example.com\r\n\r\nsome text\r\n")
    assert msg.sender_address == ""
    assert msg.text == "some text"


@pytest.mark.parametrize("depth", [40, 3000])
def test_deep_nesting_is_parsed_or_kept_whole(depth: int) -> None:
    # The stdlib parser recurses per level; a hostile mail must not cost us the mail.
    raw = (
        b"From: Nested <nested@example.net>\r\n"
        + b"Content-Type: message/rfc822\r\n\r\n" * depth
        + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    )
    msg = parse_mail(raw)
    assert msg.sender_address == "nested@example.net"
    assert [a.content_type for a in msg.attachments] == ["message/rfc822"]
    assert b"deep" in msg.attachments[0].data


def test_unknown_transfer_encoding_keeps_the_bytes() -> None:
    msg = parse_mail(
        b"From: a@example.net\r\nContent-Transfer-Encoding: x-gzip64\r\n\r\nC:\\new\\table\r\n"
    )
    assert msg.text == "C:\\new\\table"


# --- decoding and text helpers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (b"C:\\new\\table", "unicode_escape", "C:\\new\\table"),
        (b"C:\\new\\table", "raw-unicode-escape", "C:\\new\\table"),
        ("না".encode(), "us-ascii", "না"),
        (b"\x93hi\x94", "utf-8", "“hi”"),
        (b"caf\xe9", "x-unknown", "café"),
        (b"\x81\x8d", None, "\x81\x8d"),  # undefined in cp1252: latin-1 takes it
        (b"caf\xe9", "iso-8859-1", "café"),
        (b"x", "utf-8\x00", "x"),
        (b"x", "undefined", "x"),  # a Python codec that always raises
        (b"\xff", "rot13", "ÿ"),  # a codec, but not a text encoding
    ],
)
def test_decode_bytes_chain(data: bytes, declared: str | None, expected: str) -> None:
    assert decode_bytes(data, declared) == expected


def test_html_to_text_keeps_block_breaks_and_drops_scripts() -> None:
    html = "<p>One<br>Two</p><script>alert(1)</script><div>Three &amp; four</div>"
    assert html_to_text(html) == "One\nTwo\n\nThree & four"
    assert html_to_text("<![if broken") in ("", "<![if broken")  # never raises


def test_strip_reply_separators() -> None:
    for separator in (REPLY_SEPARATOR_EN, REPLY_SEPARATOR_BN):
        assert strip_reply(f"ok\n\n{separator}\nold") == "ok"
        assert strip_reply(f"ok\n> {separator}\n> old") == "ok"


def test_strip_reply_never_returns_empty() -> None:
    full = f"{REPLY_SEPARATOR_EN}\nreply typed below our line"
    assert strip_reply(full) == full
    quoted_only = "On Mon, 1 Jan 2024, A <a@example.net> wrote:\n> everything quoted"
    assert strip_reply(quoted_only) == quoted_only


def test_strip_reply_keeps_hyphen_lists() -> None:
    text = "Steps:\n- open the app\n- press print\n\nOn Mon, 1 Jan 2024, A wrote:\n> old"
    assert strip_reply(text) == "Steps:\n- open the app\n- press print"


# --- malformed input never escapes as another exception -----------------------------------

_HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Sender",
    "Subject",
    "Date",
    "Message-ID",
    "References",
    "In-Reply-To",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "Content-ID",
    "MIME-Version",
    "Auto-Submitted",
]
_NASTY = [
    '"',
    "(c):",
    "<[x@y]>",
    "=?utf-8?B?!!?=",
    "=?x?Q?=E0?=",
    "multipart/mixed; boundary=",
    "multipart/mixed; boundary=b",
    "text/plain; name*",
    "text/plain; charset=unicode_escape",
    "text/plain; charset=undefined",
    "text/html; charset=utf-16",
    "multipart/report; report-type=delivery-status; boundary=b",
    "message/delivery-status",
    "message/rfc822",
    "attachment; filename*=x''%E0",
    "base64",
    "quoted-printable",
    "x-uuencode",
    ":;,<>@",
    "Mon, 32 Foo 99999 99:99:99 +9999",
    "a@b,",
]
_header_line = st.tuples(
    st.sampled_from(_HEADER_NAMES),
    st.one_of(st.sampled_from(_NASTY), st.text(max_size=40)),
).map(lambda pair: f"{pair[0]}: {pair[1]}")
_body = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.one_of(st.sampled_from(["--b", "--b--", "", "C:\\new", "=E0=A6", "<p>x"]), st.text()),
        max_size=12,
    ).map("\n".join),
)


def _parse_or_reject(raw: bytes) -> None:
    try:
        msg = parse_mail(raw)
    except MailParseError:
        return
    _check_invariants(raw, msg)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_reject(raw: bytes) -> None:
    _parse_or_reject(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_header_line, max_size=10), _body, st.sampled_from(["\n", "\r\n"]))
def test_malformed_headers_parse_or_reject(headers: list[str], body: str | bytes, nl: str) -> None:
    head = nl.join(headers).encode("utf-8", errors="surrogatepass")
    tail = body if isinstance(body, bytes) else body.encode("utf-8", errors="surrogatepass")
    _parse_or_reject(head + (nl * 2).encode() + tail)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(CASE_FILES),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 40), st.binary(max_size=8)), max_size=6),
)
def test_mutated_case_files_parse_or_reject(
    path: Path, edits: list[tuple[float, int, bytes]]
) -> None:
    raw = bytearray(path.read_bytes())
    for where, length, replacement in edits:
        start = int(where * len(raw))
        raw[start : start + length] = replacement
    _parse_or_reject(bytes(raw))
