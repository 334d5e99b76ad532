"""A live `helpdesk serve` for the portal's browser tests: mail goes to the test SMTP sink and
the knowledge base holds the fixture articles (imported with `helpdesk kb import`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveServer
from tests.servers import SmtpSink, free_port, helpdesk_serve

FIXTURES = Path(__file__).resolve().parent.parent / "kb" / "fixtures" / "articles.json"


def _write_kb(folder: Path) -> None:
    folder.mkdir()
    for a in json.loads(FIXTURES.read_text(encoding="utf-8")):
        front = {
            "title": a["title"],
            "language": a["language"],
            "tags": a.get("tags", []),
            "visibility": a.get("visibility", "public"),
            "status": a.get("status", "published"),
        }
        (folder / f"{a['slug']}.md").write_text(
            "---\n" + json.dumps(front, ensure_ascii=False) + "\n---\n" + a["body"],
            encoding="utf-8",
        )


@pytest.fixture(scope="session")
def portal_server(
    tmp_path_factory: pytest.TempPathFactory,
    smtp_sink_server: SmtpSink,
    e2e_database_url: Callable[[Path], str],
    db_backend: str,
) -> Iterator[LiveServer]:
    instance = tmp_path_factory.mktemp(f"portal-instance-{db_backend}")
    database_url = e2e_database_url(instance)
    port = free_port()
    smtp_sink_server.start()
    env = {
        **os.environ,
        "HELPDESK_INSTANCE_PATH": str(instance),
        "HELPDESK_PASSWORD_HASH_PROFILE": "cheapest",
        "HELPDESK_WORKER_POLL_SECONDS": "0.5",
        "HELPDESK_RATELIMIT_LOGIN": "1000 per minute",
        "HELPDESK_RATELIMIT_PORTAL": "1000 per hour",
        "HELPDESK_BASE_URL": f"http://127.0.0.1:{port}",
        "HELPDESK_SMTP_HOST": smtp_sink_server.host,
        "HELPDESK_SMTP_PORT": str(smtp_sink_server.port),
    }
    env.pop("HELPDESK_DATABASE_URL", None)  # the instance's helpdesk.cfg names it
    env.pop("HELPDESK_MESSAGE_QUEUE", None)
    server = LiveServer(
        f"http://127.0.0.1:{port}", instance, env, instance / "serve.log", database_url
    )
    server.helpdesk("init")
    server.helpdesk("demo")
    _write_kb(instance / "kb-src")
    server.helpdesk("kb", "import", str(instance / "kb-src"))
    with helpdesk_serve(env, port, server.log, ready_path="/portal/"):
        yield server
