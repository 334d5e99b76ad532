"""Batched ingest: one transaction per fetched batch, parsing first (in parser processes for big
batches), per-mail savepoints only when the batch fails; the outcome is what mail-by-mail
ingest gives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.email import ingest
from channels.email.imap import fetch_once
from channels.email.ingest import Mail, Unparsable, prepare_safely, process_batch, start_prepare
from channels.email.models import QuarantinedMail
from helpdesk.inbound import InboundMessage
from helpdesk.models import Channel, Customer, Direction, Message, Ticket
from helpdesk.services import stream
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


# --- the batch service (services.inbound.receive_batch) -----------------------------------


def _conversation(tag: str, resolved_id: str) -> list[bytes]:
    """One mailbox's day: new mails, a reply to one of them in the same batch, a repeat, a Cc,
    an auto-reply, a subject token, a reply that reopens a resolved ticket. ``tag`` keeps two
    channels' copies apart (addresses and Message-IDs)."""

    def mid(name: str) -> str:
        return f"{name}.{tag}@example.com"

    rahim, karim, lina = (f"{who}.{tag}@example.com" for who in ("rahim", "karim", "lina"))
    first = make_mail(rahim, "বিল ভুল এসেছে", "আমার বিল ভুল।", message_id=mid("m1"))
    return [
        first,
        make_mail(
            rahim, "Re: বিল ভুল এসেছে", "Any news?", message_id=mid("m2"), in_reply_to=mid("m1")
        ),
        make_mail(
            karim,
            "Password reset",
            "<p>It fails</p>",
            message_id=mid("m3"),
            headers={"Cc": f"Lina <{lina}>"},
        ),
        first,  # the same mail again
        make_mail(
            karim,
            "Out of office",
            "I am away.",
            message_id=mid("m4"),
            in_reply_to=mid("m3"),
            headers={"Auto-Submitted": "auto-replied"},
        ),
        make_mail(lina, "[#999999] Old case", "Still broken.", message_id=mid("m5")),
        make_mail(
            rahim,
            "Re: earlier",
            "It broke again.",
            message_id=mid("m6"),
            in_reply_to=resolved_id,
            attachments=[("log.txt", "text/plain", b"error 42\n")],
        ),
        # Someone new answering in the thread: a new customer on an existing ticket.
        make_mail(
            f"nadia.{tag}@example.com",
            "Re: বিল ভুল এসেছে",
            "Me too!",
            message_id=mid("m7"),
            references=[mid("m1")],
        ),
    ]


def _snapshot(session: Session, channel: Channel, tag: str) -> list[dict[str, object]]:
    """Everything a user sees of a channel's tickets, without ids and the channel's tag."""
    from helpdesk.models import AuditEvent

    tickets = list(
        session.scalars(
            select(Ticket).where(Ticket.channel_id == channel.id).order_by(Ticket.number)
        )
    )
    numbers = {t.number: i for i, t in enumerate(tickets)}
    shown = []
    for ticket in tickets:
        messages = list(
            session.scalars(
                select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
            )
        )
        message_ids = {m.id: i for i, m in enumerate(messages)}
        trail = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.ticket_id == ticket.id).order_by(AuditEvent.id)
            )
        )
        participants = sorted(str(p.email) for p in ticket.participants)
        shown.append(
            {
                "subject": ticket.subject,
                "status": ticket.status,
                "active": ticket.active,
                "version": ticket.version,
                "message_count": ticket.message_count,
                "customer": (ticket.customer.email, ticket.customer.name, ticket.customer.language),
                "participants": participants,
                "messages": [
                    (
                        m.kind,
                        m.direction,
                        m.author_customer.email if m.author_customer else None,
                        m.body_text,
                        m.body_html,
                        m.subject,
                        m.message_id,
                        m.in_reply_to,
                        m.references,
                        [(a.filename, a.sha256) for a in m.attachments],
                        m.raw_sha256 is not None,  # the raw mails differ by their tag
                    )
                    if m.direction == Direction.INBOUND
                    # Our acknowledgement: its text names the ticket number, its Message-ID
                    # the ticket id; what matters is that it is there, in its place.
                    else (m.kind, m.direction, m.subject, m.delivery_status)
                    for m in messages
                ],
                "audit": [
                    (
                        e.action,
                        e.actor_customer.email if e.actor_customer else None,
                        {
                            k: message_ids.get(v, v)
                            if k == "message_id"
                            else numbers.get(v, v)
                            if k == "number"
                            else v
                            for k, v in e.data.items()
                        },
                    )
                    for e in trail
                ],
            }
        )
    return [_untag(ticket, tag) for ticket in shown]


