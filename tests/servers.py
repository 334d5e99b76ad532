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

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import functools
import glob
import logging
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "DovecotServer",
    "OAuth2Provider",
    "PostgresCluster",
    "ReceivedMessage",
    "RedisServer",
    "ServerBinaryMissing",
    "ServerStartError",
    "SmtpSink",
    "free_port",
    "worker_id",
]

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_PORT_ATTEMPTS = 5


class ServerBinaryMissing(RuntimeError):
    """A server program is not installed."""

    def __init__(self, program: str, package: str) -> None:
        super().__init__(
            f"{program} not found: install the Debian package {package!r} "
            f"(apt-get install {package}; `make test` installs it)"
        )
        self.program = program
        self.package = package


class ServerStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


class _PortInUse(ServerStartError):
    pass


# --------------------------------------------------------------------------- helpers


def worker_id() -> str:
    """The pytest-xdist worker id (``gw0``...) or ``main`` outside xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on collision)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _find_program(name: str, package: str, extra_dirs: Iterable[str] = ()) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs, "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise ServerBinaryMissing(name, package)
    return found


def _postgres_bindir() -> Path:
    """The bin directory of the newest PostgreSQL in /usr/lib/postgresql/*/bin."""
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = Path(initdb).parent.parent.name
        with contextlib.suppress(ValueError):
            candidates.append((tuple(int(p) for p in version.split(".")), Path(initdb).parent))
    if not candidates:
        raise ServerBinaryMissing("initdb (/usr/lib/postgresql/*/bin)", "postgresql")
    return max(candidates)[1]


def _tail(path: Path, lines: int = 30, offset: int = 0) -> str:
    """The last ``lines`` lines of ``path`` written after byte ``offset``."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _searchable_by_all(path: Path) -> bool:
    """Whether every directory from / to ``path`` can be traversed by any user."""
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _make_tempdir(kind: str, owner: pwd.struct_passwd | None) -> Path:
    """A fresh directory for one server, owned by ``owner`` when given (root runs)."""
    parent = Path(tempfile.gettempdir())
    if owner is not None and not _searchable_by_all(parent):
        parent = Path("/tmp")
    path = Path(tempfile.mkdtemp(prefix=f"helpdesk-{kind}-{worker_id()}-", dir=parent))
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _chown_tree(path: Path, owner: pwd.struct_passwd | None) -> None:
    if owner is None:
        return
    os.chown(path, owner.pw_uid, owner.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def _system_user(name: str, package: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServerStartError(
            f"running as root needs the system user {name!r}, created by the Debian "
            f"package {package!r} (apt-get install {package})"
        ) from None


def _as_user(owner: pwd.struct_passwd | None) -> list[str]:
    """Command prefix that runs a program as ``owner`` (only used when we are root)."""
    if owner is None:
        return []
    setpriv = _find_program("setpriv", "util-linux")
    return [
        setpriv,
        f"--reuid={owner.pw_uid}",
        f"--regid={owner.pw_gid}",
        "--init-groups",
        "--",
    ]


def _run(cmd: list[str], log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise ServerStartError(f"{cmd[0]} failed ({result.returncode}):\n{_tail(log)}")


def _wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes] | None,
    what: str,
    log: Path,
    timeout: float = START_TIMEOUT,
    port_in_use: Callable[[str], bool] = lambda _log: False,
    log_offset: int = 0,
) -> None:
    """Poll ``ready()`` until it is true; fail fast if ``proc`` dies, at the deadline.

    Only the log written after ``log_offset`` (this attempt's) is looked at.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if proc is not None and proc.poll() is not None:
            text = _tail(log, offset=log_offset)
            if port_in_use(text):
                raise _PortInUse(f"{what}: port already in use")
            raise ServerStartError(f"{what} exited with {proc.returncode}:\n{text}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{what} not ready after {timeout:.0f}s:\n{_tail(log, offset=log_offset)}"
            )
        # Back-off between socket probes (not a fixed sleep: readiness ends the wait).
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """Signal ``proc`` and wait for it, then kill whatever is left of its process group.

    ``proc`` leads its own process group (``start_new_session``); the leader is waited
    for through a pidfd *without* reaping it, so its group id cannot be reused by an
    unrelated process before the stragglers are killed.
    """
    if proc is None:
        return
    if proc.returncode is None:
        try:
            pidfd = os.pidfd_open(proc.pid)
        except ProcessLookupError:
            pidfd = None
        if pidfd is not None:
            try:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                if not poller.poll(STOP_TIMEOUT * 1000):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    poller.poll()
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            finally:
                os.close(pidfd)
    proc.wait()


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal must not kill it before teardown
        )


