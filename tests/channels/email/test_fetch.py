"""Checkpointed IMAP fetching against a real Dovecot: tickets, \\Seen, no duplicates, backfill,
UIDVALIDITY resync, quarantine and replay, the attachment limit."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.email import services as mail_service
from channels.email.imap import fetch_once
from channels.email.models import MailCheckpoint, QuarantinedMail
from helpdesk.models import Channel, ChannelStatus, Message, Ticket
from tests.channels.email.conftest import Mailbox, MakeChannel, make_mail


def count(session: Session, model: type) -> int:
    session.expire_all()
    n = int(session.scalar(select(func.count()).select_from(model)) or 0)
    session.rollback()  # end the read: on SQLite every transaction takes the write lock
    return n


def test_new_mail_becomes_tickets_and_is_flagged_seen(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    fetch_once(app, channel.id)  # first run: the mailbox's existing (empty) state is the start
    mailbox.append(
        make_mail(subject="অর্ডার আসেনি", body="আমার অর্ডার এখনও আসেনি।", message_id="a1@example.com"),
        make_mail(sender="Jane <jane@example.com>", subject="Invoice", message_id="a2@example.com"),
    )
    result = fetch_once(app, channel.id)

    assert (result.fetched, result.created) == (2, 2)
    subjects = set(session.scalars(select(Ticket.subject)))
    assert subjects == {"অর্ডার আসেনি", "Invoice"}
    bn = session.scalar(select(Ticket).where(Ticket.subject == "অর্ডার আসেনি"))
    assert bn is not None and bn.channel_id == channel.id
    # Bengali text makes the customer's language Bengali (their acknowledgement, our replies).
    assert bn.customer.language == "bn"
    assert all(b"\\Seen" in flags for flags in mailbox.flags().values())
    session.expire_all()
    row = session.get(Channel, channel.id)
    assert row is not None and row.status == ChannelStatus.OK and row.last_success_at
    checkpoint = session.scalar(select(MailCheckpoint))
    assert checkpoint is not None and checkpoint.last_uid == 2


def test_fetching_again_and_the_same_mail_twice_write_nothing_new(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    fetch_once(app, channel.id)
    mail = make_mail(message_id="same@example.com")
    mailbox.append(mail, mail)  # delivered twice (a retrying MTA)
    result = fetch_once(app, channel.id)
    assert (result.fetched, result.created, result.duplicates) == (2, 1, 1)
    assert fetch_once(app, channel.id).fetched == 0
    assert count(session, Message) == 1


def test_since_backfills_a_window_without_duplicates(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    # Mail that was already read in another client before the channel existed.
    mailbox.append(
        make_mail(message_id="old1@example.com"), make_mail(message_id="old2@example.com")
    )
    client = mailbox.client()
    client.select_folder("INBOX")
    client.add_flags(client.search(), [b"\\Seen"])
    client.logout()
    assert fetch_once(app, channel.id).fetched == 0  # first run takes unseen mail only
    mailbox.append(make_mail(message_id="new@example.com"))
    assert fetch_once(app, channel.id).created == 1

    backfill = fetch_once(app, channel.id, since=date(2000, 1, 1))
    assert (backfill.fetched, backfill.created, backfill.duplicates) == (3, 2, 1)
    assert fetch_once(app, channel.id, since=date(2000, 1, 1)).created == 0
    assert count(session, Message) == 3


def test_uidvalidity_change_resyncs_by_message_id(
    app: Flask, session: Session, mailbox: Mailbox, make_channel: MakeChannel
) -> None:
    client = mailbox.client()
    client.create_folder("Support")
    client.logout()
    channel = make_channel(folder="Support")
    fetch_once(app, channel.id)
    first = make_mail(message_id="kept@example.com")
    mailbox.append(first, folder="Support")
    assert fetch_once(app, channel.id).created == 1
    old = session.scalar(select(MailCheckpoint.uidvalidity))
    session.commit()  # end the read: on SQLite every transaction takes the write lock

    # The folder is recreated (a server migration): same mail, new UIDVALIDITY, UIDs from 1.
    client = mailbox.client()
    client.delete_folder("Support")
    client.create_folder("Support")
    client.logout()
    mailbox.append(first, make_mail(message_id="new@example.com"), folder="Support")
    result = fetch_once(app, channel.id)

    assert (result.created, result.duplicates) == (1, 1)
    session.expire_all()
    checkpoint = session.scalar(select(MailCheckpoint))
    assert checkpoint is not None and checkpoint.uidvalidity != old and checkpoint.last_uid == 2
    assert count(session, Message) == 2


def test_move_to_folder_after_commit(
    app: Flask, session: Session, mailbox: Mailbox, make_channel: MakeChannel
) -> None:
    client = mailbox.client()
    client.create_folder("Done")
    client.logout()
    channel = make_channel(move_to="Done")
    fetch_once(app, channel.id)
    mailbox.append(make_mail())
    assert fetch_once(app, channel.id).created == 1
    assert mailbox.flags("INBOX") == {}
    assert len(mailbox.flags("Done")) == 1


def test_bad_mail_is_quarantined_and_replayable(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    fetch_once(app, channel.id)
    not_a_mail = b"this is not a mail at all\r\njust some bytes\r\n"
    no_sender = make_mail(sender="not an address", message_id="nosender@example.com")
    mailbox.append(not_a_mail, no_sender, make_mail(message_id="fine@example.com"))
    result = fetch_once(app, channel.id)

    # The good mail still becomes a ticket; the others are kept with their errors.
    assert (result.fetched, result.created, result.quarantined) == (3, 1, 2)
    items = mail_service.quarantined(session)
    assert len(items) == 2
    assert {mail_service.quarantined_raw(i) for i in items} >= {not_a_mail}
    assert any("no mail header fields" in i.error for i in items)
    assert all(i.channel_id == channel.id and i.uid for i in items)

    # Replay: still not a mail -> a new quarantine entry, the original one stays.
    broken = next(i for i in items if mail_service.quarantined_raw(i) == not_a_mail)
    again = mail_service.replay(session, broken)
    session.commit()
    assert isinstance(again, QuarantinedMail) and broken.replayed_at is None
    assert count(session, QuarantinedMail) == 3


def test_replay_after_the_cause_is_fixed(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    raw = make_mail(message_id="later@example.com")
    item = mail_service.quarantine(
        session, raw, "OperationalError: disk full", channel_id=channel.id
    )
    session.commit()
    message = mail_service.replay(session, item)
    session.commit()
    assert isinstance(message, Message) and message.ticket.channel_id == channel.id
    assert item.replayed_at is not None and item.replayed_message_id == message.id
    with pytest.raises(Exception, match="already replayed"):
        mail_service.replay(session, item)


def test_attachment_over_the_limit_is_noted_and_every_type_is_kept(
    app: Flask, session: Session, mailbox: Mailbox, channel: Channel
) -> None:
    app.config["ATTACHMENT_MAX_BYTES"] = 1000
    fetch_once(app, channel.id)
    mailbox.append(
        make_mail(
            attachments=[
                ("server.log", "text/plain", b"ERROR C:\\new\\table\n" * 10),
                ("export.csv", "text/csv", b"a,b\n1,2\n"),
                ("বড়-ফাইল.pdf", "application/pdf", b"%PDF" + b"x" * 5000),
            ]
        )
    )
    fetch_once(app, channel.id)
    message = session.scalar(select(Message))
    assert message is not None
    assert sorted(a.filename for a in message.attachments) == ["export.csv", "server.log"]
    assert message.meta["attachments_over_limit"] == [
        {"filename": "বড়-ফাইল.pdf", "size": 5004, "content_type": "application/pdf"}
    ]
    assert message.raw_sha256  # the original, with the big file, is one click away
