"""Browser tests: a real `helpdesk serve` process, driven by Playwright in Debian's Chromium.

Every browser test runs on both databases like the rest of the suite (``--db`` narrows it,
``@pytest.mark.only_on(...)`` keeps a test where it means something): the servers here take
the session's ``db_backend`` and write the database's URL into their instance's
``helpdesk.cfg``, so `helpdesk` commands, the server and a test's own ``create_app`` on that
instance folder all use the same database. Chat tests set their site up with
``e2e_database_url`` (or ``ChatSite.on``) for the same reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.servers import RedisServer, free_port, helpdesk_serve

CHROMIUM = "/usr/bin/chromium"
# The flags a root CI machine with no network needs (see the env notes): no sandbox as root,
# and no background connections that the closed network would refuse by the dozen.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@dataclass
class LiveServer:
    url: str
    instance: Path
    env: dict[str, str]
    log: Path
    database_url: str = ""

    def helpdesk(self, *args: str) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("helpdesk")
        return subprocess.run(
            [str(exe), *args], env=self.env, capture_output=True, text=True, timeout=120, check=True
        )


@pytest.fixture(scope="session")
def e2e_redis(redis_server: RedisServer) -> RedisServer:
    return redis_server


@pytest.fixture(scope="session")
def e2e_database_url(request: pytest.FixtureRequest, db_backend: str) -> Callable[[Path], str]:
    """A fresh database on this session's backend for a server instance: a new PostgreSQL
    database on the session's cluster, or a SQLite file in the instance folder. The URL is
    written to the instance's ``helpdesk.cfg`` too."""

    def make(instance: Path) -> str:
        if db_backend == "postgresql":
            postgres = request.getfixturevalue("postgres")
            url = str(postgres.create_database(f"e2e_{uuid.uuid4().hex[:10]}"))
        else:
            url = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
        with (instance / "helpdesk.cfg").open("a", encoding="utf-8") as cfg:
            cfg.write(f"DATABASE_URL = {url!r}\n")
        return url

    return make


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory,
    e2e_redis: RedisServer,
    e2e_database_url: Callable[[Path], str],
    db_backend: str,
) -> Iterator[LiveServer]:
    instance = tmp_path_factory.mktemp(f"live-instance-{db_backend}")
    database_url = e2e_database_url(instance)
    port = free_port()
    env = {
        **os.environ,
        "HELPDESK_INSTANCE_PATH": str(instance),
        "HELPDESK_PASSWORD_HASH_PROFILE": "cheapest",
        # Several processes (the server, and this test process acting as a separate worker)
        # share Socket.IO events through Redis, as in a scaled-out deployment.
        "HELPDESK_MESSAGE_QUEUE": e2e_redis.url,
        "HELPDESK_WORKER_POLL_SECONDS": "0.5",
        "HELPDESK_RATELIMIT_LOGIN": "1000 per minute",
        "HELPDESK_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("HELPDESK_DATABASE_URL", None)  # the instance's helpdesk.cfg names it
    server = LiveServer(
        f"http://127.0.0.1:{port}", instance, env, instance / "serve.log", database_url
    )
    server.helpdesk("init")
    server.helpdesk("demo")
    with helpdesk_serve(env, port, server.log):
        yield server


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is missing: apt-get install chromium (make test does this)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def make(locale: str = "en-US") -> BrowserContext:
        ctx = browser.new_context(base_url=live_server.url, locale=locale)
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


QUEUE_URL = re.compile(r"/agent/queue(\?.*)?$")


def sign_in(page: Page, email: str = "agent@example.com", password: str = "demo-password") -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit].primary")
    # The queue redirects to the view the agent used last, with its arguments.
    page.wait_for_url(QUEUE_URL)


def wait_socket(page: Page) -> None:
    """Wait until the page's Socket.IO connection to /agent is up (an event, not a sleep)."""
    expect(page.locator("html[data-live=connected]")).to_be_attached()
