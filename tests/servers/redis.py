"""A private Redis server."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.servers._base import (
    _PORT_ATTEMPTS,
    HOST,
    _find_program,
    _greeting,
    _log_size,
    _make_tempdir,
    _PortInUse,
    _Server,
    _spawn,
    _stop_process,
    _wait_until,
    free_port,
)

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
