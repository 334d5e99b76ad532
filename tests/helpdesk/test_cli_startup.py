"""How fast a one-off ``helpdesk`` command starts: it builds the app without the web layer
(``create_app(web=False)``), so it never imports Socket.IO, the blueprints or the sign-in
(~2 s of start-up before, ~0.7 s now); ``serve`` and ``worker`` still get the whole app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services import announcements
from helpdesk.services import events as live_events
from helpdesk.services.events import capture_events
from tests.conftest import MakeTicket

# What a one-off command must not import: the web layer and what only it needs.
WEB_MODULES = (
    "flask_socketio",
    "engineio",
    "flask_limiter",
    "flask_wtf",
    "helpdesk.web",
    "helpdesk.realtime",
    "kb.views",
    "channels.portal.views",
    "channels.chat.namespace",
    "channels.email.admin",
)

# Runs the console script's main() with the given arguments and, once it has exited, prints
# which of WEB_MODULES it imported (to stderr, after a marker line).
_RUN = """
import atexit, json, sys
names = json.loads(sys.argv[1])
def report():
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in names or any(
        m == n or m.startswith(n + ".") for n in names))
    sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
atexit.register(report)
sys.argv = ["helpdesk", *sys.argv[2:]]
from helpdesk.cli import main
main()
"""


def helpdesk_env(app: Flask) -> dict[str, str]:
    return {
        **os.environ,
        "HELPDESK_INSTANCE_PATH": app.instance_path,
        "HELPDESK_DATABASE_URL": app.config["DATABASE_URL"],
        "HELPDESK_SECRET_KEY": app.config["SECRET_KEY"],
        "HELPDESK_MAIL_FROM": app.config["MAIL_FROM"],
    }


def run_cli(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``helpdesk ARGS`` as its own process: the result and the web modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(WEB_MODULES), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    marker = done.stderr.rfind("\nLOADED ")
    assert marker >= 0, done.stderr
    return done, json.loads(done.stderr[marker + len("\nLOADED ") :])


def test_one_off_commands_do_not_import_the_web_layer(app: Flask, make_ticket: MakeTicket) -> None:
    make_ticket(sender="rahim@example.com", subject="পাসওয়ার্ড রিসেট")
    env = helpdesk_env(app)

    listed, loaded = run_cli(env, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["subject"] for row in json.loads(listed.stdout)] == ["পাসওয়ার্ড রিসেট"]
    assert loaded == []

    shown, loaded = run_cli(env, "--help")
    assert shown.returncode == 0, shown.stderr
    for command in ("agent", "channel", "demo", "kb", "mail", "serve", "tickets", "worker"):
        assert f"\n  {command} " in shown.stdout
    assert loaded == []


def test_serve_and_worker_still_get_the_web_app(app: Flask) -> None:
    """The commands that run the web or emit to browsers build the whole app, as before."""
    done, loaded = run_cli(helpdesk_env(app), "worker", "--help")
    assert done.returncode == 0, done.stderr
    assert "flask_socketio" in loaded and "helpdesk.realtime" in loaded


def test_a_parser_process_starts_without_flask(app: Flask) -> None:
    """The parser processes of a big fetch import only the parser (``channels.email.prepare``):
    no Flask, no SQLAlchemy, so they are parsing a fraction of a second after the fetch
    starts."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, channels.email.prepare; print(sorted({m.split('.')[0] for m in"
            " sys.modules} & {'flask', 'sqlalchemy', 'werkzeug', 'jinja2'}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_with_nobody_listening_no_live_payloads_are_built(
    app: Flask, session: Session, make_ticket: MakeTicket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-off command without Socket.IO (no message queue) has nobody to tell about the
    tickets it changes: the agents' ticket summaries are not built (a tenth of storing a
    fetched mail, and a query for the tickets a reply continues). With a listener, they are."""
    built: list[int] = []
    real_summary = announcements.ticket_summary

    def summary(ticket: Any, people: Any = None) -> dict[str, Any]:
        built.append(ticket.id)
        return real_summary(ticket, people)

    monkeypatch.setattr(announcements, "ticket_summary", summary)
    with capture_events() as heard:
        first = make_ticket(sender="rahim@example.com", subject="heard")
    assert heard.names().count("ticket.created") == 1 and built == [first.ticket.id]

    built.clear()
    monkeypatch.setattr(live_events, "_publishers", [])
    make_ticket(sender="karim@example.com", subject="nobody listening")
    assert built == []