def _untag(value: Any, tag: str) -> Any:
    """``value`` with the channel's tag in addresses and Message-IDs replaced by ``TAG``."""
    if isinstance(value, str):
        return value.replace(f".{tag}@", ".TAG@")
    if isinstance(value, dict):
        return {key: _untag(item, tag) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_untag(item, tag) for item in value)
    return value


@pytest.mark.parametrize("acknowledge", [False, True], ids=["plain", "acknowledging"])
def test_batch_ingest_stores_exactly_what_mail_by_mail_ingest_stores(
    app_with_ctx: Flask, session: Session, make_channel: Callable[..., Channel], acknowledge: bool
) -> None:
    from channels.email.ingest import process_mail
    from helpdesk.models import Customer, TicketStatus
    from helpdesk.services.tickets import set_status

    outcomes = {}
    for tag, by_batch in (("one", False), ("all", True)):
        channel = make_channel(
            f"Support {tag}", address=f"support-{tag}@helpdesk.test", acknowledge=acknowledge
        )
        earlier = make_mail(
            f"rahim.{tag}@example.com", "Earlier", message_id=f"m0.{tag}@example.com"
        )
        stored = process_mail(session, earlier, channel).message
        assert stored is not None
        set_status(session, stored.ticket, TicketStatus.RESOLVED, None)
        session.commit()
        mails = _conversation(tag, f"m0.{tag}@example.com")
        with stream.capture() as committed:
            if by_batch:
                results = _batch(session, channel, mails)
            else:
                results = [process_mail(session, raw, channel) for raw in mails]
                session.commit()
        outcomes[tag] = (
            [(r.created, r.duplicate, r.quarantined is not None) for r in results],
            _snapshot(session, channel, tag),
            # The stream tells the same story in the same order (a consumer never meets a
            # message before its ticket).
            [(e.name, e.subject_type, sorted(e.data.get("changes", {}))) for e in committed.events],
        )
    assert outcomes["all"] == outcomes["one"]
    flags, shown, told = outcomes["all"]
    names = [name for name, _subject, _changes in told]
    # Rahim is known: his new ticket, then its message; a new sender comes first.
    assert names[:2] == ["ticket.created", "message.created"]
    assert all(names[i + 1] in ("ticket.created", "message.created")
               for i, name in enumerate(names) if name == "customer.created")  # fmt: skip
    assert flags == [
        (True, False, False),
        (False, False, False),
        (True, False, False),
        (False, True, False),
        (False, False, False),
        (True, False, False),
        (False, False, False),
        (False, False, False),
    ]
    # A user's view: the reopened ticket, the bill ticket with its reply and Karim's message,
    # Lina on Karim's ticket as a Cc (one customer record however often she writes).
    acks = int(acknowledge)
    assert [(t["subject"], t["message_count"]) for t in shown] == [
        ("Earlier", 2 + acks),
        ("বিল ভুল এসেছে", 3 + acks),
        ("Password reset", 2 + acks),
        ("[#999999] Old case", 1 + acks),
    ]
    assert shown[0]["status"] == TicketStatus.OPEN
    assert shown[2]["participants"] == ["lina.TAG@example.com"]
    assert (
        session.scalar(
            select(func.count()).select_from(Customer).where(Customer.email.like("lina.%"))
        )
        == 2  # one per channel's copy of the mails
    )


