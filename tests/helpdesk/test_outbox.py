"""Delivering replies through the outbox to a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, AuditEvent, DeliveryStatus, Message, Ticket
from helpdesk.services import outbox, tickets
from helpdesk.services.events import EventRecorder
from tests.conftest import MakeTicket
from tests.servers import SmtpSink


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "smtp_sink" in request.fixturenames:
        sink: SmtpSink = request.getfixturevalue("smtp_sink")
        return {"SMTP_HOST": sink.host, "SMTP_PORT": sink.port, "OUTBOX_BACKOFF_BASE_SECONDS": 0.0}
    return {}


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def due_now(session: Session) -> None:
    """Make every queued message due (skipping the backoff wait of a retry)."""
    for m in session.scalars(
        select(Message).where(Message.delivery_status == DeliveryStatus.QUEUED)
    ):
        m.next_attempt_at = utcnow() - timedelta(seconds=1)
    session.commit()


def test_reply_reaches_the_customer_with_threading_headers(
    app: Flask, session: Session, make_ticket: MakeTicket, agent: Agent, smtp_sink: SmtpSink
) -> None:
    t = make_ticket(
        sender="rahim@example.com",
        sender_name="রহিম",
        subject="পাসওয়ার্ড",
        message_id="c1@mail.example",
        language="bn",
    ).ticket
    reply = tickets.reply_to_ticket(session, t, agent, "আপনার পাসওয়ার্ড রিসেট লিঙ্ক পাঠানো হয়েছে।")
    session.commit()

    assert outbox.drain(app) == 1
    [got] = smtp_sink.wait_for(1)
    mail = parse(got.data)
    assert got.rcpt_tos == ("rahim@example.com",)
    assert mail["Message-ID"] == f"<{reply.message_id}>"
    assert mail["In-Reply-To"] == "<c1@mail.example>"
    assert mail["References"] == "<c1@mail.example>"
    assert mail["Subject"] == f"[#{t.number}] পাসওয়ার্ড"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "আপনার পাসওয়ার্ড রিসেট লিঙ্ক পাঠানো হয়েছে।" in text
    # The customer's language decides the template's language (bn separator line).
    assert "অনুগ্রহ করে এই লাইনের উপরে উত্তর লিখুন" in text
    assert "<p>আপনার পাসওয়ার্ড" in html

    session.expire_all()
    sent = session.get(Message, reply.id)
    assert sent is not None and sent.delivery_status == DeliveryStatus.SENT and sent.sent_at


def test_smtp_down_then_up_delivers_every_queued_reply(
    app: Flask, session: Session, make_ticket: MakeTicket, agent: Agent, smtp_sink: SmtpSink
) -> None:
    t = make_ticket().ticket
    ids = [tickets.reply_to_ticket(session, t, agent, f"reply {i}").id for i in range(3)]
    session.commit()

    smtp_sink.stop()
    try:
        assert outbox.drain(app) == 3
        session.expire_all()
        for mid in ids:
            m = session.get(Message, mid)
            assert m is not None
            assert m.delivery_status == DeliveryStatus.QUEUED  # will retry
            assert m.delivery_attempts == 1 and m.delivery_error
    finally:
        smtp_sink.start()

    due_now(session)
    assert outbox.drain(app) == 3
    bodies = sorted(parse(r.data).get_body(("plain",)).get_content() for r in smtp_sink.wait_for(3))  # type: ignore[union-attr]
    assert [b.splitlines()[2] for b in bodies] == ["reply 0", "reply 1", "reply 2"]
    session.expire_all()
    assert {session.get(Message, i).delivery_status for i in ids} == {DeliveryStatus.SENT}  # type: ignore[union-attr]


def test_permanent_failure_shows_on_the_ticket(
    app: Flask,
    session: Session,
    make_ticket: MakeTicket,
    agent: Agent,
    smtp_sink: SmtpSink,
    events: EventRecorder,
) -> None:
    # A chat visitor without email: the reply can never be mailed.
    t = make_ticket(channel="portal", sender="someone@example.com").ticket
    t.customer.email = None
    reply = tickets.reply_to_ticket(session, t, agent, "Hello")
    session.commit()
    events.events.clear()

    outbox.drain(app)
    session.expire_all()
    failed = session.get(Message, reply.id)
    assert failed is not None and failed.delivery_status == DeliveryStatus.FAILED
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "message.failed")).one()
    assert audit.ticket_id == t.id
    assert [e.payload["status"] for e in events.events if e.name == "message.delivery"] == [
        "failed"
    ]
    assert smtp_sink.messages == []


def test_too_many_attempts_fail_for_good(
    app: Flask, session: Session, ticket: Ticket, agent: Agent, smtp_sink: SmtpSink
) -> None:
    app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    reply = tickets.reply_to_ticket(session, ticket, agent, "Hello")
    session.commit()
    smtp_sink.stop()
    try:
        outbox.drain(app)
        due_now(session)
        outbox.drain(app)
    finally:
        smtp_sink.start()
    session.expire_all()
    m = session.get(Message, reply.id)
    assert m is not None and m.delivery_status == DeliveryStatus.FAILED and m.delivery_attempts == 2
    # An agent can ask for another try, and then it goes out.
    outbox.retry_now(session, m)
    session.commit()
    outbox.drain(app)
    assert len(smtp_sink.wait_for(1)) == 1


def test_a_worker_that_died_mid_send_is_taken_over_after_the_lease(
    app: Flask, session: Session, ticket: Ticket, agent: Agent, smtp_sink: SmtpSink
) -> None:
    reply = tickets.reply_to_ticket(session, ticket, agent, "Hello")
    session.commit()
    # What a crashed worker leaves behind: claimed, never recorded.
    reply.delivery_status = DeliveryStatus.SENDING
    reply.lease_until = utcnow() + timedelta(minutes=1)
    session.commit()
    assert outbox.drain(app) == 0  # lease still held
    reply.lease_until = utcnow() - timedelta(seconds=1)
    session.commit()
    assert outbox.drain(app) == 1
    assert len(smtp_sink.wait_for(1)) == 1


def test_without_smtp_mail_is_written_to_the_instance_folder(
    app: Flask, session: Session, ticket: Ticket, agent: Agent
) -> None:
    reply = tickets.reply_to_ticket(session, ticket, agent, "Offline demo reply")
    session.commit()
    outbox.drain(app)
    files = list(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    assert len(files) == 1
    assert parse(files[0].read_bytes())["Message-ID"] == f"<{reply.message_id}>"


def test_worker_run_once_never_raises(
    app: Flask, session: Session, ticket: Ticket, agent: Agent
) -> None:
    from helpdesk import worker

    def broken(_app: Flask) -> int:
        raise RuntimeError("disk full")

    worker.register_task(app, broken)
    tickets.reply_to_ticket(session, ticket, agent, "Still delivered")
    session.commit()
    assert worker.run_once(app) == 1


def test_a_slow_worker_task_is_named_in_the_log(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Replies wait behind every task of a round: an operator sees which task held them up."""
    from helpdesk import worker

    now = [100.0]

    def rebuild_everything(_app: Flask) -> int:
        now[0] += 2.5  # what the task took
        return 0

    app.extensions["helpdesk.worker_tasks"] = [rebuild_everything]
    monkeypatch.setattr(worker.time, "monotonic", lambda: now[0])
    with caplog.at_level("WARNING", logger="helpdesk.worker"):
        worker.run_once(app)
    assert "worker task rebuild_everything took 2.5 s" in caplog.text


