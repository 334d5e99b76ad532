"""``helpdesk webhooks listen``: a webhook receiver for trying webhooks on one machine.

A standard-library HTTP server that accepts every POST (any path), answers ``204``, and prints
each delivery: its event, delivery id, timestamp and the body as indented JSON. Given the
webhook's secret (``--secret``) it checks ``X-Helpdesk-Signature`` the way a receiver should
(docs/webhooks.md, "Verifying the signature"): ``signature ok``, or ``signature BAD`` and a
``401`` (the delivery then shows as failed and retried). It needs no database: ``webhooks`` is
one of :data:`helpdesk.cli.CORE_COMMANDS`, so the app it runs on is built without the web layer,
and it only reads the configuration for the language of what it prints.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click
from flask import Flask, current_app

from helpdesk.i18n import _

MAX_BODY_BYTES = 10 * 1024 * 1024


def signature_ok(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """``given`` is ``sha256=`` and the hex HMAC-SHA256, keyed with ``secret``, of
    ``"<timestamp>.<body>"`` (compared in constant time)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body, hashlib.sha256)
    expected = ("sha256=" + mac.hexdigest()).encode("ascii")
    return hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape"))


def _when(timestamp: str) -> str:
    """The Unix time of ``X-Helpdesk-Timestamp`` as an ISO date and time in UTC."""
    try:
        return datetime.fromtimestamp(int(timestamp), UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return "?"


def _pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", "replace")


class _Listener(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: Flask, secret: str | None) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.secret = secret
        self.print_lock = threading.Lock()  # one delivery's lines together


class _Handler(BaseHTTPRequestHandler):
    server: _Listener

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._answer(400, b"")
            return
        body = self.rfile.read(length)
        timestamp = self.headers.get("X-Helpdesk-Timestamp", "")
        secret = self.server.secret
        with self.server.app.app_context():
            lines = [
                f"{self.command} {self.path}: "
                + _(
                    "%(event)s, delivery %(delivery)s, timestamp %(timestamp)s (%(time)s)",
                    event=self.headers.get("X-Helpdesk-Event", "?"),
                    delivery=self.headers.get("X-Helpdesk-Delivery", "?"),
                    timestamp=timestamp or "?",
                    time=_when(timestamp),
                )
            ]
            good = None
            if secret is not None:
                given = self.headers.get("X-Helpdesk-Signature", "")
                good = signature_ok(secret, timestamp, body, given)
                lines.append(_("signature ok") if good else _("signature BAD"))
            lines.append(_pretty(body))
            refusal = _("Bad signature.") if good is False else ""
        with self.server.print_lock:
            click.echo("\n".join(lines) + "\n")
        if good is False:
            self._answer(401, refusal.encode("utf-8") + b"\n")
        else:
            self._answer(204, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # each delivery is printed by do_POST


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhooks (registered under Admin -> Webhooks or through the API)."""


@webhooks_group.command("listen")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--secret",
    default=None,
    help="The webhook's secret (whsec_...): check each request's signature, refuse bad ones.",
)
def webhooks_listen(host: str, port: int, secret: str | None) -> None:
    """Receive webhook deliveries here and print them (for trying webhooks locally)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        server = _Listener((host, port), app, secret)
    except OSError as exc:
        raise click.ClickException(
            _("Cannot listen on %(address)s: %(error)s", address=f"{host}:{port}", error=exc)
        ) from None
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(
        _(
            "Listening for webhook deliveries on %(url)s (any path). Stop with Ctrl+C.",
            url=f"http://{shown_host}:{port}/",
        )
    )
    click.echo(
        _(
            "The helpdesk calls it when started with %(setting)s.",
            setting=f"HELPDESK_WEBHOOK_ALLOWED_HOSTS={shown_host}:{port}",
        )
    )
    if secret is None:
        click.echo(_("Signatures are not checked: give the webhook's secret with --secret."))
    click.echo("")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
