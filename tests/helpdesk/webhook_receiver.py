"""A real HTTP receiver for webhook tests and bench/webhooks.py: a threaded ``http.server`` on
127.0.0.1 that records every request and verifies its signature with its own HMAC code (not the
helpdesk's), so a test awaits deliveries with a timeout instead of sleeping."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived
    path: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side of the contract, written from the documentation: HMAC-SHA256 keyed
    with the secret over ``"<timestamp>.<body>"``, hex, after ``sha256=``."""
    timestamp = headers.get("X-Helpdesk-Timestamp", "")
    given = headers.get("X-Helpdesk-Signature", "")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(given, "sha256=" + expected.hexdigest())


# What the receiver answers a request: (status, headers, body); a sleep is the receiver's own.
Responder = Callable[[Received], tuple[int, dict[str, str], bytes]]


def ok(_request: Received) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b"ok"


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self.responder: Responder = ok
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    dict(self.headers.items()), self.rfile.read(length), time.time(), self.path
                )
                status, headers, body = receiver.responder(request)
                with receiver._cond:
                    receiver.requests.append(request)
                    receiver._cond.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading (a capped answer)
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            # The default backlog (5) refuses connections when the helpdesk sends its 32
            # concurrent deliveries: failed attempts that were the receiver's fault.
            request_queue_size = 256

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(
        self, count: int, timeout: float = 10.0, pred: Callable[[Received], bool] | None = None
    ) -> list[Received]:
        """Wait until ``count`` requests (matching ``pred``) have arrived; returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if pred is None or pred(r)]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(got)} of {count} deliveries in {timeout}s")
                self._cond.wait(remaining)


def pump(app: Any, *, own_thread: bool = False) -> int:
    """What the worker's webhook round does: fan the new events out, then send what is due;
    the number sent. ``own_thread``: the fan-out in a thread of its own, with no request
    around it, as in the worker (payloads that build URLs must not lean on a request)."""
    from concurrent.futures import ThreadPoolExecutor

    from helpdesk.extensions import db
    from helpdesk.services import stream, webhook_delivery, webhook_fanout

    def fan_out() -> None:
        with db.transaction(app) as s:
            stream.consume(
                s,
                webhook_fanout.CONSUMER,
                webhook_fanout.fan_out,
                start_at_end=True,
                prepare=webhook_fanout.prepare,
            )

    def fan_out_alone() -> None:
        with app.app_context():
            fan_out()

    db.session.commit()  # the test's own reads end, as a request's would (SQLite's write lock)
    if own_thread:
        with ThreadPoolExecutor(1) as worker:
            worker.submit(fan_out_alone).result()
    else:
        fan_out()
    return webhook_delivery.deliver_now(app)
