"""`helpdesk serve` as a process: start, wait for it to answer, stop."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

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
