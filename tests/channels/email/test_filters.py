"""Each email filter on its own, on hand-built messages (the case files cover the pipeline)."""

from __future__ import annotations

from typing import Any

import pytest

from channels.email.filters import (
    FILTERS,
    FilterContext,
    apply_filters,
    detect_auto_reply,
    detect_bounce,
)
from helpdesk.inbound import InboundAttachment, InboundMessage

CTX = FilterContext(own_addresses={"Support@Example.com"})


def _msg(
    headers: dict[str, str] | None = None,
    *,
    sender: str = "customer@example.net",
    sender_name: str | None = None,
    subject: str = "Help",
    text: str = "Hello",
    attachments: list[InboundAttachment] | None = None,
) -> InboundMessage:
    meta: dict[str, Any] = {"headers": headers or {}}
    return InboundMessage(
        channel_kind="email",
        sender_address=sender,
        sender_name=sender_name,
        subject=subject,
        text=text,
        full_text=text,
        attachments=attachments or [],
        meta=meta,
    )


# --- auto-reply ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"auto-submitted": "auto-replied"}, "auto-submitted"),
        ({"auto-submitted": "auto-generated; type=vacation"}, "auto-submitted"),
        ({"x-autoreply": "yes"}, "x-autoreply"),
        ({"x-autorespond": "Out of office"}, "x-autoreply"),
        ({"x-autoresponder": "1"}, "x-autoreply"),
        ({"precedence": "bulk"}, "precedence-bulk"),
        ({"precedence": "Junk"}, "precedence-junk"),
        ({"precedence": "list"}, "precedence-list"),
        ({"precedence": "auto_reply"}, "precedence-auto-reply"),
        ({"x-auto-response-suppress": "All"}, "x-auto-response-suppress"),
        ({"list-id": "<dev.lists.example.org>"}, "list"),
        ({"list-unsubscribe": "<mailto:leave@lists.example.org>"}, "list"),
        ({"x-loop": "support@example.com"}, "loop"),
    ],
)
def test_auto_reply_headers(headers: dict[str, str], reason: str) -> None:
    msg = _msg(headers)
    detect_auto_reply(msg, CTX)
    assert msg.auto_submitted is True
    assert msg.meta["auto_reason"] == reason


@pytest.mark.parametrize(
    "headers",
    [{}, {"auto-submitted": "no"}, {"auto-submitted": "No (a person)"}, {"precedence": "normal"}],
)
def test_person_mail_is_not_automatic(headers: dict[str, str]) -> None:
    msg = _msg(headers)
    detect_auto_reply(msg, CTX)
    assert msg.auto_submitted is False
    assert "auto_reason" not in msg.meta


def test_own_address_is_a_loop_whatever_the_case() -> None:
    msg = _msg({"auto-submitted": "auto-replied"}, sender="support@example.com")
    detect_auto_reply(msg, CTX)
    # The loop is the more important fact: it explains why we must never answer.
    assert msg.meta["auto_reason"] == "loop"


def test_missing_headers_meta_is_tolerated() -> None:
    msg = _msg()
    msg.meta.clear()
    apply_filters(msg, CTX)
    assert msg.auto_submitted is False


# --- bounce -------------------------------------------------------------------------------

DSN = (
    b"Reporting-MTA: dns; mail.example.com\n\n"
    b"Final-Recipient: rfc822; Delayed@Example.net\nAction: delayed\nStatus: 4.4.1\n\n"
    b"Final-Recipient: rfc822; Gone@Example.net\nAction: failed\nStatus: 5.1.1\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\n"
)
ORIGINAL = b"Message-ID: <ticket-7@example.com>\nSubject: Re: [#7]\n\nbody\n"


def _dsn(dsn: bytes = DSN, original: bytes = ORIGINAL) -> InboundMessage:
    return _msg(
        {"content-type": 'multipart/report; report-type="delivery-status"; boundary=x'},
        sender="mailer-daemon@mail.example.com",
        subject="Undelivered Mail Returned to Sender",
        attachments=[
            InboundAttachment("delivery-status.txt", "message/delivery-status", dsn),
            InboundAttachment("original.eml", "message/rfc822", original),
        ],
    )