def test_a_committed_reply_wakes_the_worker_and_a_rolled_back_one_does_not(
    app: Flask, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    from helpdesk import worker

    t = make_ticket(sender="rahim@example.com", subject="Refund").ticket
    worker._wake.clear()
    tickets.reply_to_ticket(session, t, agent, "Not sent: rolled back.")
    session.rollback()
    assert not worker._wake.is_set()  # nobody is woken for a reply that does not exist

    t = session.get(Ticket, t.id)
    assert t is not None
    tickets.reply_to_ticket(session, t, agent, "Your refund is on its way.")
    assert not worker._wake.is_set()  # not before the commit
    session.commit()
    assert worker._wake.is_set()  # the in-process worker delivers it now, not at its next poll


def test_mail_of_no_ticket_message_goes_through_the_same_outbox(
    app: Flask, session: Session, smtp_sink: SmtpSink
) -> None:
    """A portal sign-in link (an ``outbound_mails`` row): queued with the request, retried while
    SMTP is down, sent once it is up, in the customer's language."""
    from channels.portal import magic
    from helpdesk.models import OutboundMail
    from helpdesk.services.customers import resolve_customer

    customer = resolve_customer(session, "email", "nasrin@example.com", language="bn")
    magic.issue(session, customer, "signin", mail="signin", language="bn")
    session.rollback()  # nothing is queued by a request that fails
    assert session.scalars(select(OutboundMail)).all() == []

    customer = resolve_customer(session, "email", "nasrin@example.com", language="bn")
    magic.issue(session, customer, "signin", mail="signin", language="bn")
    session.commit()
    smtp_sink.stop()
    try:
        assert outbox.drain(app) == 1
    finally:
        smtp_sink.start()
    session.expire_all()
    row = session.scalars(select(OutboundMail)).one()
    assert (row.status, row.attempts, row.purpose) == (DeliveryStatus.QUEUED, 1, "portal.signin")
    assert row.error

    row.next_attempt_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert outbox.drain(app) == 1
    [got] = smtp_sink.wait_for(1)
    mail = parse(got.data)
    assert got.rcpt_tos == ("nasrin@example.com",)
    link_text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "/portal/" in link_text
    assert mail["Subject"] != "Your sign-in link"  # the bn subject
    session.expire_all()
    sent = session.get(OutboundMail, row.id)
    assert sent is not None and sent.status == DeliveryStatus.SENT and sent.sent_at
    session.rollback()
    assert outbox.drain(app) == 0  # sent once


def test_a_reply_answers_the_customers_latest_mail_not_our_acknowledgement(
    app: Flask, session: Session, make_ticket: MakeTicket, agent: Agent, smtp_sink: SmtpSink
) -> None:
    """Mail clients thread on In-Reply-To: it names the customer's message. References keeps
    the whole thread, our acknowledgement included."""
    from channels.email.services import queue_acknowledgement

    received = make_ticket(sender="rahim@example.com", message_id="c1@mail.example")
    ack = queue_acknowledgement(session, received.ticket, received.message)
    session.commit()
    assert ack is not None and ack.message_id
    reply = tickets.reply_to_ticket(session, received.ticket, agent, "Here is your answer.")
    session.commit()
    assert reply.in_reply_to == "c1@mail.example"
    assert reply.references == ["c1@mail.example", ack.message_id]
    outbox.drain(app)
    sent = [parse(r.data) for r in smtp_sink.wait_for(2)]
    answer = next(m for m in sent if m["Message-ID"] == f"<{reply.message_id}>")
    assert answer["In-Reply-To"] == "<c1@mail.example>"


def test_a_reply_after_a_chat_carries_only_valid_message_ids(
    session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    """Chat lines keep their client id in message_id (no '@'): never a mail header's id."""
    chat = make_ticket(sender="visitor-9", channel="chat", message_id="line-0001-abcdef")
    reply = tickets.reply_to_ticket(session, chat.ticket, agent, "Sorry we missed you.")
    session.commit()
    assert reply.in_reply_to is None and reply.references == []
    again = tickets.reply_to_ticket(session, chat.ticket, agent, "One more thing.")
    session.commit()
    # Our own replies have real Message-IDs, so the thread goes on from there.
    assert again.references == [reply.message_id] and again.in_reply_to == reply.message_id
