"""Shared by every server: ports, processes, logs, users, the _Server base."""

from __future__ import annotations

import abc
import atexit
import contextlib
import glob
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

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


class _Server(abc.ABC):
    """Common context-manager behaviour: ``start()`` on enter, ``close()`` on exit."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

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
