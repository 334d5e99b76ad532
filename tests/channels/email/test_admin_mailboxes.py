"""Admins configure mailboxes in the browser: add, edit, test the connection against the real
Dovecot and SMTP server, disable, delete; passwords are write-only and encrypted; the running
IDLE watchers follow every change without a worker restart."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email import accounts as channel_services
from channels.email.imap import MailWatchers
from helpdesk import secrets
from helpdesk.extensions import db
from helpdesk.models import Agent, Channel, ChannelStatus, Ticket
from tests.channels.email.conftest import SUPPORT, Mailbox, MakeChannel, form_for, make_mail
from tests.channels.email.test_idle import Batches
from tests.conftest import PASSWORD, csrf_token, login
from tests.servers import DovecotServer, SmtpSink, free_port


@pytest.fixture
def app_config() -> dict[str, Any]:
    # A long refresh: the watchers must follow admin changes at once, not on the next round.
    return {
        "MAIL_CHANNEL_REFRESH_SECONDS": 300,
        "MAIL_IDLE_SLICE_SECONDS": 3,
        "MAIL_RECONNECT_BASE_SECONDS": 0.1,
        "MAIL_RECONNECT_MAX_SECONDS": 0.5,
    }


class Admin:
    """A browser signed in as an admin, posting the mailbox form with its CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = csrf_token(client, "/admin/channels")
        self._end_read()

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        self._end_read()
        return response

    def post(self, path: str, data: dict[str, Any]) -> Any:
        response = self.client.post(path, data={"csrf_token": self.token, **data})
        self._end_read()
        return response

    @staticmethod
    def _end_read() -> None:
        # The test client shares the test's app context and so its session: a page left a
        # read transaction open there, which on SQLite could not later become a write while
        # a worker thread holds the write lock (SQLite refuses that upgrade at once).
        db.session.rollback()


@pytest.fixture
def browser(app: Flask, admin: Agent) -> Admin:
    client = app.test_client()
    assert login(client, admin.email, PASSWORD).status_code == 302
    return Admin(client)


def fresh_channel(session: Session, name: str = "Support") -> Channel | None:
    session.rollback()  # a new read (and no transaction left open for the worker threads)
    channel = session.scalar(select(Channel).where(Channel.name == name))
    session.rollback()
    return channel