def _greeting(port: int, expect: bytes, send: bytes = b"") -> bool:
    try:
        # Short: a probe that hangs (someone else's listener) must not eat the deadline.
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            if send:
                sock.sendall(send)
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(256)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(expect)
    except OSError:
        return False


_live: set[_Server] = set()
_live_lock = threading.Lock()


@atexit.register
def _close_leftovers() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.close()


class _Server:
    """Common context-manager behaviour: ``start()`` on enter, ``close()`` on exit."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _register(self) -> None:
        with _live_lock:
            _live.add(self)

    def _unregister(self) -> None:
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ------------------------------------------------------------------------ PostgreSQL


class PostgresCluster(_Server):
    """A throwaway PostgreSQL cluster (initdb + postgres) with trust auth on 127.0.0.1."""

    user = "postgres"  # the superuser initdb creates, whoever runs it

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.owner = _system_user("postgres", "postgresql") if os.geteuid() == 0 else None
        self.host = HOST
        self.port = 0
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    @property
    def log(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "postgres.log"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        began = time.monotonic()
        if self.tmpdir is None:
            self._register()
            self.tmpdir = _make_tempdir("pg", self.owner)
            self._initdb()
        for attempt in range(_PORT_ATTEMPTS):
            port = self.port or free_port()
            try:
                self._start_on(port)
                break
            except _PortInUse:
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
        self.startup_seconds = time.monotonic() - began

    def _initdb(self) -> None:
        assert self.tmpdir is not None
        log = self.tmpdir / "initdb.log"
        log.touch()
        _chown_tree(self.tmpdir, self.owner)
        _run(
            [
                *_as_user(self.owner),
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.datadir),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
                "--no-instructions",
            ],
            log,
        )
        (self.datadir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# helpdesk test cluster\n"
                f"listen_addresses = '{HOST}'\n"
                f"unix_socket_directories = '{self.tmpdir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
                "shared_buffers = 32MB\n"
                "logging_collector = off\n"
            )
        _chown_tree(self.tmpdir, self.owner)

    def _start_on(self, port: int) -> None:
        self.log.touch()
        cmd = [*_as_user(self.owner), str(self.bindir / "postgres"), "-D", str(self.datadir)]
        offset = _log_size(self.log)
        self.proc = _spawn([*cmd, "-p", str(port)], self.log)
        try:
            _wait_until(
                lambda: self._can_connect(port),
                self.proc,
                f"postgres on port {port}",
                self.log,
                port_in_use=lambda text: "Address already in use" in text,
                log_offset=offset,
            )
        except BaseException:
            _stop_process(self.proc, signal.SIGINT)
            self.proc = None
            raise
        self.port = port

    def _can_connect(self, port: int) -> bool:
        import psycopg

        # The postmaster says "ready" in its pid file (what pg_ctl -w waits for); only
        # then connect, so a stranger's listener on the port cannot stall the probe.
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or lines[3].strip() != str(port) or lines[7].strip() != "ready":
            return False
        try:
            with psycopg.connect(
                host=HOST, port=port, user=self.user, dbname="postgres", connect_timeout=2
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        _stop_process(self.proc, signal.SIGINT)  # SIGINT = "fast" shutdown
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self._unregister()

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of ``dbname`` on this cluster."""
        return f"postgresql+psycopg://{self.user}@{HOST}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string (for psycopg.connect)."""
        return f"host={HOST} port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URL."""
        self._admin("CREATE DATABASE {}", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its clients."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def _admin(self, statement: str, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


# ----------------------------------------------------------------------------- Redis


class RedisServer(_Server):
    """``redis-server`` on 127.0.0.1 without persistence."""

    def __init__(self) -> None:
        self.program = _find_program("redis-server", "redis-server")
        self.host = HOST
        self.port = 0
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "redis.log"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        began = time.monotonic()
        if self.tmpdir is None:
            self._register()
            self.tmpdir = _make_tempdir("redis", None)
        for attempt in range(_PORT_ATTEMPTS):
            port = self.port or free_port()
            try:
                self._start_on(port)
                break
            except _PortInUse:
                if attempt == _PORT_ATTEMPTS - 1:
                    raise
        self.startup_seconds = time.monotonic() - began

    def _start_on(self, port: int) -> None:
        assert self.tmpdir is not None
        cmd = [
            self.program,
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.tmpdir),
            "--daemonize", "no",
            "--logfile", "",  # stdout, which goes to the log file
        ]  # fmt: skip
        offset = _log_size(self.log)
        self.proc = _spawn(cmd, self.log)
        try:
            _wait_until(
                lambda: _greeting(port, b"+PONG", b"PING\r\n"),
                self.proc,
                f"redis-server on port {port}",
                self.log,
                port_in_use=lambda text: "Address already in use" in text,
                log_offset=offset,
            )
        except BaseException:
            _stop_process(self.proc)
            self.proc = None
            raise
        self.port = port

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self._unregister()


