"""Fixtures for the email channel against real servers: a mailbox on the session's Dovecot,
an email channel configured through the service, and helpers to put mail into the mailbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy.orm import Session

from channels.email.accounts import ServerConfig, add_email_channel
from helpdesk.db import utcnow
from helpdesk.models import Channel
from tests.servers import DovecotServer

SUPPORT = "support@helpdesk.test"


class Mailbox:
    """The customer-facing side of a test mailbox: APPEND mail the way an MTA delivers it."""

    def __init__(self, dovecot: DovecotServer, user: str, password: str) -> None:
        self.dovecot = dovecot
        self.user = user
        self.password = password

    def client(self) -> IMAPClient:
        client = IMAPClient(self.dovecot.host, port=self.dovecot.port, ssl=False, timeout=30)
        client.login(self.user, self.password)
        return client

    def append(self, *mails: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            for raw in mails:
                client.append(folder, raw)
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        client = self.client()
        try:
            client.select_folder(folder, readonly=True)
            return dict(client.get_flags(client.search()))
        finally:
            client.logout()


@pytest.fixture
def mailbox(dovecot: DovecotServer, imap_user: tuple[str, str]) -> Mailbox:
    return Mailbox(dovecot, *imap_user)


MakeChannel = Callable[..., Channel]


@pytest.fixture
def make_channel(session: Session, mailbox: Mailbox) -> MakeChannel:
    def factory(name: str = "Support", **kwargs: Any) -> Channel:
        imap = ServerConfig(
            host=mailbox.dovecot.host,
            port=mailbox.dovecot.port,
            user=mailbox.user,
            password=mailbox.password,
            security="none",
            folder=kwargs.pop("folder", "INBOX"),
            move_to=kwargs.pop("move_to", None),
        )
        channel = add_email_channel(
            session, name, address=kwargs.pop("address", SUPPORT), imap=imap, **kwargs
        )
        session.commit()
        return channel

    return factory


@pytest.fixture
def channel(make_channel: MakeChannel) -> Channel:
    return make_channel()


def make_mail(
    sender: str = "rahim@example.com",
    subject: str = "My order has not arrived",
    body: str = "Hello, order 1234 has not arrived yet.",
    *,
    to: str = SUPPORT,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = f"<{message_id}>" if message_id else make_msgid(domain="example.com")
    if in_reply_to:
        mail["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        mail["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(mail)


@pytest.fixture
def app_with_ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


def form_for(mailbox: Mailbox, **overrides: Any) -> dict[str, Any]:
    """The admin's "Add a mailbox" form for ``mailbox``, as a browser posts it."""
    data: dict[str, Any] = {
        "name": "Support",
        "address": SUPPORT,
        "active": "y",
        "imap_host": mailbox.dovecot.host,
        "imap_port": str(mailbox.dovecot.port),
        "imap_security": "none",
        "imap_auth": "password",
        "imap_user": mailbox.user,
        "imap_password": mailbox.password,
        "imap_folder": "INBOX",
        "smtp_security": "none",
        "smtp_auth": "password",
        "action": "save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
