"""Batched ingest: one transaction per fetched batch, parsing first (in parser processes for big
batches), per-mail savepoints only when the batch fails; the outcome is what mail-by-mail
ingest gives."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.email import ingest
from channels.email.imap import fetch_once
from channels.email.ingest import Mail, Unparsable, prepare_safely, process_batch, start_prepare
from channels.inbound import InboundMessage
from helpdesk.models import Channel, Customer, Message, QuarantinedMail, Ticket
from helpdesk.services.events import EventRecorder
from tests.channels.email.conftest import Mailbox, make_mail


def _batch(session: Session, channel: Channel, raws: list[bytes]) -> list[ingest.PipelineResult]:
    mails = [Mail(uid, raw) for uid, raw in enumerate(raws, start=1)]
    settings = ingest.prepare_settings(channel)
    results = process_batch(
        session, mails, [prepare_safely(m.raw, settings) for m in mails], channel, folder="INBOX"
    )
    session.commit()
    return results


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_reply_in_the_same_batch_threads_and_a_repeat_is_stored_once(
    app_with_ctx: Flask, session: Session, channel: Channel, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_mail(subject="বিল ভুল এসেছে", message_id="first@example.com")
    reply = make_mail(
        subject="Re: বিল ভুল এসেছে",
        body="Any news?",
        message_id="reply@example.com",
        in_reply_to="first@example.com",
        references=["first@example.com"],
    )
    other = make_mail(sender="karim@example.com", subject="Password reset")
    with caplog.at_level(logging.INFO, logger="helpdesk.mail"):
        results = _batch(session, channel, [first, reply, first, other])

    assert [(r.created, r.duplicate) for r in results] == [
        (True, False),
        (False, False),
        (False, True),
        (True, False),
    ]
    assert "one by one" not in caplog.text  # nothing failed: no per-mail redo
    tickets = list(session.scalars(select(Ticket).order_by(Ticket.id)))
    assert [t.subject for t in tickets] == ["বিল ভুল এসেছে", "Password reset"]
    assert tickets[0].message_count == 2
    # The same sender twice in one batch is one customer.
    assert _count(session, Customer) == 2 and _count(session, Message) == 3


def test_a_failing_mail_is_quarantined_and_the_rest_of_its_batch_stored(
    app_with_ctx: Flask, session: Session, channel: Channel, events: EventRecorder
) -> None:
    raws = [
        make_mail(subject="First", message_id="a@example.com"),
        b"this is not a mail at all\r\n",  # fails parsing: quarantined before the batch
        make_mail(sender="not an address", message_id="b@example.com"),  # fails in receive
        make_mail(sender="karim@example.com", subject="Third", message_id="c@example.com"),
    ]
    results = _batch(session, channel, raws)

    assert [r.quarantined is not None for r in results] == [False, True, True, False]
    assert {t.subject for t in session.scalars(select(Ticket))} == {"First", "Third"}
    items = list(session.scalars(select(QuarantinedMail).order_by(QuarantinedMail.uid)))
    assert [(i.uid, i.error.split(":")[0]) for i in items] == [
        (2, "MailParseError"),
        (3, "ServiceError"),
    ]
    # Agents hear of the two stored tickets once each, never of work that was rolled back.
    created = [e.payload["subject"] for e in events.events if e.name == "ticket.created"]
    assert sorted(created) == ["First", "Third"]


def test_parser_processes_read_mail_exactly_as_this_process_does(
    app_with_ctx: Flask, channel: Channel
) -> None:
    raws = [
        make_mail(subject="অর্ডার ১২৩৪ এখনও আসেনি", body="আমার অর্ডার এখনও আসেনি।"),
        make_mail(attachments=[("চালান.pdf", "application/pdf", b"%PDF-1.4 data")]),
        b"this is not a mail at all\r\n",
    ]
    mails = [Mail(uid, raw) for uid, raw in enumerate(raws, start=1)]
    settings = ingest.prepare_settings(channel)
    assert ingest.warm_parsers(2, timeout=120)
    pending = start_prepare(mails, settings, workers=2, pool_min=1)
    assert pending.in_processes
    here = [prepare_safely(m.raw, settings) for m in mails]
    there = pending.results()
    assert isinstance(there[2], Unparsable) and there[2] == here[2]
    for a, b in zip(here[:2], there[:2], strict=True):
        assert isinstance(a, InboundMessage) and isinstance(b, InboundMessage)
        b.raw = a.raw  # not sent back through the pipe: the caller has the bytes
        assert a == b
    assert isinstance(there[0], InboundMessage) and there[0].language == "bn"
    assert isinstance(there[1], InboundMessage)
    assert [a.filename for a in there[1].attachments] == ["চালান.pdf"]


def test_a_big_fetch_parsed_in_processes_stores_every_mail_once(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    app.config.update(MAIL_FETCH_BATCH=7, MAIL_PARSE_POOL_MIN=1, MAIL_PARSE_WORKERS=2)
    assert ingest.warm_parsers(2, timeout=120)
    fetch_once(app, channel.id)
    mailbox.append(
        *[make_mail(subject=f"অর্ডার {i}", message_id=f"m{i}@example.com") for i in range(30)]
    )
    mailbox.append(
        make_mail(subject="Re: অর্ডার 3", message_id="r3@example.com", in_reply_to="m3@example.com")
    )
    result = fetch_once(app, channel.id)
    assert (result.fetched, result.created, result.quarantined) == (31, 30, 0)
    ids = list(session.scalars(select(Message.message_id)))
    assert len(ids) == 31 and len(set(ids)) == 31
    reply = session.scalar(select(Message).where(Message.message_id == "r3@example.com"))
    assert reply is not None and reply.ticket.subject == "অর্ডার 3"
    session.commit()  # end the read (SQLite: it holds the write lock) before fetching again
    assert fetch_once(app, channel.id).fetched == 0
