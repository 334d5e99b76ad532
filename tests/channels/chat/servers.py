"""Real `helpdesk serve` processes for the chat tests (and bench/chat.py), plus Socket.IO clients.

:class:`ChatSite` is one database + instance folder shared by any number of server processes
(:meth:`ChatSite.serve`), and an in-process app on the same database so tests create agents and
teams through the real services. :class:`Visitor` and :class:`AgentSocket` are python-socketio
clients that record every event in thread-safe queues, so tests *await* events with a timeout and
never sleep.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import socketio
from flask import Flask

from helpdesk import create_app
from helpdesk.db import Base
from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole, Team
from helpdesk.services.agents import create_agent, create_team
from tests.servers import free_port, wait_http

PASSWORD = "correct horse battery"
TIMEOUT = 10.0


@dataclass
class ServerProcess:
    url: str
    port: int
    env: dict[str, str]
    log: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).with_name("helpdesk")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: gunicorn forks a worker, and "the server died" means
                # both of them (see kill()).
                start_new_session=True,
            )
        wait_http(self.url + "/login", self.proc, self.log)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer stops it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_threads(self) -> int:
        """OS threads of gunicorn's worker process (the arbiter's child) serving the app."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == self.pid():
                return len(list((entry / "task").iterdir()))
        raise AssertionError("no worker process under the server")


