"""A private Dovecot IMAP server."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.servers._base import (
    _PORT_ATTEMPTS,
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    ServerBinaryMissing,
    ServerStartError,
    _as_user,
    _chown_tree,
    _find_program,
    _greeting,
    _log_size,
    _make_tempdir,
    _PortInUse,
    _Server,
    _spawn,
    _stop_process,
    _system_user,
    _wait_until,
    free_port,
    worker_id,
)

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
                f"tests/servers/dovecot.py writes a Dovecot 2.3 configuration; found {version!r}"
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