def test_ticket_numbers_stay_unique_and_consecutive_across_concurrent_batches(
    app: Flask, make_channel: Callable[..., Channel]
) -> None:
    import threading

    from helpdesk.extensions import db

    channels = [make_channel(f"Desk {i}", address=f"desk{i}@helpdesk.test").id for i in range(3)]
    start = threading.Barrier(len(channels))
    failures: list[BaseException] = []

    def run_batch(channel_id: int) -> None:
        raws = [
            make_mail(
                f"c{n}.{channel_id}@example.com", f"Case {n}", message_id=f"{n}.{channel_id}@x"
            )
            for n in range(25)
        ]
        try:
            with app.app_context():
                settings = ingest_settings(channel_id)
                mails = [Mail(uid, raw) for uid, raw in enumerate(raws, start=1)]
                prepared = [prepare_safely(m.raw, settings) for m in mails]
                start.wait(30)
                with db.transaction(app) as tx:
                    results = process_batch(tx, mails, prepared, tx.get(Channel, channel_id))
                    assert all(r.created for r in results)
        except BaseException as exc:  # reported below, from the test's thread
            failures.append(exc)

    def ingest_settings(channel_id: int) -> ingest.PrepareSettings:
        with db.transaction(app) as tx:
            return ingest.prepare_settings(tx.get(Channel, channel_id))

    threads = [threading.Thread(target=run_batch, args=(cid,)) for cid in channels]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    with app.app_context(), db.transaction(app) as tx:
        rows = tx.execute(select(Ticket.channel_id, Ticket.number).order_by(Ticket.number)).all()
    numbers = [number for _c, number in rows]
    assert numbers == list(range(numbers[0], numbers[0] + 75))  # unique, no gaps
    for channel_id in channels:  # each batch took one block: its tickets read #n, #n+1, ...
        own = [number for c, number in rows if c == channel_id]
        assert own == list(range(own[0], own[0] + 25))


def test_parser_processes_write_files_where_the_attachment_store_reads_them(
    app_with_ctx: Flask, channel: Channel
) -> None:
    import hashlib

    from channels.email import prepare
    from helpdesk.services.attachments import path_for

    raw = make_mail(attachments=[("চালান.pdf", "application/pdf", b"%PDF-1.4 prestored")])
    settings = ingest.prepare_settings(channel)
    assert settings.store_dir is not None
    prepared = prepare._prepare_in_process(raw, settings)  # what a parser process runs
    assert isinstance(prepared, InboundMessage)
    for blob in (raw, b"%PDF-1.4 prestored"):
        assert path_for(hashlib.sha256(blob).hexdigest()).read_bytes() == blob


def test_a_mail_the_database_refuses_midway_is_quarantined_and_the_rest_stored(
    app_with_ctx: Flask, session: Session, channel: Channel, events: EventRecorder
) -> None:
    """A failure while the batch is being written (not while it is planned): PostgreSQL
    refuses a sender name longer than the column, SQLite stores it. Either way nothing is
    lost, the other mails of the batch are stored, the reply still threads, and agents hear
    only of what was committed."""
    raws = [
        make_mail(subject="First", message_id="a@example.com"),
        make_mail(f"{'N' * 300} <long@example.com>", "Long name", message_id="b@example.com"),
        make_mail(subject="Re: First", message_id="c@example.com", in_reply_to="a@example.com"),
        make_mail(sender="karim@example.com", subject="Third", message_id="d@example.com"),
    ]
    results = _batch(session, channel, raws)

    refused = results[1].quarantined is not None
    assert [r.quarantined is not None for r in results] == [False, refused, False, False]
    tickets = {t.subject: t for t in session.scalars(select(Ticket))}
    assert set(tickets) == {"First", "Third"} | (set() if refused else {"Long name"})
    assert tickets["First"].message_count == 2
    stored = set(session.scalars(select(Message.message_id)))
    assert stored == {"a@example.com", "c@example.com", "d@example.com"} | (
        set() if refused else {"b@example.com"}
    )
    created = sorted(e.payload["subject"] for e in events.events if e.name == "ticket.created")
    assert created == sorted(tickets)


