"""pytest fixtures for the real servers in tests/servers.py.

Loaded from tests/conftest.py with ``pytest_plugins = ["tests.plugins.servers"]``.
Each server starts the first time a test asks for it, once per session and per
pytest-xdist worker, and is stopped and removed at the end of the session.

* ``postgres`` (session): :class:`PostgresCluster`; ``postgres_db`` (function): the
  SQLAlchemy URL of a fresh database, dropped after the test.
* ``redis_server`` (session): :class:`RedisServer` (``.url``).
* ``dovecot`` (session): :class:`DovecotServer`, no users; ``imap_user`` (function):
  a fresh ``(name, password)`` with an empty INBOX on it.
* ``smtp_sink_server`` (session): :class:`SmtpSink`; ``smtp_sink`` (function): the same
  sink, running and with no messages from earlier tests.
* ``oauth2_provider`` (session): :class:`OAuth2Provider` (token endpoint + introspection);
  ``dovecot_oauth2`` (session): a second Dovecot that also accepts XOAUTH2 tokens of that
  provider; ``smtp_oauth2_sink`` (function): an SMTP sink that requires AUTH XOAUTH2 with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.servers import DovecotServer, OAuth2Provider, PostgresCluster, RedisServer, SmtpSink


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_db(postgres: PostgresCluster) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database; dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer() as server:
        yield server


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> tuple[str, str]:
    """A new mailbox user on the running Dovecot (restarted if a test stopped it)."""
    dovecot.start()  # no-op when running
    name = f"user-{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    dovecot.add_user(name, password)
    return name, password


@pytest.fixture(scope="session")
def smtp_sink_server() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def smtp_sink(smtp_sink_server: SmtpSink) -> SmtpSink:
    """The session's SMTP sink, running, with the messages of earlier tests cleared."""
    smtp_sink_server.start()  # no-op when running; brings it back after a stop() test
    smtp_sink_server.clear()
    return smtp_sink_server


@pytest.fixture(scope="session")
def oauth2_provider() -> Iterator[OAuth2Provider]:
    with OAuth2Provider() as provider:
        yield provider


@pytest.fixture(scope="session")
def dovecot_oauth2(oauth2_provider: OAuth2Provider) -> Iterator[DovecotServer]:
    with DovecotServer(oauth2_introspection_url=oauth2_provider.introspection_url) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_oauth2_sink_server(oauth2_provider: OAuth2Provider) -> Iterator[SmtpSink]:
    with SmtpSink(oauth2_check=oauth2_provider.check) as sink:
        yield sink


@pytest.fixture
def smtp_oauth2_sink(smtp_oauth2_sink_server: SmtpSink) -> SmtpSink:
    """The XOAUTH2 sink, running, with no messages from earlier tests."""
    smtp_oauth2_sink_server.start()
    smtp_oauth2_sink_server.clear()
    return smtp_oauth2_sink_server
