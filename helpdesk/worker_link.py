"""``helpdesk serve``'s worker process and the private link between it and the web process.

Why a process: the worker's long-running services (today the IMAP watchers, which download,
parse and store mail in batches) are CPU work and blocking calls. Inside the web process they
shared its event loop or its GIL with every request: under gevent a fetch of a backlog stopped the
web for minutes (its parser-process pool blocked the loop writing to a full pipe, and the batch
work itself held the loop for hundreds of milliseconds at a time; docs/email.md, "Where mail is
read"). In a process of their own they cannot starve the web, whatever they do. The periodic
tasks (outbox delivery, timers, the KB index) are short and stay in the web process, woken at
once by the commits there.

The link is a socket pair, one end in each process, carrying length-prefixed pickles (both ends
are this program, started by it; nothing else can reach a socket pair):

- worker -> web: ``{"kind": "socketio", "method": "emit" | "close_room", "args": {...}}``, a
  Socket.IO call the web process makes for it (the worker's announcements of new tickets and
  messages reach the agents' browsers; with ``HELPDESK_MESSAGE_QUEUE`` set the worker publishes
  there instead, like any other process); ``{"kind": "kick"}``, the worker committed work for
  the outbox (an acknowledgement): deliver it now.
- web -> worker: ``{"kind": "channels_changed"}``, a channel was changed in the admin UI: the
  watchers resync at once instead of at their next refresh.

The worker ends when its end of the link closes, so a web process killed with -9 takes its
worker with it; the web process restarts a worker that died (backoff up to 30 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from socketio import Manager

log = logging.getLogger("helpdesk.worker")

_HEADER = struct.Struct("!I")
_MAX_FRAME = 64 * 1024 * 1024
LINK_FD_CONFIG = "WORKER_LINK_FD"  # HELPDESK_WORKER_LINK_FD in the worker's environment
# A worker whose web process is gone stops at once, and exits by force after this long.
ORPHAN_GRACE_SECONDS = 5.0


class Link:
    """One end of the socket pair: framed pickles, sent whole by any thread or greenlet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def notify(self, kind: str) -> None:
        """Send ``{"kind": kind}``; a gone other end is not this side's error."""
        self.send({"kind": kind})

    def send(self, message: dict[str, Any]) -> bool:
        """Send one message; false when the other end is gone (nothing to tell it then)."""
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._send_lock:
                self.sock.sendall(_HEADER.pack(len(data)) + data)
        except OSError:
            return False
        return True

    def receive(self) -> Iterator[dict[str, Any]]:
        """Messages until the other end closes."""
        while True:
            header = self._read(_HEADER.size)
            if header is None:
                return
            (size,) = _HEADER.unpack(header)
            if size > _MAX_FRAME:
                log.error("worker link: a %d-byte frame; closing the link", size)
                return
            body = self._read(size)
            if body is None:
                return
            yield pickle.loads(body)  # noqa: S301 - our own process at the other end

    def _read(self, size: int) -> bytes | None:
        chunks: list[bytes] = []
        while size:
            try:
                chunk = self.sock.recv(min(size, 1 << 20))
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        # shutdown first: a close alone leaves the socket open while another thread of this
        # process still reads it, and the other end would never see the end.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


# --- the worker's side ---------------------------------------------------------------------------

_child_link: Link | None = None


def child_link(app: Flask) -> Link | None:
    """This process's link to the web process that started it, or ``None`` (not started so)."""
    global _child_link
    fd = app.config.get(LINK_FD_CONFIG)
    if fd in (None, ""):
        return None
    if _child_link is None:
        sock = socket.socket(fileno=int(fd))
        # The web process made the pair; under gevent its sockets are non-blocking, and the
        # flag is the descriptor's, shared with this end: a read would fail at once.
        sock.setblocking(True)
        _child_link = Link(sock)
    return _child_link


class LinkManager(Manager):
    """Socket.IO emits of the worker process, handed to the web process over the link as the
    call itself (pickled as it is: tuples and bytes need no encoding), which the web process
    makes on its own manager. The worker serves no clients, so it has no rooms to keep."""

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link

    def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:  # an acknowledgement would have to come back here
            raise ValueError("a worker process cannot wait for a client's acknowledgement")
        self.link.send(
            {
                "kind": "socketio",
                "method": "emit",
                "args": {
                    "event": event,
                    "data": data,
                    "namespace": namespace,
                    "room": to or room,
                    "skip_sid": skip_sid,
                },
            }
        )

    def close_room(self, room: Any, namespace: str) -> None:
        self.link.send(
            {
                "kind": "socketio",
                "method": "close_room",
                "args": {"room": room, "namespace": namespace},
            }
        )


