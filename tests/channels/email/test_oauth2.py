"""OAuth2 (XOAUTH2) sign-in against real parts: a local OAuth2 provider (token endpoint and
introspection), a Dovecot whose oauth2 passdb asks that provider, and an SMTP server that
accepts only AUTH XOAUTH2 with the provider's tokens."""

from __future__ import annotations

import logging
import uuid
from email import message_from_bytes, policy
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email import accounts as channel_services
from channels.email import oauth2
from channels.email.accounts import OAuth2Config, ServerConfig
from channels.email.imap import fetch_once
from helpdesk.models import Agent, Channel, DeliveryStatus, Message, Ticket
from helpdesk.services import outbox, tickets
from tests.channels.email.conftest import SUPPORT, Mailbox, make_mail
from tests.channels.email.test_idle import in_worker
from tests.conftest import PASSWORD, csrf_token, login
from tests.servers import DovecotServer, OAuth2Provider, SmtpSink


@pytest.fixture(autouse=True)
def _fresh_tokens(oauth2_provider: OAuth2Provider) -> None:
    # Each test starts without cached access tokens and with the provider's defaults.
    oauth2.clear_cache()
    oauth2_provider.expires_in = 3600
    oauth2_provider.rotate = False


class Account:
    """One mailbox user on the OAuth2 Dovecot with a client registered at the provider."""

    def __init__(self, dovecot: DovecotServer, provider: OAuth2Provider) -> None:
        self.user = f"oauth-{uuid.uuid4().hex[:10]}"
        self.password = uuid.uuid4().hex  # only the test's own APPENDs use it
        dovecot.start()
        dovecot.add_user(self.user, self.password)
        self.mailbox = Mailbox(dovecot, self.user, self.password)
        self.client_id, self.client_secret, self.refresh_token = provider.register(self.user)
        self.provider = provider
        self.dovecot = dovecot

    def oauth2(self, **overrides: Any) -> OAuth2Config:
        values: dict[str, Any] = {
            "token_url": self.provider.token_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "scope": "https://mail.example/ offline_access",
        }
        values.update(overrides)
        return OAuth2Config(**values)

    def imap(self) -> ServerConfig:
        return ServerConfig(
            host=self.dovecot.host,
            port=self.dovecot.port,
            user=self.user,
            security="none",
            auth="oauth2",
        )


@pytest.fixture
def account(dovecot_oauth2: DovecotServer, oauth2_provider: OAuth2Provider) -> Account:
    return Account(dovecot_oauth2, oauth2_provider)


def add_channel(
    session: Session, account: Account, smtp: SmtpSink | None = None, **oauth2: Any
) -> Channel:
    smtp_config = None
    if smtp is not None:
        smtp_config = ServerConfig(
            host=smtp.host, port=smtp.port, user=account.user, security="none", auth="oauth2"
        )
    channel = channel_services.add_email_channel(
        session,
        "Gmail",
        address=SUPPORT,
        imap=account.imap(),
        smtp=smtp_config,
        oauth2=account.oauth2(**oauth2),
    )
    session.commit()
    return detached(session, channel)


def detached(session: Session, channel: Channel) -> Channel:
    """``channel`` freshly loaded and let go, so reading it opens no transaction.

    (On SQLite an open transaction of the test would hold the lock the worker needs.)
    """
    session.refresh(channel)
    session.expunge(channel)
    session.rollback()
    return channel


def fetch(app: Flask, channel: Channel) -> int:
    result = in_worker(fetch_once, app, channel.id)
    return int(result.fetched)


