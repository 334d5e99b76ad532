"""``helpdesk serve``'s worker process, driven from this process as the web process drives it:
a real ``helpdesk worker --services-only`` child on the other end of the link."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.accounts import ServerConfig, add_email_channel
from helpdesk.db import read_only_transactions
from helpdesk.models import Direction, Message
from helpdesk.worker_link import ORPHAN_GRACE_SECONDS, Link, WorkerProcess
from tests.channels.email.conftest import Mailbox, MakeChannel, make_mail
from tests.channels.email.corpus import make_corpus
from tests.servers import DovecotServer


def _spawn(fn: object) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def _stored(session: Session) -> list[str]:
    with read_only_transactions():
        ids = session.scalars(
            select(Message.message_id).where(Message.direction == Direction.INBOUND)
        ).all()
        session.rollback()
    return [str(i) for i in ids]


def test_a_channel_added_in_the_web_process_is_watched_by_the_worker_process_at_once(
    app: Flask,
    session: Session,
    dovecot: DovecotServer,
    mailbox: Mailbox,
    make_channel: MakeChannel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker process re-reads the channel list every 10 minutes on its own: only the
    # link's message can make it notice a new channel within this test's wait.
    monkeypatch.setenv("HELPDESK_MAIL_CHANNEL_REFRESH_SECONDS", "600")
    make_channel("First")
    mailbox.append(make_mail(message_id="first@x"))
    child = WorkerProcess(app, spawn=_spawn, sleep=time.sleep)
    child.start()
    try:
        _wait_stored(session, "first@x")  # the child has read the channel list: it watches First
        user = f"second-{uuid.uuid4().hex[:6]}"
        dovecot.add_user(user, "pw")
        second = Mailbox(dovecot, user, "pw")
        second.append(make_mail(sender="karim@example.com", message_id="second@x"))
        imap = ServerConfig(host=dovecot.host, port=dovecot.port, user=user, password="pw")
        add_email_channel(session, "Second", address="sales@helpdesk.test", imap=imap)
        session.commit()  # in "the web process": its listener tells the child over the link
        _wait_stored(session, "second@x")
        assert child.starts == 1  # the same child all along
    finally:
        child.stop()
    assert child.proc is not None and child.proc.returncode is not None


def _wait_stored(session: Session, message_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while message_id not in _stored(session):
        assert time.monotonic() < deadline, f"{message_id} not stored in {timeout}s"
        time.sleep(0.2)


def test_a_worker_process_whose_web_process_is_gone_stops_even_mid_backlog(
    app: Flask, session: Session, mailbox: Mailbox, make_channel: MakeChannel
) -> None:
    mails, _facts = make_corpus(1500, seed=31)
    mailbox.append(*mails)
    make_channel()
    child = WorkerProcess(app, spawn=_spawn, sleep=time.sleep)
    child.start()
    assert child.proc is not None and child.link is not None
    deadline = time.monotonic() + 60
    while not _stored(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stored(session), "nothing stored in 60 s"
    child._stopping = True  # as if the web process were gone: no restart
    closed = time.monotonic()
    child.link.close()  # the end closed, as when the web process is killed with -9
    # It stops between batches, or is ended by force after the grace period; it does not go
    # on draining the backlog beside the worker a new web process starts.
    assert child.proc.wait(timeout=ORPHAN_GRACE_SECONDS + 10) == 0
    assert time.monotonic() - closed <= ORPHAN_GRACE_SECONDS + 5
    assert len(_stored(session)) < len(mails)


def test_link_frames_survive_partial_reads_and_end_at_eof() -> None:
    ours, theirs = socket.socketpair()
    sender, receiver = Link(ours), Link(theirs)
    big = {"kind": "socketio", "message": {"data": "রহিম " * 200_000}}

    def send_all() -> None:
        sender.send(big)
        sender.send({"kind": "kick"})
        sender.close()

    threading.Thread(target=send_all).start()
    assert list(receiver.receive()) == [big, {"kind": "kick"}]
    assert sender.send({"kind": "kick"}) is False  # closed: no exception, just "not sent"