def test_dsn_picks_the_failed_recipient() -> None:
    msg = _dsn()
    detect_bounce(msg, CTX)
    assert msg.is_bounce is True
    assert msg.auto_submitted is True
    assert msg.meta["auto_reason"] == "bounce"
    assert msg.meta["bounce"] == {
        "recipient": "gone@example.net",
        "status": "5.1.1",
        "action": "failed",
        "diagnostic": "550 5.1.1 User unknown",
        "original_message_id": "ticket-7@example.com",
    }


def test_delay_report_is_automatic_but_not_a_bounce() -> None:
    msg = _dsn(b"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.example\nAction: delayed\n")
    detect_bounce(msg, CTX)
    assert msg.is_bounce is False
    assert msg.auto_submitted is True
    assert msg.meta["auto_reason"] == "dsn-delayed"


def test_original_headers_part_gives_message_id() -> None:
    msg = _dsn()
    msg.attachments[1] = InboundAttachment(
        "original-headers.txt", "text/rfc822-headers", b"Message-ID: <hdr-only@example.com>\n"
    )
    detect_bounce(msg, CTX)
    assert msg.meta["bounce"]["original_message_id"] == "hdr-only@example.com"


def test_garbage_report_still_marks_the_bounce() -> None:
    msg = _dsn(dsn=b"\xff\xfe not a report", original=b"")
    detect_bounce(msg, CTX)
    assert msg.is_bounce is True
    assert msg.meta["bounce"]["recipient"] is None
    assert msg.meta["bounce"]["original_message_id"] is None


def test_non_standard_bounce_from_postmaster() -> None:
    text = (
        "Delivery has failed to these recipients or groups:\n\n"
        "<gone@example.org>: 550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\n\n"
        "Original message headers:\n\nMessage-ID: <ticket-9@example.com>\n"
    )
    msg = _msg(sender="postmaster@corp.example", subject="Undeliverable: Re: [#9]", text=text)
    detect_bounce(msg, CTX)
    assert msg.is_bounce is True
    assert msg.meta["bounce"]["recipient"] == "gone@example.org"
    assert msg.meta["bounce"]["status"] == "5.1.1"
    assert "RecipNotFound" in msg.meta["bounce"]["diagnostic"]
    assert msg.meta["bounce"]["original_message_id"] == "ticket-9@example.com"


def test_exim_failed_recipients_header() -> None:
    msg = _msg(
        {"x-failed-recipients": "Gone@Example.org"},
        sender="mailer-daemon@mx.example.org",
        sender_name="Mail Delivery System",
        subject="Mail delivery failed: returning message to sender",
        text="This message was created automatically by mail delivery software.",
    )
    detect_bounce(msg, CTX)
    assert msg.meta["bounce"]["recipient"] == "gone@example.org"


def test_customer_forwarding_a_bounce_is_not_a_bounce() -> None:
    msg = _msg(subject="Fwd: Undelivered Mail Returned to Sender", text="Why did this bounce?")
    detect_bounce(msg, CTX)
    assert msg.is_bounce is False
    assert msg.auto_submitted is False


def test_daemon_mail_without_bounce_subject_is_left_alone() -> None:
    msg = _msg(sender="postmaster@example.org", subject="Your mailbox quota")
    detect_bounce(msg, CTX)
    assert msg.is_bounce is False


# --- pipeline -----------------------------------------------------------------------------


def test_bounce_reason_wins_over_auto_submitted() -> None:
    msg = _dsn()
    msg.meta["headers"]["auto-submitted"] = "auto-replied"
    apply_filters(msg, CTX)
    assert msg.meta["auto_reason"] == "bounce"


def test_filters_run_in_documented_order() -> None:
    assert (detect_bounce, detect_auto_reply) == FILTERS