def serve_link(
    link: Link, on_message: Callable[[str], None], *, on_close: Callable[[], None]
) -> None:
    """The worker's reader: hand each message kind to ``on_message``; call ``on_close`` when the
    web process is gone (its end closed: exited, or killed)."""

    def run() -> None:
        try:
            for message in link.receive():
                try:
                    on_message(str(message.get("kind")))
                except Exception:
                    log.exception("worker link: message %r failed", message.get("kind"))
        except Exception:  # an unreadable frame: the link is no use any more
            log.exception("worker link: reading failed")
        finally:
            log.info("the link to the web process closed: the worker stops")
            link.close()
            on_close()

    threading.Thread(target=run, name="helpdesk-worker-link", daemon=True).start()


# --- the web process's side ----------------------------------------------------------------------


def relay(message: dict[str, Any]) -> None:
    """Make the Socket.IO call the worker process handed over, on this process's manager (with
    a message queue that one also publishes it to the other web processes)."""
    from helpdesk.extensions import socketio

    manager = socketio.server.manager
    if message["method"] == "emit":
        manager.emit(**message["args"])
    else:
        manager.close_room(**message["args"])


def _worker_command() -> list[str]:
    script = Path(sys.executable).with_name("helpdesk")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from helpdesk.cli import main; main()"]


class WorkerProcess:
    """The worker's services in a child process of the web process, restarted if it dies."""

    RESTART_MAX_SECONDS = 30.0

    def __init__(
        self,
        app: Flask,
        *,
        spawn: Callable[[Callable[[], None]], Any],
        sleep: Callable[[float], None],
        shutting_down: Callable[[], bool] = lambda: False,
    ) -> None:
        """``spawn``/``sleep``: the server's own (greenlets under gevent, threads otherwise);
        ``shutting_down``: true once the server is stopping (then a worker that exits is not
        started again: under a process-group SIGTERM it exits before the server does)."""
        self.app = app
        self._shutting_down = shutting_down
        self._spawn = spawn
        self._sleep = sleep
        self.proc: subprocess.Popen[bytes] | None = None
        self.link: Link | None = None
        self.starts = 0
        self._stopping = False
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        from helpdesk.services import channels as channel_service

        self._start_child()
        self._unsubscribe = channel_service.on_channels_changed(self._channels_changed)
        self._spawn(self._supervise)

    def _env(self, fd: int) -> dict[str, str]:
        config = self.app.config
        return {
            **os.environ,
            # Plain threads: the worker serves no connections, and its parser processes and
            # blocking IMAP and database calls are what threads are for.
            "HELPDESK_ASYNC_MODE": "threading",
            "HELPDESK_INSTANCE_PATH": self.app.instance_path,
            "HELPDESK_DATABASE_URL": str(config["DATABASE_URL"]),
            "HELPDESK_SECRET_KEY": str(config["SECRET_KEY"]),
            f"HELPDESK_{LINK_FD_CONFIG}": str(fd),
        }

    def _start_child(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments
                [*_worker_command(), "worker", "--services-only"],
                env=self._env(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        link = self.link = Link(ours)
        self.starts += 1
        if self._stopping:  # stop() ran while Popen yielded (gevent): this one goes too
            link.close()
            self.proc.terminate()
            return
        self._spawn(lambda: self._read(link))
        log.info("worker process %d started", self.proc.pid)

    def _read(self, link: Link) -> None:
        from helpdesk import worker

        try:
            for message in link.receive():
                kind = message.get("kind")
                try:
                    if kind == "socketio":
                        relay(message)
                    elif kind == "kick":
                        worker.kick()
                except Exception:
                    log.exception("worker link: message %r failed", kind)
        except Exception:  # an unreadable frame: close, so the worker ends and is restarted
            log.exception("worker link: reading failed")
        finally:
            link.close()

    def _channels_changed(self) -> None:
        if self.link is not None:
            self.link.notify("channels_changed")

    def _supervise(self) -> None:
        delay = 1.0
        while True:
            proc = self.proc
            assert proc is not None
            began = time.monotonic()
            code = proc.wait()
            if self._stopping or self._shutting_down():
                return
            if time.monotonic() - began > 60:
                delay = 1.0  # it ran a good while: this is a new failure, not a crash loop
            log.error("worker process %d exited (%s); restarting in %.0fs", proc.pid, code, delay)
            self._sleep(delay)
            if self._stopping or self._shutting_down():
                return
            delay = min(delay * 2, self.RESTART_MAX_SECONDS)
            try:
                self._start_child()
            except OSError:
                log.exception("could not start the worker process")

    def stop(self, timeout: float = 4.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``: a batch cut short is rolled back whole and
        read again from the checkpoint next time."""
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.link is not None:
            self.link.close()