# --------------------------------------------------------------------------- Dovecot

_USERNAME_RE = re.compile(r"^[A-Za-z0-9._@+-]+$")


class DovecotServer(_Server):
    """A private Dovecot IMAP server (plaintext LOGIN, no SSL) on 127.0.0.1.

    Each user has a passwd-file of its own, so :meth:`add_user` works while the
    server runs and takes effect at once.  Mail is Maildir under the
    temporary directory and survives :meth:`restart`.
    """

    def __init__(
        self, users: dict[str, str] | None = None, oauth2_introspection_url: str | None = None
    ) -> None:
        # With an introspection URL, XOAUTH2/OAUTHBEARER logins are checked by Dovecot's oauth2
        # passdb against that endpoint (RFC 7662 POST); password logins keep working.
        self.oauth2_introspection_url = oauth2_introspection_url
        self.program = _find_program("dovecot", "dovecot-imapd")
        version = subprocess.run(
            [self.program, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        self.version = version
        if not version.startswith("2.3"):
            raise ServerStartError(
                f"tests/servers.py writes a Dovecot 2.3 configuration; found {version!r}"
            )
        if not Path("/usr/lib/dovecot/imap").exists():
            raise ServerBinaryMissing("/usr/lib/dovecot/imap", "dovecot-imapd")
        # Rootless Dovecot: as root, run it as the Debian "dovecot" user.
        self.owner = _system_user("dovecot", "dovecot-core") if os.geteuid() == 0 else None
        self.run_as = self.owner or pwd.getpwuid(os.geteuid())
        self.host = HOST
        self.port = 0
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0
        self._users: dict[str, str] = {}
        self._users_lock = threading.Lock()
        for name, password in (users or {}).items():
            self._check_user(name, password)
            self._users[name] = password

    @property
    def users(self) -> dict[str, str]:
        with self._users_lock:
            return dict(self._users)

    @property
    def log(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "dovecot.log"

    @property
    def config(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "dovecot.conf"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @staticmethod
    def _check_user(name: str, password: str) -> None:
        if not _USERNAME_RE.match(name) or name.startswith("."):
            raise ValueError(f"unsupported IMAP user name {name!r}")
        if any(c in password for c in ":\r\n\0"):
            raise ValueError("IMAP test passwords cannot contain ':' or line breaks")

    def add_user(self, name: str, password: str) -> None:
        """Add a user, usable at once (a changed password may take Dovecot a second)."""
        self._check_user(name, password)
        with self._users_lock:
            self._users[name] = password
            if self.tmpdir is not None:
                self._write_passwd()

    def _write_passwd(self) -> None:
        """One passwd-file per user: a new user is a new file, read on first use.

        (A single shared file is only re-checked for changes once a second, so a user
        added right after another login would be unknown for up to a second.)
        """
        assert self.tmpdir is not None
        users_dir = self.tmpdir / "passwd.d"
        users_dir.mkdir(exist_ok=True)
        _chown_tree(users_dir, self.owner)
        for name, password in self._users.items():
            target = users_dir / name
            line = f"{name}:{{PLAIN}}{password}\n"
            if target.exists() and target.read_text() == line:
                continue
            tmp = users_dir / f".{name}.new"
            tmp.write_text(line)
            _chown_tree(tmp, self.owner)
            os.replace(tmp, target)

    def _write_config(self, port: int) -> None:
        assert self.tmpdir is not None
        tmp = self.tmpdir
        user = self.run_as
        group_name = _group_name(user.pw_gid)
        mechanisms, oauth2_passdb = "plain login", ""
        if self.oauth2_introspection_url is not None:
            mechanisms = "plain login xoauth2 oauthbearer"
            (tmp / "oauth2.conf.ext").write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection_url}\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
                "force_introspection = yes\n"
            )
            _chown_tree(tmp / "oauth2.conf.ext", self.owner)
            oauth2_passdb = (
                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {tmp}/oauth2.conf.ext\n}}\n"
            )
        self.config.write_text(
            f"""\
# Private Dovecot {self.version} for the helpdesk tests (rootless).
instance_name = helpdesk-test-{worker_id()}-{tmp.name}
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {self.log}
protocols = imap
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
default_internal_user = {user.pw_name}
default_internal_group = {group_name}
default_login_user = {user.pw_name}
first_valid_uid = 1
first_valid_gid = {min(user.pw_gid, 1)}
mail_location = maildir:~/Maildir
mail_fsync = never
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 1000

passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {tmp}/passwd.d/%u
}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid={user.pw_uid} gid={user.pw_gid} home={tmp}/home/%u
}}

service anvil {{
  chroot =
  # No auth penalty: failed logins must not slow down later logins from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service auth-worker {{
  user = $default_internal_user
}}
"""
        )

    def start(self) -> None:
        """Start (again) on the same port; mail and users are kept."""
        if self.running:
            return
        began = time.monotonic()
        if self.tmpdir is None:
            self._register()
            self.tmpdir = _make_tempdir("dovecot", self.owner)
            for sub in ("run", "state", "home"):
                (self.tmpdir / sub).mkdir()
            with self._users_lock:
                self._write_passwd()
            _chown_tree(self.tmpdir, self.owner)
        if self.port:
            # Restart: the same port must come back; an old login process may still hold
            # it for a moment, so retry until the deadline.
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    self._start_on(self.port)
                    break
                except _PortInUse:
                    if time.monotonic() > deadline:
                        raise
        else:
            for attempt in range(_PORT_ATTEMPTS):
                try:
                    self._start_on(free_port())
                    break
                except _PortInUse:
                    if attempt == _PORT_ATTEMPTS - 1:
                        raise
        self.startup_seconds = time.monotonic() - began

    def _start_on(self, port: int) -> None:
        assert self.tmpdir is not None
        # A master killed mid-way leaves a dotlock on its instance list (the next one
        # would wait 10s for it) and a pid file; no master of ours is running now.
        for stale in ("state/instances.lock", "run/master.pid"):
            (self.tmpdir / stale).unlink(missing_ok=True)
        self._write_config(port)
        self.log.touch()
        _chown_tree(self.tmpdir / "dovecot.conf", self.owner)
        _chown_tree(self.log, self.owner)
        offset = _log_size(self.log)
        self.proc = _spawn(
            [*_as_user(self.owner), self.program, "-F", "-c", str(self.config)], self.log
        )
        try:
            _wait_until(
                lambda: _greeting(port, b"* OK"),
                self.proc,
                f"dovecot on port {port}",
                self.log,
                port_in_use=lambda text: "Address already in use" in text,
                log_offset=offset,
            )
        except BaseException:
            _stop_process(self.proc)
            self.proc = None
            raise
        self.port = port

    def stop(self, graceful: bool = True) -> None:
        """Stop the server; data is kept.

        ``graceful``: SIGTERM, so IMAP clients get ``* BYE`` (otherwise SIGKILL: a
        crash, clients just see the connection drop).
        """
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            if graceful:
                # The whole group: Dovecot's master leaves IMAP processes running, but
                # SIGTERMed themselves they send "* BYE Server shutting down." first.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
                _wait_for_dovecot_shutdown(proc.pid)
            # Kills what is left: the master sleeps 1s for its log process to exit.
            _stop_process(proc, signal.SIGKILL)
        if self.port:
            # Wait until nothing listens on the port any more.
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    socket.create_connection((HOST, self.port), timeout=1).close()
                except OSError:
                    break
                time.sleep(0.01)

    def restart(self, graceful: bool = True) -> None:
        """Stop and start again on the same port; mail, users and UIDVALIDITY are kept."""
        self.stop(graceful)
        self.start()

    def close(self) -> None:
        self.stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self._unregister()