def test_a_sender_with_a_very_long_display_name_gets_a_ticket_not_quarantine(
    app_with_ctx: Flask, session: Session, channel: Channel
) -> None:
    """PostgreSQL refuses a customer name over the column's 200 characters: the name is
    clipped, the mail is stored (both the batch path and a returning sender's fill-in)."""
    long_name = "রহিম " * 120  # 600 characters, Bengali
    first = make_mail(sender=f'"{long_name}" <long@example.com>', subject="One")
    results = _batch(session, channel, [first])

    assert _count(session, QuarantinedMail) == 0
    message = results[0].message
    assert message is not None
    name = message.ticket.customer.name
    assert len(name) <= 200
    assert name.startswith("রহিম রহিম")


@pytest.mark.parametrize(
    "first_headers, later_sender",
    [
        # Cc'd in one mail, then writes their own: the backlog that hung the default server.
        ({"Cc": "Nadia Khan <nadia@example.org>"}, "Nadia Khan <nadia@example.org>"),
        # The same address in another case (Outlook and phones capitalise).
        ({"Cc": "nadia@example.org"}, "Nadia <Nadia@EXAMPLE.org>"),
        # Cc'd twice in one mail (once in another case), then writes.
        ({"Cc": "nadia@example.org, NADIA@example.org"}, "nadia@example.org"),
    ],
)
def test_someone_cc_d_then_writing_in_the_same_batch_is_one_customer_and_no_redo(
    app_with_ctx: Flask,
    session: Session,
    channel: Channel,
    caplog: pytest.LogCaptureFixture,
    first_headers: dict[str, str],
    later_sender: str,
) -> None:
    raws = [
        make_mail(sender="Omar <omar@example.com>", subject="Invoice", headers=first_headers),
        make_mail(sender="karim@example.com", subject="Unrelated"),
        make_mail(sender=later_sender, subject="My own question"),
        # A web form: From a no-reply address, the customer in Reply-To.
        make_mail(
            sender="Shop form <no-reply@shop.example>",
            subject="Contact form",
            headers={"Reply-To": "nadia@example.org"},
        ),
    ]
    with caplog.at_level(logging.INFO, logger="helpdesk.mail"):
        results = _batch(session, channel, raws)

    assert "one by one" not in caplog.text  # the fast path held: no failed batch
    assert [r.created for r in results] == [True, True, True, True]
    assert all(r.quarantined is None for r in results)
    nadia = session.scalars(
        select(Customer).where(func.lower(Customer.email) == "nadia@example.org")
    ).all()
    assert len(nadia) == 1  # one person, one record
    first, _other, own, _form = (r.message for r in results)
    assert own is not None and own.ticket.customer_id == nadia[0].id
    assert first is not None and nadia[0] in first.ticket.participants


