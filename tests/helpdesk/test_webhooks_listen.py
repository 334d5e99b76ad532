"""``helpdesk webhooks listen``, the developer's receiver, as a real process on a free port: a
real webhook of the helpdesk delivers to it, it prints the delivery and checks its signature;
a forged request, or one signed with a secret it was not given, gets a 401."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.models import Agent, DeliveryState, WebhookDelivery
from helpdesk.services import stream, webhook_delivery, webhook_fanout, webhooks
from tests.conftest import MakeTicket
from tests.helpdesk.test_cli_startup import run_cli
from tests.servers import free_port


class Listener:
    def __init__(self, proc: subprocess.Popen[bytes], out: Path, port: int) -> None:
        self.proc = proc
        self.out = out
        self.url = f"http://127.0.0.1:{port}/hook"

    def output(self) -> str:
        return self.out.read_text(encoding="utf-8")

    def wait_for(self, text: str, count: int = 1, timeout: float = 15.0) -> str:
        """The output once ``text`` appeared ``count`` times in it."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.output()
            if out.count(text) >= count:
                return out
            if self.proc.poll() is not None:
                raise AssertionError(f"helpdesk webhooks listen exited:\n{out}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not printed within {timeout}s:\n{out}")
            time.sleep(0.05)

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)


@contextlib.contextmanager
def listen(tmp_path: Path, port: int, *args: str) -> Iterator[Listener]:
    env = {
        **os.environ,
        "HELPDESK_INSTANCE_PATH": str(tmp_path / "listener"),
        # It needs no database: one nobody can reach does not keep it from starting.
        "HELPDESK_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere",
    }
    out = tmp_path / "listen.out"
    exe = Path(sys.executable).with_name("helpdesk")
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [str(exe), "webhooks", "listen", "--port", str(port), *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    listener = Listener(proc, out, port)
    try:
        listener.wait_for("Listening for webhook deliveries")
        yield listener
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def app_config(port: int) -> dict[str, Any]:
    return {"WEBHOOK_ALLOWED_HOSTS": f"127.0.0.1:{port}"}


def pump(app: Flask) -> int:
    """What the worker does: fan the new events out, then send what is due."""
    db.session.commit()
    with db.transaction(app) as s:
        stream.consume(
            s,
            webhook_fanout.CONSUMER,
            webhook_fanout.fan_out,
            start_at_end=True,
            prepare=webhook_fanout.prepare,
        )
    return webhook_delivery.deliver_now(app)


def rows(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_delivery_is_printed_and_its_signature_checked(
    app: Flask,
    session: Session,
    admin: Agent,
    make_ticket: MakeTicket,
    tmp_path: Path,
    port: int,
) -> None:
    url = f"http://127.0.0.1:{port}/hook"
    webhook, secret = webhooks.create_webhook(session, admin, url, ["ticket.created"])
    session.commit()
    with listen(tmp_path, port, "--secret", secret) as listener:
        ticket = make_ticket(sender="rahim@example.com", subject="Refund for order 7").ticket
        assert pump(app) == 1
        out = listener.wait_for("signature ok")
        (row,) = rows(session)
        # The helpdesk counts it delivered: the listener answered 204.
        assert (row.state, row.response_code) == (DeliveryState.DELIVERED, 204)
        timestamp = row.request_headers["X-Helpdesk-Timestamp"]
        assert f"POST /hook: ticket.created, delivery {row.id}, timestamp {timestamp} (" in out
        # The body as indented JSON, as sent.
        assert f'  "number": {ticket.number},' in out
        assert '"subject": "Refund for order 7"' in out
        assert '"event": "ticket.created"' in out
        assert "signature BAD" not in out

        # The same delivery with its body changed on the way: refused, and said so.
        forged = row.request_body.replace("Refund for order 7", "Refund for order 8")
        assert listener.post(forged.encode(), dict(row.request_headers)) == 401
        out = listener.wait_for("signature BAD")
        assert '"subject": "Refund for order 8"' in out

        # A secret the listener was not given (rotated): the delivery fails and is retried.
        webhooks.rotate_secret(session, admin, webhook)
        session.commit()
        make_ticket(sender="karim@example.com", subject="Where is my parcel?")
        assert pump(app) == 1
        listener.wait_for("signature BAD", count=2)
        second = rows(session)[-1]
        assert (second.state, second.response_code) == (DeliveryState.PENDING, 401)
        assert second.error == "HTTP 401"


def test_without_a_secret_everything_is_accepted_and_printed(tmp_path: Path, port: int) -> None:
    with listen(tmp_path, port) as listener:
        assert "Signatures are not checked" in listener.output()
        body = json.dumps({"id": 5120, "event": "ticket.updated", "data": {"subject": "চা"}})
        status = listener.post(
            body.encode(),
            {"X-Helpdesk-Event": "ticket.updated", "X-Helpdesk-Delivery": "8812"},
        )
        assert status == 204
        out = listener.wait_for('"subject": "চা"')
        assert "POST /hook: ticket.updated, delivery 8812" in out
        assert "signature" not in out.split("ticket.updated, delivery 8812")[1]


def test_it_starts_without_the_web_layer(tmp_path: Path) -> None:
    """``webhooks`` is a core command: its app is built without the web's modules."""
    env = {**os.environ, "HELPDESK_INSTANCE_PATH": str(tmp_path / "listener")}
    done, loaded = run_cli(env, "webhooks", "listen", "--help")
    assert done.returncode == 0, done.stderr
    assert "--secret" in done.stdout
    assert loaded == []