def _wait_for_dovecot_shutdown(master: int, grace: float = 2.0) -> None:
    """After SIGTERM, wait until every Dovecot process but the log process has exited.

    Dovecot's master then sleeps a whole second waiting for the log process; nothing
    useful happens in that second, so the caller kills the rest (at the latest after
    ``grace`` seconds).  The master is not reaped here (``WNOWAIT``), so its process
    group id stays reserved.
    """
    deadline = time.monotonic() + grace
    delay = 0.002
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, master, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return
        except ChildProcessError:
            return
        if all(cmd.endswith("/log") for cmd in _live_group_members(master)):
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _live_group_members(pgid: int) -> list[str]:
    """Command lines of the non-zombie processes in group ``pgid``, leader excluded."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        members.append(cmdline.split(b"\0", 1)[0].decode(errors="replace"))
    return members


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# ------------------------------------------------------------------------------ SMTP


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the message as received after DATA (CRLF line ends, dots unstuffed)
    auth_login: str | None  # the AUTH user name, or None


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.sink.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = None
        if session.authenticated and session.auth_data is not None:
            raw = getattr(session.auth_data, "login", None)
            login = raw.decode() if isinstance(raw, bytes) else raw
        content = envelope.original_content or envelope.content or b""
        self.sink._record(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(content),
                auth_login=login,
            )
        )
        return "250 2.0.0 Message accepted"


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(100)
    except BaseException:
        sock.close()
        raise
    return sock


@functools.cache
def _socket_controller_class() -> type[Any]:
    """Built on first use, so importing this module does not need aiosmtpd."""
    from aiosmtpd.controller import Controller

    class SocketController(Controller):
        """aiosmtpd's Controller serving on a socket we bound (and so know is ours)."""

        def __init__(self, sock: socket.socket, handler: Any, **kwargs: Any) -> None:
            self._sock = sock
            super().__init__(handler, hostname=HOST, port=sock.getsockname()[1], **kwargs)

        def _create_server(self) -> Any:
            return self.loop.create_server(
                self._factory_invoker, sock=self._sock, ssl=self.ssl_context
            )

    return SocketController


