"""IDLE push against a real Dovecot, end to end with a real SMTP server: a mail is a ticket
within 2 s, the agent's reply leaves with threading headers, the customer's answer threads
back; Dovecot restarts are survived; bounces, auto-replies and acknowledgements."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.imap import FetchResult, MailboxWatcher, fetch_once
from helpdesk.models import (
    Agent,
    Channel,
    CustomerIdentity,
    DeliveryStatus,
    Message,
    MessageKind,
    Ticket,
    TicketStatus,
)
from helpdesk.services import outbox, tickets
from tests.channels.email.conftest import SUPPORT, Mailbox, MakeChannel, make_mail
from tests.servers import DovecotServer, SmtpSink


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = {
        "MAIL_IDLE_SLICE_SECONDS": 3,
        "MAIL_RECONNECT_BASE_SECONDS": 0.1,
        "MAIL_RECONNECT_MAX_SECONDS": 0.5,
        "MAIL_FROM": SUPPORT,
        "OUTBOX_BACKOFF_BASE_SECONDS": 0.0,
    }
    if "smtp_sink" in request.fixturenames:
        sink: SmtpSink = request.getfixturevalue("smtp_sink")
        config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port)
    return config


class Batches:
    """Collects the watcher's committed batches; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.results: list[FetchResult] = []
        self.cond = threading.Condition()

    def __call__(self, result: FetchResult) -> None:
        with self.cond:
            self.results.append(result)
            self.cond.notify_all()

    def fetched(self) -> int:
        return sum(r.fetched for r in self.results)

    def wait_fetched(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.fetched() >= n, timeout), self.fetched()


@pytest.fixture
def watch(app: Flask, session: Session) -> Iterator[Any]:
    started: list[tuple[MailboxWatcher, threading.Event]] = []

    def start(channel: Channel) -> tuple[MailboxWatcher, Batches]:
        batches = Batches()
        stop = threading.Event()
        watcher = MailboxWatcher(app, channel.id, stop, on_batch=batches)
        watcher.start()
        started.append((watcher, stop))
        assert watcher.connected.wait(10)
        return watcher, batches

    yield start
    # The test's own session may still hold SQLite's write lock (transactions begin IMMEDIATE)
    # from its last read; a watcher finishing a fetch would wait on it past the join below.
    session.rollback()
    for _watcher, stop in started:
        stop.set()
    for watcher, _stop in started:
        watcher.join(timeout=10)
        assert not watcher.is_alive(), "watcher thread leaked"