def test_imap_signs_in_with_an_access_token_from_the_refresh_token(
    app: Flask, session: Session, account: Account, oauth2_provider: OAuth2Provider
) -> None:
    channel = add_channel(session, account)
    stored = channel.settings["oauth2"]
    assert stored["client_id"] == account.client_id
    for name in ("client_secret", "refresh_token"):
        assert stored[name].startswith("fernet:") and account.refresh_token not in str(stored)
    account.mailbox.append(make_mail(subject="ওঅথ দিয়ে প্রবেশ", message_id="o1@example.com"))
    before = oauth2_provider.token_requests
    assert fetch(app, channel) == 1
    assert session.scalars(select(Ticket.subject)).one() == "ওঅথ দিয়ে প্রবেশ"
    session.rollback()
    # The access token is kept until shortly before it expires: no new request.
    account.mailbox.append(make_mail(subject="Second", message_id="o2@example.com"))
    assert fetch(app, channel) == 1
    assert oauth2_provider.token_requests == before + 1


def test_a_token_about_to_expire_is_refreshed_before_use(
    app: Flask, session: Session, account: Account, oauth2_provider: OAuth2Provider
) -> None:
    oauth2_provider.expires_in = 30  # inside the 60 s margin: never used as it is
    channel = add_channel(session, account)
    before = oauth2_provider.token_requests
    fetch(app, channel)
    fetch(app, channel)
    assert oauth2_provider.token_requests == before + 2


def test_a_rejected_token_is_refreshed_once_and_the_login_succeeds(
    app: Flask, session: Session, account: Account, oauth2_provider: OAuth2Provider
) -> None:
    channel = add_channel(session, account)
    fetch(app, channel)
    oauth2_provider.revoke_access_tokens()  # revoked early, still cached by us
    before = oauth2_provider.token_requests
    account.mailbox.append(make_mail(subject="After revocation"))
    assert fetch(app, channel) == 1
    assert oauth2_provider.token_requests == before + 1


def test_a_revoked_refresh_token_is_a_clear_error_on_the_channel(
    app: Flask, session: Session, account: Account
) -> None:
    channel = add_channel(session, account, refresh_token="revoked-or-mistyped")
    with pytest.raises(oauth2.OAuth2Error, match="invalid_grant") as raised:
        fetch(app, channel)
    assert raised.value.permanent
    fresh = session.get(Channel, channel.id)
    assert fresh is not None and fresh.status.value == "error"
    assert "invalid_grant" in (fresh.last_error or "")
    assert "revoked-or-mistyped" not in (fresh.last_error or "")
    session.rollback()


def test_a_rotated_refresh_token_is_kept(
    app: Flask, session: Session, account: Account, oauth2_provider: OAuth2Provider
) -> None:
    oauth2_provider.rotate = True
    channel = add_channel(session, account)
    fetch(app, channel)
    fresh = session.get(Channel, channel.id)
    assert fresh is not None
    fresh = detached(session, fresh)
    rotated = channel_services.secret(fresh, "oauth2", "refresh_token")
    assert rotated and rotated != account.refresh_token
    assert channel_services.watch_fingerprint(fresh) == channel_services.watch_fingerprint(channel)
    oauth2.clear_cache()  # a new process: the rotated token must be the one that works
    account.mailbox.append(make_mail(subject="With the rotated token"))
    assert fetch(app, fresh) == 1


def test_replies_leave_by_smtp_with_xoauth2(
    app: Flask,
    session: Session,
    account: Account,
    agent: Agent,
    smtp_oauth2_sink: SmtpSink,
    oauth2_provider: OAuth2Provider,
) -> None:
    channel = add_channel(session, account, smtp=smtp_oauth2_sink)
    account.mailbox.append(make_mail(subject="Need a reply", message_id="r1@example.com"))
    fetch(app, channel)
    ticket = session.scalars(select(Ticket)).one()
    oauth2_provider.revoke_access_tokens()  # the SMTP side also refreshes once on a rejection
    reply = tickets.reply_to_ticket(session, ticket, agent, "উত্তর পাঠানো হলো।")
    session.commit()
    in_worker(outbox.drain, app)
    [sent] = smtp_oauth2_sink.wait_for(1)
    assert sent.auth_login == account.user
    mail = message_from_bytes(sent.data, policy=policy.default)
    assert mail["In-Reply-To"] == "<r1@example.com>"
    session.rollback()
    fresh = session.get(Message, reply.id, populate_existing=True)
    assert fresh is not None and fresh.delivery_status == DeliveryStatus.SENT
    session.rollback()


