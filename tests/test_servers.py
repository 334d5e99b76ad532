"""The test servers really work, each through its own protocol."""

from __future__ import annotations

import smtplib
import socket
import uuid
from email.message import EmailMessage

import imapclient
import psycopg
import pytest
import redis
import sqlalchemy as sa
from imapclient.exceptions import LoginError

from tests.servers import (
    DovecotServer,
    PostgresCluster,
    RedisServer,
    ServerBinaryMissing,
    SmtpSink,
)


def _imap(dovecot: DovecotServer, user: tuple[str, str]) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10)
    client.login(*user)
    return client


def _message(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "customer@example.com"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg.set_content("Hello from the test suite.\n")
    return msg.as_bytes()


# ------------------------------------------------------------------------ PostgreSQL


def test_postgres_database_roundtrip(postgres: PostgresCluster, postgres_db: str) -> None:
    assert postgres_db.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/")
    assert postgres.port != 5432
    engine = sa.create_engine(postgres_db)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id serial PRIMARY KEY, body text)"))
            conn.execute(sa.text("INSERT INTO t (body) VALUES ('স্বাগতম')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT body FROM t")).scalar_one() == "স্বাগতম"
            assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "off"
    finally:
        engine.dispose()


def test_postgres_create_and_drop_database(postgres: PostgresCluster) -> None:
    name = f"x_{uuid.uuid4().hex[:8]}"
    postgres.create_database(name)
    with psycopg.connect(postgres.conninfo(name), autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
        postgres.drop_database(name)  # a client still connected is no obstacle
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(postgres.conninfo()) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert row.fetchone() == (0,)


# ----------------------------------------------------------------------------- Redis


def test_redis_set_get_and_pubsub(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    one = redis.Redis.from_url(redis_server.url)
    two = redis.Redis.from_url(redis_server.url)
    pubsub = two.pubsub()
    try:
        one.set("greeting", "হ্যালো")
        assert two.get("greeting") == "হ্যালো".encode()

        pubsub.subscribe("queue-events")
        # SUBSCRIBE is confirmed before PUBLISH runs: the same server handles both.
        confirmation = pubsub.get_message(timeout=5)
        assert confirmation is not None
        assert confirmation["type"] == "subscribe"
        assert one.publish("queue-events", "ticket:1") == 1
        message = pubsub.get_message(timeout=5)
        assert message is not None
        assert message["data"] == b"ticket:1"
    finally:
        pubsub.close()
        one.close()
        two.close()


# --------------------------------------------------------------------------- Dovecot


def test_dovecot_idle_sees_append_from_other_connection(
    dovecot: DovecotServer, imap_user: tuple[str, str]
) -> None:
    idler = _imap(dovecot, imap_user)
    writer = _imap(dovecot, imap_user)
    try:
        assert idler.select_folder("INBOX")[b"EXISTS"] == 0
        idler.idle()
        writer.append("INBOX", _message("first"))
        responses = idler.idle_check(timeout=10)
        idler.idle_done()
        assert (1, b"EXISTS") in responses
        idler.select_folder("INBOX")
        fetched = idler.fetch([1], ["RFC822"])
        assert b"Subject: first" in next(iter(fetched.values()))[b"RFC822"]
    finally:
        idler.logout()
        writer.logout()


def test_dovecot_rejects_wrong_password(dovecot: DovecotServer, imap_user: tuple[str, str]) -> None:
    client = imapclient.IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10)
    try:
        with pytest.raises(LoginError):
            client.login(imap_user[0], "wrong")
    finally:
        client.shutdown()


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "crash"])
def test_dovecot_restart_during_idle_keeps_mail(
    dovecot: DovecotServer, imap_user: tuple[str, str], graceful: bool
) -> None:
    writer = _imap(dovecot, imap_user)
    writer.append("INBOX", _message("kept across restart"))
    writer.logout()

    idler = _imap(dovecot, imap_user)
    uidvalidity = idler.select_folder("INBOX")[b"UIDVALIDITY"]
    idler.idle()
    port = dovecot.port
    dovecot.restart(graceful=graceful)
    assert dovecot.port == port
    try:
        responses = idler.idle_check(timeout=10)
    finally:
        idler.shutdown()
    if graceful:
        assert (b"BYE", b"Server", b"shutting", b"down.") in responses
    else:
        assert responses == []  # the connection just closed

    reader = _imap(dovecot, imap_user)
    try:
        folder = reader.select_folder("INBOX")
        assert folder[b"EXISTS"] == 1
        assert folder[b"UIDVALIDITY"] == uidvalidity
    finally:
        reader.logout()


def test_dovecot_stop_then_start(dovecot: DovecotServer, imap_user: tuple[str, str]) -> None:
    dovecot.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((dovecot.host, dovecot.port), timeout=2).close()
    dovecot.start()
    client = _imap(dovecot, imap_user)
    client.logout()


# ------------------------------------------------------------------------------ SMTP


def test_smtp_sink_receives_exact_bytes_and_envelope(smtp_sink: SmtpSink) -> None:
    raw = (
        b"From: agent@example.com\r\nTo: customer@example.com\r\n"
        b"Subject: Re: [#42]\r\n\r\n.a line starting with a dot\r\n" + "বাংলা\r\n".encode()
    )
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("agent@example.com", ["customer@example.com", "cc@example.com"], raw)
    [message] = smtp_sink.wait_for(1)
    assert message.mail_from == "agent@example.com"
    assert message.rcpt_tos == ("customer@example.com", "cc@example.com")
    assert message.data == raw
    assert message.auth_login is None


def test_smtp_sink_down_then_up_on_same_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    connected = smtplib.SMTP(smtp_sink.host, port, timeout=10)
    try:
        smtp_sink.stop()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            connected.noop()  # a session open during the outage is dropped
    finally:
        connected.close()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_sink.host, port, timeout=5)
    smtp_sink.start()
    assert smtp_sink.port == port
    with smtplib.SMTP(smtp_sink.host, port, timeout=10) as client:
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: back\r\n\r\nup\r\n")
    assert len(smtp_sink.wait_for(1)) == 1


def test_smtp_sink_wait_for_times_out(smtp_sink: SmtpSink) -> None:
    with pytest.raises(TimeoutError, match="got 0 message"):
        smtp_sink.wait_for(1, timeout=0.05)


def test_smtp_sink_with_auth() -> None:
    with SmtpSink(auth=("mailer", "s3cret")) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPSenderRefused):
                client.sendmail("a@example.com", ["b@example.com"], b"\r\nnope\r\n")
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("mailer", "wrong")
            client.login("mailer", "s3cret")
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: ok\r\n\r\nok\r\n")
        [message] = sink.wait_for(1)
        assert message.auth_login == "mailer"


def test_missing_binary_names_the_debian_package() -> None:
    error = ServerBinaryMissing("redis-server", "redis-server")
    assert "apt-get install redis-server" in str(error)