@dataclass
class ChatSite:
    """One helpdesk installation (database, instance folder, secret) for server processes."""

    instance: Path
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: list[ServerProcess] = field(default_factory=list)
    app: Flask | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "HELPDESK_INSTANCE_PATH": str(self.instance),
            "HELPDESK_DATABASE_URL": self.database_url,
            "HELPDESK_SECRET_KEY": "chat-test-secret",
            "HELPDESK_PASSWORD_HASH_PROFILE": "cheapest",
            "HELPDESK_WORKER_POLL_SECONDS": "0.5",
            "HELPDESK_RATELIMIT_LOGIN": "1000 per minute",
            # Tests leave offers unanswered on purpose; only test_offers.py (which sets a short
            # timeout on the channel) wants them to move on, not a busy machine's slow test.
            "HELPDESK_CHAT_OFFER_TIMEOUT": "600",
            **self.extra_env,
        }
        return env

    @classmethod
    @contextlib.contextmanager
    def on(
        cls,
        request: Any,
        db_backend: str,
        instance: Path,
        extra_env: dict[str, str] | None = None,
    ) -> Iterator[ChatSite]:
        """A set-up site on the test's database backend (a fresh PostgreSQL database, or SQLite
        in ``instance``), closed afterwards: what the server-process fixtures share."""
        if db_backend == "postgresql":
            postgres = request.getfixturevalue("postgres")
            url = postgres.create_database(f"site_{uuid.uuid4().hex[:10]}")
        else:
            url = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
        site = cls(instance=instance, database_url=url, extra_env=dict(extra_env or {}))
        site.setup()
        try:
            yield site
        finally:
            site.close()

    def setup(self) -> Flask:
        exe = Path(sys.executable).with_name("helpdesk")
        subprocess.run(
            [str(exe), "init"], env=self.env, check=True, capture_output=True, timeout=120
        )
        config = {
            "INSTANCE_PATH": str(self.instance),
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "chat-test-secret",
            "WORKER_ENABLED": False,
            "PASSWORD_HASH_PROFILE": "cheapest",
            # Not the message queue: Flask-SocketIO keeps a queue in the shared extension's
            # options for every later app of this test process; the servers get it from env.
            **{
                k.removeprefix("HELPDESK_"): v
                for k, v in self.extra_env.items()
                if k != "HELPDESK_MESSAGE_QUEUE"
            },
        }
        self.app = create_app(config)
        # Tables added since the last migration (the lead generates migrations at integration).
        Base.metadata.create_all(db.engine(self.app))
        return self.app

    def serve(self, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        server = ServerProcess(
            url=f"http://127.0.0.1:{port}",
            port=port,
            env={**self.env, "HELPDESK_BASE_URL": f"http://127.0.0.1:{port}", **(env or {})},
            log=self.instance / f"serve-{port}.log",
            args=list(args),
        )
        server.start()
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self.app is not None:
            db.engine(self.app).dispose()

    # -- data through the real services ----------------------------------------------------------

    def agent(self, name: str, team: Team | None = None, language: str | None = None) -> Agent:
        assert self.app is not None
        with self.app.app_context():
            email = f"{re.sub(r'[^a-z]', '', name.lower())}-{uuid.uuid4().hex[:6]}@example.com"
            agent = create_agent(db.session, email, name, PASSWORD, AgentRole.AGENT, language)
            if team is not None:
                row = db.session.get(Team, team.id)
                assert row is not None
                row.members.append(agent)
            db.session.commit()
            return agent

    def team(self, name: str | None = None) -> Team:
        assert self.app is not None
        with self.app.app_context():
            team = create_team(db.session, name or f"Team {uuid.uuid4().hex[:6]}")
            db.session.commit()
            return team

    def run(self, fn: Callable[[Any], Any]) -> Any:
        """Call ``fn(session)`` in a transaction of the test's app (committed on success)."""
        assert self.app is not None
        with self.app.app_context():
            result = fn(db.session)
            db.session.commit()
            return result


class Recorder:
    """Every event a client hears, in order, awaitable by name and predicate."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, name: str, data: Any) -> None:
        self.events.put((name, data))

    def wait(
        self, name: str, pred: Callable[[Any], bool] = lambda _d: True, timeout: float = TIMEOUT
    ) -> Any:
        # Events already seen (while awaiting another) count too.
        for i, (seen_name, data) in enumerate(self.seen):
            if seen_name == name and pred(data):
                del self.seen[i]
                return data
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {name!r} event in {timeout}s; saw {self.seen!r}")
            try:
                seen_name, data = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if seen_name == name and pred(data):
                return data
            self.seen.append((seen_name, data))

    def drain(self) -> list[tuple[str, Any]]:
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                return self.seen


def _client(recorder: Recorder, namespace: str) -> socketio.Client:
    sio = socketio.Client(reconnection=False)
    sio.on("*", lambda event, data=None: recorder(event, data), namespace=namespace)
    return sio


class Visitor:
    """A widget, in Python: a signed token kept across connections and client-made line ids."""

    def __init__(self, language: str = "en", token: str | None = None) -> None:
        self.token = token
        self.language = language
        self.events = Recorder()
        self.sio: socketio.Client | None = None

    def connect(self, url: str) -> dict[str, Any]:
        self.sio = _client(self.events, "/chat")
        self.sio.connect(
            url,
            namespaces=["/chat"],
            transports=["websocket"],
            auth={"token": self.token, "language": self.language},
            wait_timeout=TIMEOUT,
        )
        hello = self.call("chat.hello", {})
        assert hello["ok"], hello
        if hello.get("token"):
            self.token = hello["token"]
        return hello

    def call(self, event: str, data: dict[str, Any]) -> Any:
        assert self.sio is not None
        return self.sio.call(event, data, namespace="/chat", timeout=TIMEOUT)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        assert self.sio is not None
        self.sio.emit(event, data, namespace="/chat")

    def start(self, text: str, **kwargs: Any) -> Any:
        return self.call("chat.start", {"client_id": new_id(), "text": text, **kwargs})

    def say(self, text: str, client_id: str | None = None) -> Any:
        return self.call("chat.message", {"client_id": client_id or new_id(), "text": text})

    def disconnect(self) -> None:
        if self.sio is not None and self.sio.connected:
            self.sio.disconnect()


class AgentSocket:
    """An agent signed in over HTTP (CSRF and all), then on the /agent namespace."""

    def __init__(self, email: str, password: str = PASSWORD) -> None:
        self.email = email
        self.password = password
        self.events = Recorder()
        self.http = requests.Session()
        self.sio: socketio.Client | None = None

    def login(self, url: str) -> None:
        page = self.http.get(url + "/login", timeout=TIMEOUT)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token, page.text[:500]
        response = self.http.post(
            url + "/login",
            data={"email": self.email, "password": self.password, "csrf_token": token.group(1)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert response.status_code == 302, response.text[:500]

    def connect(self, url: str, *, online: bool = True) -> None:
        if not self.http.cookies:
            self.login(url)
        self.sio = _client(self.events, "/agent")
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        self.sio.connect(
            url,
            namespaces=["/agent"],
            transports=["websocket"],
            # The same User-Agent as the sign-in: sessions are bound to it ("strong" protection).
            headers={"Cookie": cookie, "User-Agent": str(self.http.headers["User-Agent"])},
            wait_timeout=TIMEOUT,
        )
        if online:
            ack = self.call("presence.set", {"status": "online"})
            assert ack == {"ok": True, "status": "online"}, ack

    def call(self, event: str, data: dict[str, Any]) -> Any:
        assert self.sio is not None
        return self.sio.call(event, data, namespace="/agent", timeout=TIMEOUT)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        assert self.sio is not None
        self.sio.emit(event, data, namespace="/agent")

    def send(self, ticket_id: int, text: str, client_id: str | None = None) -> Any:
        return self.call(
            "chat.send", {"ticket_id": ticket_id, "text": text, "client_id": client_id or new_id()}
        )

    def disconnect(self) -> None:
        if self.sio is not None and self.sio.connected:
            self.sio.disconnect()


def new_id() -> str:
    return uuid.uuid4().hex