def in_worker(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on a thread of its own, as the worker does (no request context around it)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            with args[0].app_context():  # like worker.run_once
                out["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def reply_as_agent(app: Flask, ticket_id: int, agent_id: int, text: str) -> Message:
    """An agent's reply in a transaction of its own, as the web request would make it."""
    from helpdesk.extensions import db

    def reply() -> Message:
        with db.transaction(app) as s:
            ticket, agent = s.get(Ticket, ticket_id), s.get(Agent, agent_id)
            assert ticket is not None and agent is not None
            return tickets.reply_to_ticket(s, ticket, agent, text)

    result: Message = in_worker_app(app, reply)
    return result


def in_worker_app(app: Flask, fn: Any) -> Any:
    return in_worker(lambda _app: fn(), app)


def ticket_of(session: Session, message_id: str) -> Ticket:
    """The ticket holding a message, freshly read; the read transaction is ended.

    (Nothing is expired: touching an expired object later would begin a transaction, which on
    SQLite takes the write lock the worker threads need.)
    """
    fresh = {"populate_existing": True}
    message = session.scalar(
        select(Message).where(Message.message_id == message_id).execution_options(**fresh)
    )
    assert message is not None
    ticket = session.scalar(
        select(Ticket).where(Ticket.id == message.ticket_id).execution_options(**fresh)
    )
    assert ticket is not None
    session.commit()
    return ticket


def test_end_to_end_thread_over_idle_and_smtp(
    app: Flask,
    session: Session,
    mailbox: Mailbox,
    channel: Channel,
    agent: Agent,
    smtp_sink: SmtpSink,
    watch: Any,
) -> None:
    _watcher, batches = watch(channel)

    appended = time.monotonic()
    mailbox.append(
        make_mail(subject="রিফান্ড চাই", body="আমার টাকা ফেরত দিন।", message_id="c1@example.com")
    )
    batches.wait_fetched(1)
    assert time.monotonic() - appended <= 2.0  # a ticket in the queue within 2 seconds
    ticket = ticket_of(session, "c1@example.com")
    assert ticket.subject == "রিফান্ড চাই" and ticket.status == TicketStatus.NEW

    reply = tickets.reply_to_ticket(session, ticket, agent, "টাকা ফেরত পাঠানো হয়েছে।")
    session.commit()
    in_worker(outbox.drain, app)
    [sent] = smtp_sink.wait_for(1)
    mail = message_from_bytes(sent.data, policy=policy.default)
    assert sent.rcpt_tos == ("rahim@example.com",)
    assert mail["In-Reply-To"] == "<c1@example.com>"
    assert mail["References"] == "<c1@example.com>"
    assert mail["Message-ID"] == f"<{reply.message_id}>"
    assert f"[#{ticket.number}]" in str(mail["Subject"])
    assert "Auto-Submitted" not in mail  # a person wrote this one

    # The customer answers that mail with a changed subject: it still joins the ticket.
    mailbox.append(
        make_mail(
            subject="আরেকটা প্রশ্ন",
            body="ধন্যবাদ! আরেকটা প্রশ্ন আছে।",
            message_id="c2@example.com",
            in_reply_to=str(reply.message_id),
            references=["c1@example.com", str(reply.message_id)],
        )
    )
    batches.wait_fetched(2)
    assert ticket_of(session, "c2@example.com").id == ticket.id
    assert session.scalar(select(Ticket.id).where(Ticket.id != ticket.id)) is None


def test_dovecot_restart_during_idle_reconnects_and_catches_up(
    app: Flask,
    session: Session,
    mailbox: Mailbox,
    channel: Channel,
    dovecot: DovecotServer,
    watch: Any,
) -> None:
    watcher, batches = watch(channel)
    mailbox.append(make_mail(message_id="before@example.com"))
    batches.wait_fetched(1)

    dovecot.stop()  # graceful: the IDLE connection gets BYE
    dovecot.start()
    # Mail that arrives before the watcher is back is caught up by the resync on reconnect.
    mailbox.append(make_mail(message_id="during@example.com"))
    batches.wait_fetched(2, timeout=15)
    assert watcher.connections >= 2
    ticket_of(session, "during@example.com")

    dovecot.restart(graceful=False)  # a crash: no BYE, the socket just dies
    mailbox.append(make_mail(message_id="after-crash@example.com"))
    batches.wait_fetched(3, timeout=20)
    assert watcher.connections >= 3
    ticket_of(session, "after-crash@example.com")


def test_polling_fallback_and_health_error_when_the_server_is_gone(
    app: Flask, session: Session, mailbox: Mailbox, make_channel: MakeChannel
) -> None:
    channel = make_channel()
    channel_id = channel.id
    with app.app_context():
        from helpdesk.extensions import db

        with db.transaction(app) as s:
            row = s.get(Channel, channel_id)
            assert row is not None
            row.settings = {**row.settings, "imap": {**row.settings["imap"], "port": 1}}
    with pytest.raises(OSError):
        in_worker(fetch_once, app, channel_id)
    session.expire_all()
    row = session.get(Channel, channel_id)
    assert row is not None and row.status.value == "error" and row.last_error
    assert mailbox.password not in row.last_error


def test_bounce_marks_the_reply_failed_and_the_address_bouncing(
    app: Flask,
    session: Session,
    mailbox: Mailbox,
    channel: Channel,
    agent: Agent,
    smtp_sink: SmtpSink,
) -> None:
    in_worker(fetch_once, app, channel.id)
    mailbox.append(make_mail(sender="gone@example.com", message_id="q1@example.com"))
    in_worker(fetch_once, app, channel.id)
    ticket = ticket_of(session, "q1@example.com")
    reply = reply_as_agent(app, ticket.id, agent.id, "We are looking into it.")
    in_worker(outbox.drain, app)
    smtp_sink.wait_for(1)

    dsn = _dsn(str(reply.message_id), "gone@example.com")
    mailbox.append(dsn)
    result = in_worker(fetch_once, app, channel.id)
    assert result.created == 0  # the report joins the ticket of the mail that bounced

    session.expire_all()
    failed = session.get(Message, reply.id)
    assert failed is not None and failed.delivery_status == DeliveryStatus.FAILED
    assert "5.1.1" in (failed.delivery_error or "") and "no such user" in failed.delivery_error
    report = session.scalar(select(Message).where(Message.kind == MessageKind.SYSTEM))
    assert report is not None and report.ticket_id == ticket.id
    identity = session.scalar(
        select(CustomerIdentity).where(CustomerIdentity.value == "gone@example.com")
    )
    assert identity is not None and identity.bouncing
    page = ticket.status
    assert page == TicketStatus.OPEN


def test_auto_reply_never_reopens_and_acknowledgements_are_automatic_and_limited(
    app: Flask,
    session: Session,
    mailbox: Mailbox,
    make_channel: MakeChannel,
    agent: Agent,
    smtp_sink: SmtpSink,
) -> None:
    app.config["MAIL_AUTO_REPLY_LIMIT"] = 2
    channel = make_channel(acknowledge=True)
    in_worker(fetch_once, app, channel.id)
    mailbox.append(
        *(make_mail(subject=f"Problem {i}", message_id=f"p{i}@example.com") for i in range(3))
    )
    in_worker(fetch_once, app, channel.id)
    assert (
        in_worker(outbox.drain, app) == 2
    )  # three new tickets, two acknowledgements: rate limited
    sent = smtp_sink.wait_for(2)
    for got in sent:
        mail = message_from_bytes(got.data, policy=policy.default)
        assert mail["Auto-Submitted"] == "auto-replied"
        assert "We have received your message" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    ticket = ticket_of(session, "p0@example.com")
    assert ticket.status == TicketStatus.NEW  # the acknowledgement changed nothing
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    session.commit()

    vacation = make_mail(
        sender="rahim@example.com",
        subject="Out of office",
        message_id="ooo@example.com",
        in_reply_to="p0@example.com",
        headers={"Auto-Submitted": "auto-replied"},
    )
    mailbox.append(vacation)
    in_worker(fetch_once, app, channel.id)
    auto = ticket_of(session, "ooo@example.com")
    assert auto.id == ticket.id and auto.status == TicketStatus.RESOLVED
    message = session.scalar(select(Message).where(Message.message_id == "ooo@example.com"))
    assert message is not None and message.kind == MessageKind.SYSTEM
    session.commit()
    assert in_worker(outbox.drain, app) == 0  # never answered automatically


def _dsn(original_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        f"To: {SUPPORT}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example.com>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {SUPPORT}\r\nTo: {recipient}\r\nMessage-ID: <{original_id}>\r\n"
        "--B--\r\n"
    ).encode()