def _cc_day(tag: str) -> list[bytes]:
    """People Cc'd across a batch (issue 13, item 25): Cc'd in one mail then writing, Cc'd in
    two mails (another case, another display name), Cc'd again on a ticket they already take
    part in, a sender Cc'ing themselves, a Cc naming the ticket's own customer, a web form
    with the customer in Reply-To. ``tag`` keeps two channels' copies apart."""

    def who(name: str) -> str:
        return f"{name}.{tag}@example.com"

    def mid(name: str) -> str:
        return f"{name}.{tag}@example.com"

    omar, nadia, karim, rina = who("omar"), who("nadia"), who("karim"), who("rina")
    return [
        make_mail(
            f"Omar <{omar}>",
            "Invoice",
            message_id=mid("i1"),
            headers={"Cc": f"Nadia Khan <{nadia}>, {karim}"},
        ),
        make_mail(f"Karim Ahmed <{karim.upper()}>", "My own question", message_id=mid("k1")),
        make_mail(
            omar,
            "Re: Invoice",
            message_id=mid("i2"),
            in_reply_to=mid("i1"),
            headers={"Cc": f"{nadia.upper()}, K. Ahmed <{karim}>, {omar}"},
        ),
        make_mail(
            f"Rina <{rina}>",
            "Other matter",
            message_id=mid("r1"),
            headers={"Cc": f"N <{nadia.title()}>, {omar}, {rina}"},
        ),
        make_mail(f"N. Khan <{nadia}>", "Re: Invoice", message_id=mid("n1"), in_reply_to=mid("i1")),
        make_mail(
            f"Shop form <{who('no-reply')}>",
            "Contact form",
            message_id=mid("f1"),
            headers={"Reply-To": nadia, "Cc": karim},
        ),
    ]