class _XOAuth2SinkHandler(_SinkHandler):
    """The sink with SMTP ``AUTH XOAUTH2``, tokens checked by the sink's ``oauth2_check``."""

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        blob = args[1].encode() if len(args) > 1 else await server.challenge_auth("")
        parsed = _parse_xoauth2(blob) if isinstance(blob, bytes) else None
        check = self.sink.oauth2_check
        if parsed is not None and check is not None and check(*parsed):
            return AuthResult(success=True, auth_data=LoginPassword(parsed[0].encode(), b""))
        # Google's exchange: an error JSON as a challenge, the client's empty answer, then 535.
        await server.challenge_auth('{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)


def _parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """(user, token) of a base64 XOAUTH2 initial response, ``None`` if malformed."""
    import base64
    import binascii

    try:
        text = base64.b64decode(blob, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    if not fields.get("user") or not auth.startswith("Bearer "):
        return None
    return fields["user"], auth.removeprefix("Bearer ")


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation notice of its own on every successful AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


_AIOSMTPD_FILTER = _DropLoginDataNotice()


class SmtpSink(_Server):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it gets.

    ``auth=(user, password)`` makes it advertise AUTH PLAIN/LOGIN without TLS and
    refuse MAIL FROM before a successful login; ``oauth2_check(user, token) -> bool`` adds
    AUTH XOAUTH2 (and requires a login too).
    """

    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        oauth2_check: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.auth = auth
        self.oauth2_check = oauth2_check
        if oauth2_check is not None and auth is None:
            self.auth = ("", "\0")  # no password login can match: XOAUTH2 only
        logging.getLogger("mail.log").addFilter(_AIOSMTPD_FILTER)  # idempotent
        self.host = HOST
        self.port = 0
        self.startup_seconds = 0.0
        self._controller: Any = None
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def _authenticator(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            self.auth is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == self.auth[0].encode()
            and auth_data.password == self.auth[1].encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> None:
        """Start listening (on the same port as before, after a :meth:`stop`)."""
        if self._controller is not None:
            return
        began = time.monotonic()
        self._register()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                sock = _listen(self.port)  # port 0 on the first start: no race
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # our old port, still held by someone: retry
        try:
            self._start_on(sock)
        except BaseException:
            sock.close()
            raise
        self.startup_seconds = time.monotonic() - began

    def _start_on(self, sock: socket.socket) -> None:
        kwargs: dict[str, Any] = {}
        if self.auth is not None:
            kwargs.update(authenticator=self._authenticator, auth_require_tls=False)
        handler = _SinkHandler(self) if self.oauth2_check is None else _XOAuth2SinkHandler(self)
        controller = _socket_controller_class()(
            sock,
            handler,
            loop=asyncio.new_event_loop(),
            server_hostname="smtp-sink.test",  # no getfqdn() DNS lookup
            ready_timeout=START_TIMEOUT,
            **kwargs,
        )
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            if not controller.loop.is_closed():
                controller.loop.close()
            raise
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        """Stop listening and drop open connections; received messages are kept."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()  # cancels the sessions' tasks, closes the listener

    def close(self) -> None:
        self.stop()
        self._unregister()

    # -- received messages

    def _record(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived (since :meth:`clear`)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"SMTP sink got {len(self._messages)} message(s), expected {count} "
                    f"within {timeout}s"
                )
            return list(self._messages)


# --------------------------------------------------------------------- OAuth2 provider


class OAuth2Provider(_Server):
    """A tiny OAuth2 authorization server on 127.0.0.1 (stdlib ``http.server``, a real socket).

    * ``POST /token``: the refresh-token grant (RFC 6749 §6) for registered clients; issues
      access tokens valid ``expires_in`` seconds; ``rotate`` issues a new refresh token each time.
    * ``POST /introspect``: RFC 7662 token introspection, what Dovecot's oauth2 passdb asks.

    :meth:`check` answers the same question for the SMTP sink's XOAUTH2.
    """

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.clients: dict[str, str] = {}  # client id -> secret
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (client, user)
        self.access_tokens: dict[str, str] = {}  # access token -> user
        self.token_requests = 0
        self.expires_in = 3600
        self.rotate = False

    @property
    def token_url(self) -> str:
        return f"http://{HOST}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://{HOST}:{self.port}/introspect"

    def register(self, user: str) -> tuple[str, str, str]:
        """A new client allowed to act for ``user``: (client id, client secret, refresh token)."""
        import secrets as _secrets

        client_id = f"client-{_secrets.token_hex(4)}"
        secret = _secrets.token_urlsafe(16)
        refresh = _secrets.token_urlsafe(24)
        with self._lock:
            self.clients[client_id] = secret
            self.refresh_tokens[refresh] = (client_id, user)
        return client_id, secret, refresh

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def check(self, user: str, token: str) -> bool:
        with self._lock:
            return self.access_tokens.get(token) == user

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        import secrets as _secrets

        with self._lock:
            self.token_requests += 1
            client_id = form.get("client_id", "")
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            if self.clients.get(client_id) != form.get("client_secret"):
                return 401, {"error": "invalid_client"}
            owner = self.refresh_tokens.get(form.get("refresh_token", ""))
            if owner is None or owner[0] != client_id:
                return 400, {"error": "invalid_grant", "error_description": "token revoked"}
            access = _secrets.token_urlsafe(24)
            self.access_tokens[access] = owner[1]
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
            if self.rotate:
                fresh = _secrets.token_urlsafe(24)
                self.refresh_tokens[fresh] = owner
                body["refresh_token"] = fresh
            return 200, body

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            user = self.access_tokens.get(form.get("token", ""))
        if user is None:
            return 200, {"active": "false"}
        return 200, {"active": "true", "username": user}

    def start(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qsl

        if self._server is not None:
            return
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                routes = {"/token": provider._token, "/introspect": provider._introspect}
                route = routes.get(self.path.split("?")[0])
                status, body = route(form) if route else (404, {"error": "not_found"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the suite's output is for failures

        self._register()
        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oauth2-provider", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT)
        self._unregister()


# ---------------------------------------------------------------------------------------------
# `helpdesk serve` as a real process (browser and chat tests)
# ---------------------------------------------------------------------------------------------


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Wait until ``url`` answers 200, failing early (with the log) if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"helpdesk serve exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)  # the process is starting; nothing to await but the socket
    raise RuntimeError(f"helpdesk serve did not answer in {timeout}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def helpdesk_serve(
    env: dict[str, str], port: int, log: Path, ready_path: str = "/login"
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `helpdesk serve` on 127.0.0.1:``port`` until the block ends (then stop it)."""
    exe = Path(sys.executable).with_name("helpdesk")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}{ready_path}", proc, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
