"""A mailbox that already holds mail, behind the default server: what every new installation meets.

``helpdesk serve`` in its default mode (gevent, worker loop and mail fetching on) against the
session's Dovecot holding a backlog of mixed mail (Cc, replies, attachments, Bengali; see
``corpus.py``). While it drains, a client asks for ``GET /login`` over and over: the web must keep
answering. Every mail must become exactly one message, also when the server is killed with -9
halfway and started again, and mail must keep arriving after Dovecot restarts.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.accounts import ServerConfig, add_email_channel
from helpdesk.db import read_only_transactions
from helpdesk.models import AgentRole, Direction, Message
from helpdesk.services.agents import create_agent
from tests.channels.chat.servers import PASSWORD, AgentSocket, ChatSite, ServerProcess
from tests.channels.email.conftest import Mailbox, form_for, make_mail
from tests.channels.email.corpus import make_corpus
from tests.servers import DovecotServer

BACKLOG = 2000
LOGIN_P95_SECONDS = 0.5  # the bound for the web while a backlog drains
DRAIN_TIMEOUT = 180.0
# The default server, what `make run` starts: gevent, the worker on.
DEFAULT_SERVER = {"HELPDESK_ASYNC_MODE": "gevent"}


@pytest.fixture
def site(
    request: pytest.FixtureRequest, db_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChatSite]:
    with ChatSite.on(request, db_backend, tmp_path_factory.mktemp("backlog-instance")) as site:
        yield site


def _mailbox(dovecot: DovecotServer) -> Mailbox:
    user = f"backlog-{uuid.uuid4().hex[:8]}"
    dovecot.add_user(user, "backlog-pw")
    return Mailbox(dovecot, user, "backlog-pw")


def _add_channel(site: ChatSite, mailbox: Mailbox) -> None:
    imap = ServerConfig(
        host=mailbox.dovecot.host,
        port=mailbox.dovecot.port,
        user=mailbox.user,
        password=mailbox.password,
        security="none",
    )
    site.run(lambda s: add_email_channel(s, "Support", address="support@helpdesk.test", imap=imap))


def _inbound_ids(site: ChatSite) -> list[str]:
    def read(session: Session) -> list[str]:
        query = select(Message.message_id).where(Message.direction == Direction.INBOUND)
        return [str(m) for m in session.scalars(query)]

    with read_only_transactions():
        result: list[str] = site.run(read)
    return result


class LoginProbe(threading.Thread):
    """``GET /login`` back to back, each with a 5 s timeout, timing every answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seconds: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        http = requests.Session()
        while not self.stop.is_set():
            began = time.perf_counter()
            try:
                response = http.get(self.url + "/login", timeout=5)
                if response.status_code != 200:
                    self.failures.append(f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                self.failures.append(type(exc).__name__)
            self.seconds.append(time.perf_counter() - began)
            self.stop.wait(0.02)

    def finish(self) -> tuple[float, int]:
        self.stop.set()
        self.join(10)
        return statistics.quantiles(self.seconds, n=20)[-1], len(self.seconds)


def _wait_for(site: ChatSite, expected: int, timeout: float = DRAIN_TIMEOUT) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        ids = _inbound_ids(site)
        if len(ids) >= expected or time.monotonic() > deadline:
            return ids
        time.sleep(0.5)  # polling the database for progress, not waiting for a guess


def _assert_each_once(ids: list[str], expected: list[str]) -> None:
    repeats = [key for key, n in Counter(ids).items() if n > 1]
    assert not repeats, f"{len(repeats)} mails stored twice, e.g. {repeats[:3]}"
    missing = set(expected) - set(ids)
    assert not missing, f"{len(missing)} of {len(expected)} missing, e.g. {sorted(missing)[:3]}"


def test_a_backlog_drains_while_the_web_keeps_answering(
    site: ChatSite, dovecot: DovecotServer
) -> None:
    mails, facts = make_corpus(BACKLOG, seed=21)
    assert facts.kinds["cc_then_from"] > 20 and facts.kinds["attachment"] > 100  # the mix
    mailbox = _mailbox(dovecot)
    mailbox.append(*mails)
    _add_channel(site, mailbox)

    server = site.serve(env=DEFAULT_SERVER)
    agent = AgentSocket(site.agent("Queue Watcher").email)
    agent.connect(server.url, online=False)
    probe = LoginProbe(server.url)
    probe.start()
    began = time.monotonic()
    ids = _wait_for(site, len(facts.stored_ids))
    drained = time.monotonic() - began
    p95, asked = probe.finish()

    _assert_each_once(ids, facts.stored_ids)
    assert len(ids) == len(facts.stored_ids)
    assert not probe.failures, f"{len(probe.failures)} of {asked}: {probe.failures[:5]}"
    assert p95 <= LOGIN_P95_SECONDS, f"GET /login p95 {p95:.3f}s over {asked} requests"
    # Mail is fetched in the worker process: its announcements still reach the agents' browsers.
    created = agent.events.wait("ticket.created")
    assert created["number"] >= 1
    agent.disconnect()
    print(f"\n{BACKLOG} mails in {drained:.1f}s; GET /login p95 {p95 * 1000:.0f} ms ({asked})")

    # Dovecot goes away and comes back: the watcher reconnects and new mail still arrives.
    dovecot.restart()
    later = [make_mail(sender=f"a{i}@example.com", message_id=f"after-{i}@x") for i in range(20)]
    mailbox.append(*later)
    ids = _wait_for(site, len(facts.stored_ids) + 20, timeout=60)
    _assert_each_once(ids, [*facts.stored_ids, *(f"after-{i}@x" for i in range(20))])


def test_killed_mid_backlog_and_restarted_every_mail_arrives_once(
    site: ChatSite, dovecot: DovecotServer
) -> None:
    mails, facts = make_corpus(BACKLOG, seed=22)
    mailbox = _mailbox(dovecot)
    mailbox.append(*mails)
    _add_channel(site, mailbox)

    server = site.serve(env=DEFAULT_SERVER)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while len(_inbound_ids(site)) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL to the whole group: web process, worker process, parser processes
    before = len(_inbound_ids(site))
    assert 200 <= before < len(facts.stored_ids), f"{before} stored before the kill"

    server.start()  # the same port and environment
    probe = LoginProbe(server.url)
    probe.start()
    ids = _wait_for(site, len(facts.stored_ids))
    p95, asked = probe.finish()
    _assert_each_once(ids, facts.stored_ids)
    assert len(ids) == len(facts.stored_ids)
    assert not probe.failures, f"{len(probe.failures)} of {asked}: {probe.failures[:5]}"
    assert p95 <= LOGIN_P95_SECONDS, f"GET /login p95 {p95:.3f}s over {asked} requests"


def test_a_worker_process_that_dies_is_restarted_and_mail_goes_on(
    site: ChatSite, dovecot: DovecotServer
) -> None:
    mailbox = _mailbox(dovecot)
    _add_channel(site, mailbox)
    server = site.serve(env=DEFAULT_SERVER)
    mailbox.append(make_mail(message_id="first@x"))
    assert "first@x" in _wait_for(site, 1, timeout=30)

    children = _worker_processes(server)
    assert len(children) == 1, children
    parsers = _children_of(children[0])  # started with the first mailbox
    assert parsers, "no parser processes under the worker process"
    os.kill(children[0], signal.SIGKILL)
    mailbox.append(make_mail(sender="second@example.com", message_id="second@x"))
    ids = _wait_for(site, 2, timeout=30)
    assert sorted(ids) == ["first@x", "second@x"]
    assert _worker_processes(server) != children  # a new one took over
    # Its parser processes went with it: no orphans left behind by a crash.
    deadline = time.monotonic() + 15
    while (alive := [p for p in parsers if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"parser processes {alive} outlived their worker process"


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _worker_processes(server: ServerProcess) -> list[int]:
    """The pids of ``helpdesk worker --services-only`` processes under this server."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # stat[2]: the process group, the server's own (started in a session of its own)
        if b"--services-only" in argv and int(stat[2]) == server.pid():
            found.append(int(entry.name))
    return found


def test_a_mailbox_connected_in_the_admin_ui_drains_into_the_live_queue(
    site: ChatSite, dovecot: DovecotServer
) -> None:
    """README tour step 10, over HTTP against the running default server: the admin adds a
    mailbox holding mail; the worker process is told at once (its own refresh is 10 minutes
    here), the mail drains, and an agent's queue hears of the new tickets live."""
    mails, facts = make_corpus(300, seed=23)
    mailbox = _mailbox(dovecot)
    mailbox.append(*mails)
    admin = site.run(
        lambda s: create_agent(s, "admin-ui@example.com", "Ada", PASSWORD, AgentRole.ADMIN)
    )
    server = site.serve(env={**DEFAULT_SERVER, "HELPDESK_MAIL_CHANNEL_REFRESH_SECONDS": "600"})
    watcher = AgentSocket(site.agent("Queue Watcher").email)
    watcher.connect(server.url, online=False)
    browser = AgentSocket(admin.email)
    browser.login(server.url)
    page = browser.http.get(server.url + "/admin/mailboxes/new", timeout=10)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert token, page.text[:300]
    response = browser.http.post(
        server.url + "/admin/mailboxes/new",
        data={"csrf_token": token.group(1), **form_for(mailbox)},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:500]

    ids = _wait_for(site, len(facts.stored_ids), timeout=60)
    _assert_each_once(ids, facts.stored_ids)
    created = watcher.events.wait("ticket.created")
    assert created["number"] >= 1
    watcher.disconnect()