def test_people_cc_d_across_a_batch_are_one_record_each_with_no_redo_and_as_one_by_one(
    app_with_ctx: Flask,
    session: Session,
    make_channel: Callable[..., Channel],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from channels.email.ingest import process_mail

    outcomes = {}
    for tag, by_batch in (("one", False), ("all", True)):
        channel = make_channel(f"Support {tag}", address=f"support-{tag}@helpdesk.test")
        with stream.capture() as committed, caplog.at_level(logging.INFO, logger="helpdesk.mail"):
            if by_batch:
                results = _batch(session, channel, _cc_day(tag))
            else:
                results = [process_mail(session, raw, channel) for raw in _cc_day(tag)]
                session.commit()
        assert "one by one" not in caplog.text  # the fast path held
        outcomes[tag] = (
            [(r.created, r.duplicate, r.quarantined is not None) for r in results],
            _snapshot(session, channel, tag),
            [(e.name, e.subject_type) for e in committed.events],
        )
    assert outcomes["all"] == outcomes["one"]
    _flags, shown, _told = outcomes["all"]
    participants = {t["subject"]: t["participants"] for t in shown}
    assert participants == {
        "Invoice": ["karim.TAG@example.com", "nadia.TAG@example.com"],
        "My own question": [],
        "Other matter": ["nadia.TAG@example.com", "omar.TAG@example.com"],
        "Contact form": ["karim.TAG@example.com"],
    }
    for name in ("omar", "nadia", "karim", "rina"):  # one record per person and channel copy
        count = session.scalar(
            select(func.count()).select_from(Customer).where(Customer.email.like(f"{name}.%"))
        )
        assert count == 2, name


def test_cc_d_mail_is_stored_in_bulk_not_one_mail_at_a_time(
    app_with_ctx: Flask, session: Session, channel: Channel
) -> None:
    """A quarter of real support mail has a Cc: the batch must not fall back to the
    one-mail-at-a-time path for it (each such mail cost a dozen statements and split the
    batch's bulk writes; the mixed corpus ingested at a third of the speed)."""
    from sqlalchemy import event

    from helpdesk.extensions import db

    raws = [
        make_mail(
            f"Customer {i} <c{i}@example.com>",
            f"Case {i}",
            message_id=f"case{i}@example.com",
            headers={"Cc": f"colleague{i % 7}@example.com, C{i}@EXAMPLE.com"} if i % 3 == 0 else {},
        )
        for i in range(90)
    ]
    settings = ingest.prepare_settings(channel)
    mails = [Mail(uid, raw) for uid, raw in enumerate(raws, start=1)]
    prepared = [prepare_safely(m.raw, settings) for m in mails]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = db.engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        results = process_batch(session, mails, prepared, channel, folder="INBOX")
        session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(r.created for r in results)
    assert _count(session, Customer) == 90 + 7
    # A few statements per table for the whole batch, not several per mail.
    assert len(statements) <= 40, f"{len(statements)} statements for 90 mails"  # was 725


def test_a_mail_from_no_address_is_quarantined_alone_and_the_batch_stays_fast(
    app_with_ctx: Flask, session: Session, channel: Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """``From: Nobody`` (spam, some system mail) has no address: that one mail goes to
    quarantine; the other 199 of its batch are not redone one mail at a time for it."""
    raws = [
        make_mail(f"c{i}@example.com", f"Case {i}", message_id=f"nb{i}@example.com")
        for i in range(6)
    ]
    raws[2] = make_mail("Nobody", "Win a prize", message_id="spam@example.com")
    raws[4] = make_mail("undisclosed-recipients:;", "Hello", message_id="undisclosed@example.com")
    with caplog.at_level(logging.INFO, logger="helpdesk.mail"):
        results = _batch(session, channel, raws)

    assert "one by one" not in caplog.text
    assert [r.quarantined is not None for r in results] == [False, False, True, False, True, False]
    items = list(session.scalars(select(QuarantinedMail).order_by(QuarantinedMail.uid)))
    assert [(i.uid, i.error.split(":")[0], i.reason) for i in items] == [
        (3, "ServiceError", "error"),
        (5, "ServiceError", "error"),
    ]
    assert _count(session, Ticket) == 4


def test_a_mail_with_nul_characters_is_a_ticket_and_the_batch_stays_fast(
    app_with_ctx: Flask, session: Session, channel: Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """NUL characters (broken clients, spam): PostgreSQL refuses them in text and JSON, so the
    whole batch failed there and the mail itself ended in quarantine, not in the queue."""
    nul = (
        b"From: Rina \x00Roy <rina@example.com>\r\nTo: support@helpdesk.test\r\n"
        b"Return-Path: <rina\x00@example.com>\r\n"
        b"Subject: Order\x00 1234\r\nMessage-ID: <nul@example.com>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nWhere is\x00 my order?\r\n"
    )
    raws = [make_mail(subject="Before", message_id="before@example.com"), nul]
    with caplog.at_level(logging.INFO, logger="helpdesk.mail"):
        results = _batch(session, channel, raws)

    assert "one by one" not in caplog.text
    assert [r.quarantined is not None for r in results] == [False, False]
    message = results[1].message
    assert message is not None
    assert message.ticket.subject == "Order 1234" and "Where is my order?" in message.body_text


def test_over_long_subjects_ids_and_addresses_do_not_fail_the_batch(
    app_with_ctx: Flask, session: Session, channel: Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """Values longer than their columns (PostgreSQL refuses them): a 700-character subject,
    a 1,200-character Message-ID, a 400-character Cc'd address and sender. The first two are
    stored clipped, the Cc is skipped, the sender's mail is quarantined alone; the batch is
    never redone one mail at a time."""
    long_cc = "x" * 390 + "@example.com"
    raws = [
        make_mail(subject="অর্ডার " * 100, message_id="long-subject@example.com"),
        make_mail(sender="karim@example.com", message_id="i" * 1200 + "@example.com"),
        make_mail(sender="lina@example.com", subject="Cc", headers={"Cc": long_cc}),
        make_mail(sender="y" * 390 + "@example.com", subject="Long sender"),
        make_mail(sender="omar@example.com", subject="After"),
    ]
    with caplog.at_level(logging.INFO, logger="helpdesk.mail"):
        results = _batch(session, channel, raws)

    assert "one by one" not in caplog.text
    assert [r.quarantined is not None for r in results] == [False, False, False, True, False]
    first = results[0].message
    assert first is not None and first.subject is not None and len(first.subject) == 500
    third = results[2].message
    assert third is not None and third.ticket.participants == []
