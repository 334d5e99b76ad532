"""Real servers on 127.0.0.1 for the test suite and the bench scripts.

Every server here is the real thing (PostgreSQL, Redis, Dovecot, aiosmtpd), started
under its own temporary directory on a free port, and stopped and removed again by
``close()`` / the context manager exit.  Nothing here is pytest-specific; the pytest
fixtures live in ``tests/plugins/servers.py``.

Running as root (CI does): PostgreSQL refuses to, and Dovecot is simplest to run
"rootless", so both are started through ``setpriv`` as their Debian system users
(``postgres`` and ``dovecot``), and their temporary directories are owned by those
users.  Redis and the SMTP sink run as whoever runs the tests.

A missing binary raises :class:`ServerBinaryMissing` naming the Debian package to
install (``make test`` installs them); nothing is mocked and nothing is skipped.
"""

from tests.servers._base import (
    HOST,
    ServerBinaryMissing,
    ServerStartError,
    free_port,
    worker_id,
)
from tests.servers.dovecot import DovecotServer
from tests.servers.helpdesk import helpdesk_serve, wait_http
from tests.servers.oauth2 import OAuth2Provider
from tests.servers.postgres import PostgresCluster
from tests.servers.redis import RedisServer
from tests.servers.smtp import ReceivedMessage, SmtpSink

__all__ = [
    "HOST",
    "DovecotServer",
    "OAuth2Provider",
    "PostgresCluster",
    "ReceivedMessage",
    "RedisServer",
    "ServerBinaryMissing",
    "ServerStartError",
    "SmtpSink",
    "free_port",
    "helpdesk_serve",
    "wait_http",
    "worker_id",
]