def test_the_cli_adds_an_oauth2_mailbox(
    app: Flask, session: Session, account: Account, smtp_oauth2_sink: SmtpSink
) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "channel", "add-email", "Outlook", "--address", SUPPORT,
            "--imap-host", account.dovecot.host, "--imap-port", str(account.dovecot.port),
            "--imap-user", account.user, "--imap-security", "none",
            "--imap-oauth2-token-url", account.provider.token_url,
            "--imap-oauth2-client-id", account.client_id,
            "--imap-oauth2-client-secret", account.client_secret,
            "--smtp-host", smtp_oauth2_sink.host, "--smtp-port", str(smtp_oauth2_sink.port),
            "--smtp-user", account.user, "--smtp-security", "none", "--smtp-oauth2",
        ],
        input=account.refresh_token + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert account.refresh_token not in result.output
    account.mailbox.append(make_mail(subject="Via the CLI"))
    fetched = runner.invoke(args=["mail", "fetch", "--channel", "Outlook", "--once"])
    assert fetched.exit_code == 0, fetched.output
    assert "1 mails, 1 new tickets" in fetched.output
    listed = runner.invoke(args=["channel", "list", "--json"])
    assert account.client_secret not in listed.output
    assert account.refresh_token not in listed.output


def test_admin_sets_up_oauth2_tests_it_and_no_secret_reaches_the_logs(
    app: Flask,
    session: Session,
    admin: Agent,
    account: Account,
    smtp_oauth2_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    login(client, admin.email, PASSWORD)
    form = {
        "csrf_token": csrf_token(client, "/admin/channels"),
        "name": "Gmail",
        "address": SUPPORT,
        "active": "y",
        "imap_host": account.dovecot.host,
        "imap_port": str(account.dovecot.port),
        "imap_security": "none",
        "imap_auth": "oauth2",
        "imap_user": account.user,
        "imap_folder": "INBOX",
        "smtp_host": smtp_oauth2_sink.host,
        "smtp_port": str(smtp_oauth2_sink.port),
        "smtp_security": "none",
        "smtp_auth": "oauth2",
        "smtp_user": account.user,
        "oauth2_token_url": account.provider.token_url,
        "oauth2_client_id": account.client_id,
        "oauth2_client_secret": account.client_secret,
        "oauth2_refresh_token": account.refresh_token,
        "oauth2_scope": "https://mail.google.com/",
    }
    tested = client.post("/admin/mailboxes/new", data={**form, "action": "test"})
    page = tested.get_data(as_text=True)
    assert "Signed in; the folder INBOX holds 0 messages." in page
    assert "Connected and signed in." in page

    wrong = client.post(
        "/admin/mailboxes/new",
        data={**form, "action": "test", "oauth2_client_secret": "not-the-secret"},
    )
    assert "OAuth2 sign-in failed: the OAuth2 token endpoint refused (401: invalid_client)" in (
        wrong.get_data(as_text=True)
    )

    saved = client.post("/admin/mailboxes/new", data={**form, "action": "save"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    channel = session.scalar(select(Channel).where(Channel.name == "Gmail"))
    assert channel is not None
    channel = detached(session, channel)
    # The edit page never shows the stored secrets; a test with blank secrets uses them.
    edit = client.get(f"/admin/mailboxes/{channel.id}").get_data(as_text=True)
    assert account.client_secret not in edit and account.refresh_token not in edit
    blank = {**form, "oauth2_client_secret": "", "oauth2_refresh_token": "", "action": "test"}
    retest = client.post(f"/admin/mailboxes/{channel.id}", data=blank)
    assert "Connected and signed in." in retest.get_data(as_text=True)

    account.mailbox.append(make_mail(subject="Logged quietly"))
    assert fetch(app, channel) == 1
    tokens = list(account.provider.access_tokens)
    assert tokens
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    for secret in (account.client_secret, account.refresh_token, *tokens):
        assert secret not in text
    assert any(r.name.startswith("imapclient") for r in caplog.records)  # logging was on