def test_admin_adds_a_mailbox_and_the_password_is_stored_encrypted_never_shown(
    browser: Admin, session: Session, mailbox: Mailbox, smtp_sink: SmtpSink
) -> None:
    data = form_for(
        mailbox,
        name="সহায়তা Support",
        imap_move_to="Processed",
        acknowledge="y",
        smtp_host=smtp_sink.host,
        smtp_port=str(smtp_sink.port),
        smtp_user="mailer",
        smtp_password="smtp-secret-1",
    )
    response = browser.post("/admin/mailboxes/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    page = browser.get("/admin/channels").get_data(as_text=True)
    assert "Mailbox সহায়তা Support added." in page and SUPPORT in page

    channel = fresh_channel(session, "সহায়তা Support")
    assert channel is not None and channel.active
    imap = channel.settings["imap"]
    assert imap["move_to"] == "Processed" and channel.settings["acknowledge"] is True
    # Encrypted the same way as the CLI path, readable with the instance secret only.
    assert secrets.is_encrypted(imap["password"])
    assert mailbox.password not in str(channel.settings)
    assert channel_services.secret(channel, "imap", "password") == mailbox.password
    assert channel_services.secret(channel, "smtp", "password") == "smtp-secret-1"

    edit = browser.get(f"/admin/mailboxes/{channel.id}")
    html = edit.get_data(as_text=True)
    assert edit.status_code == 200 and edit.headers["Cache-Control"] == "no-store"
    assert mailbox.password not in html and "smtp-secret-1" not in html
    assert "A value is stored and never shown" in html
    assert 'value="Processed"' in html


def test_blank_password_on_edit_keeps_the_stored_one(
    browser: Admin, session: Session, mailbox: Mailbox, make_channel: MakeChannel
) -> None:
    channel = make_channel()
    session.rollback()
    before = channel.settings["imap"]["password"]
    response = browser.post(
        f"/admin/mailboxes/{channel.id}",
        form_for(mailbox, imap_password="", imap_folder="Support", acknowledge="y"),
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    after = fresh_channel(session)
    assert after is not None
    assert after.settings["imap"]["password"] == before
    assert after.settings["imap"]["folder"] == "Support" and after.settings["acknowledge"]


def test_validation_errors_keep_what_was_typed(
    browser: Admin, session: Session, mailbox: Mailbox, make_channel: MakeChannel
) -> None:
    make_channel(name="Billing")
    typed = form_for(
        mailbox, name="Billing", imap_host="imap.বাংলা.test", imap_password="typed-secret"
    )
    response = browser.post("/admin/mailboxes/new", typed)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "A channel named Billing already exists." in page
    assert 'value="imap.বাংলা.test"' in page and 'value="typed-secret"' in page
    assert response.headers["Cache-Control"] == "no-store"

    bad_port = browser.post("/admin/mailboxes/new", form_for(mailbox, imap_port="99999"))
    assert bad_port.status_code == 400
    assert "A port is between 1 and 65535." in bad_port.get_data(as_text=True)

    no_token = browser.post(
        "/admin/mailboxes/new",
        form_for(mailbox, name="Gmail", imap_auth="oauth2", imap_password=""),
    )
    assert no_token.status_code == 400
    assert "OAuth2 sign-in needs a token endpoint" in no_token.get_data(as_text=True)
    assert fresh_channel(session, "Gmail") is None


def test_the_pages_are_for_admins_only_and_need_csrf(
    app: Flask, agent_client: Any, browser: Admin, make_channel: MakeChannel, mailbox: Mailbox
) -> None:
    channel = make_channel()
    for url in ("/admin/mailboxes/new", f"/admin/mailboxes/{channel.id}"):
        assert agent_client.get(url).status_code == 404
    assert agent_client.post(f"/admin/mailboxes/{channel.id}/delete").status_code == 404
    assert browser.get("/admin/mailboxes/99999").status_code == 404
    forged = browser.client.post("/admin/mailboxes/new", data=form_for(mailbox, name="X"))
    assert forged.status_code == 400


def test_test_connection_tells_what_is_wrong_and_saves_nothing(
    browser: Admin, session: Session, mailbox: Mailbox, smtp_sink: SmtpSink
) -> None:
    smtp = {"smtp_host": smtp_sink.host, "smtp_port": str(smtp_sink.port)}
    good = browser.post("/admin/mailboxes/new", form_for(mailbox, action="test", **smtp))
    page = good.get_data(as_text=True)
    assert good.status_code == 200
    assert "Signed in; the folder INBOX holds 0 messages." in page
    assert "Connected (no sign-in configured)." in page
    assert "Nothing was saved." in page
    # What was typed stays in the form, so "Save" right after the test works.
    assert f'value="{mailbox.password}"' in page

    wrong = browser.post(
        "/admin/mailboxes/new", form_for(mailbox, action="test", imap_password="x")
    )
    assert "Sign-in failed: check the user name and password" in wrong.get_data(as_text=True)

    closed = free_port()
    down = browser.post(
        "/admin/mailboxes/new", form_for(mailbox, action="test", imap_port=str(closed))
    )
    assert f"Cannot connect to 127.0.0.1 port {closed}" in down.get_data(as_text=True)

    tls = browser.post(
        "/admin/mailboxes/new", form_for(mailbox, action="test", imap_security="ssl")
    )
    assert "TLS error" in tls.get_data(as_text=True)

    folder = browser.post(
        "/admin/mailboxes/new", form_for(mailbox, action="test", imap_folder="Nowhere")
    )
    assert "the folder Nowhere does not exist" in folder.get_data(as_text=True)
    assert fresh_channel(session) is None


def test_test_connection_on_an_edit_uses_the_stored_password(
    browser: Admin, mailbox: Mailbox, make_channel: MakeChannel, session: Session
) -> None:
    channel = make_channel()
    session.rollback()
    response = browser.post(
        f"/admin/mailboxes/{channel.id}", form_for(mailbox, action="test", imap_password="")
    )
    assert "Signed in; the folder INBOX holds" in response.get_data(as_text=True)


def test_disable_enable_and_delete(
    browser: Admin, session: Session, make_channel: MakeChannel, make_ticket: Any
) -> None:
    channel = make_channel()
    cid = channel.id
    ticket_id = make_ticket(channel_id=cid).ticket.id
    session.rollback()
    assert browser.post(f"/admin/mailboxes/{cid}/active", {"active": "0"}).status_code == 302
    off = fresh_channel(session)
    assert off is not None and not off.active and off.status == ChannelStatus.DISABLED
    assert "Enable" in browser.get("/admin/channels").get_data(as_text=True)
    browser.post(f"/admin/mailboxes/{cid}/active", {"active": "1"})
    on = fresh_channel(session)
    assert on is not None and on.active and on.status == ChannelStatus.UNKNOWN

    confirm = browser.get(f"/admin/mailboxes/{cid}/delete").get_data(as_text=True)
    assert "Delete mailbox Support?" in confirm
    assert browser.post(f"/admin/mailboxes/{cid}/delete", {}).status_code == 302
    assert fresh_channel(session) is None
    assert "Mailbox Support deleted." in browser.get("/admin/channels").get_data(as_text=True)
    kept = session.get(Ticket, ticket_id)  # the tickets it brought in stay
    assert kept is not None and kept.channel_id is None
    session.rollback()


# --- the running worker follows the admin's changes -------------------------------------------


@pytest.fixture
def batches() -> Batches:
    return Batches()


@pytest.fixture
def watchers(app: Flask, batches: Batches) -> Iterator[MailWatchers]:
    stop = threading.Event()
    running = MailWatchers(app, stop, on_batch=batches)
    running.start()
    yield running
    stop.set()
    running.join(timeout=30)
    assert not running.is_alive()


def wait_sync(watchers: MailWatchers, after: int, timeout: float = 10) -> None:
    with watchers.synced:
        assert watchers.synced.wait_for(lambda: watchers.syncs > after, timeout)


def ticket_with(session: Session, subject: str) -> Ticket | None:
    session.rollback()
    ticket = session.scalar(select(Ticket).where(Ticket.subject == subject))
    session.rollback()
    return ticket


def test_an_edited_mailbox_is_restarted_and_a_disabled_one_stopped_without_a_worker_restart(
    browser: Admin,
    session: Session,
    dovecot: DovecotServer,
    mailbox: Mailbox,
    make_channel: MakeChannel,
    watchers: MailWatchers,
    batches: Batches,
) -> None:
    channel = make_channel()
    cid = channel.id
    session.rollback()
    with watchers.synced:
        assert watchers.synced.wait_for(lambda: cid in watchers.watchers, 10)
    first, _stop, _fp = watchers.watchers[cid]
    assert first.connected.wait(10)
    mailbox.append(make_mail(subject="Before the move"))
    batches.wait_fetched(1)
    assert ticket_with(session, "Before the move") is not None

    # The admin points the channel at another mailbox: the old watcher stops, a new one reads
    # the new mailbox, long before the 300 s refresh.
    other = Mailbox(dovecot, "moved-" + mailbox.user, "moved-password")
    dovecot.add_user(other.user, other.password)
    syncs = watchers.syncs
    response = browser.post(
        f"/admin/mailboxes/{cid}",
        form_for(other, imap_user=other.user, imap_password=other.password),
    )
    assert response.status_code == 302
    wait_sync(watchers, syncs)
    first.join(timeout=10)
    assert not first.is_alive()
    second, _stop, _fp = watchers.watchers[cid]
    assert second is not first and second.connected.wait(10)
    other.append(make_mail(subject="After the move"))
    batches.wait_fetched(2)
    moved = ticket_with(session, "After the move")
    assert moved is not None and moved.channel_id == cid

    syncs = watchers.syncs
    browser.post(f"/admin/mailboxes/{cid}/active", {"active": "0"})
    wait_sync(watchers, syncs)
    assert cid not in watchers.watchers
    second.join(timeout=10)
    assert not second.is_alive()
    other.append(make_mail(subject="While disabled"))
    # Disabled means not fetched (no watcher thread is left): the mail waits, unread.
    flags = other.flags()
    assert b"\\Seen" not in flags[max(flags)]
    assert ticket_with(session, "While disabled") is None and batches.fetched() == 2


def test_passwords_never_reach_the_logs(
    browser: Admin,
    session: Session,
    mailbox: Mailbox,
    smtp_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp = {"smtp_host": smtp_sink.host, "smtp_port": str(smtp_sink.port), "smtp_user": "u"}
    browser.post(
        "/admin/mailboxes/new",
        form_for(mailbox, action="test", smtp_password="smtp-pw-never-logged", **smtp),
    )
    browser.post("/admin/mailboxes/new", form_for(mailbox, action="test", imap_password="pw-wrong"))
    browser.post("/admin/mailboxes/new", form_for(mailbox, name="Dup", imap_port="0"))
    browser.post("/admin/mailboxes/new", form_for(mailbox))
    assert fresh_channel(session) is not None
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    for secret in (mailbox.password, "smtp-pw-never-logged", "pw-wrong"):
        assert secret not in text
    assert any(r.name.startswith("imapclient") for r in caplog.records)  # logging was on
