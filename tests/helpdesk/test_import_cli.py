"""``helpdesk import tickets FILE.json``: the API's ticket import from a file, checked whole
before anything is written, imported in parts, safe to run again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Ticket
from tests.helpdesk.test_cli_startup import helpdesk_env, run_cli


def _ticket(n: int, **over: Any) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "external_id": f"otrs-{n}",
        "subject": f"প্রশ্ন {n}",
        "status": "closed",
        "created_at": "2017-04-14T10:00:00+06:00",
        "customer": {"email": f"c{n % 7}@example.com", "name": "গ্রাহক"},
        "messages": [
            {
                "body": f"Question {n}",
                "created_at": "2017-04-14T10:00:00+06:00",
                "author": "customer",
            },
            {"body": "Answer", "created_at": "2017-04-14T12:00:00+06:00", "author": "agent"},
        ],
    }
    ticket.update(over)
    return ticket


def _count(session: Session) -> int:
    session.rollback()  # see what the command committed
    count = int(session.scalar(select(func.count()).select_from(Ticket)) or 0)
    session.rollback()  # and hold no lock while it runs (SQLite)
    return count


def test_a_file_of_more_than_one_request_is_imported_in_parts_and_skipped_the_second_time(
    app: Flask, admin: Agent, session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"tickets": [_ticket(n) for n in range(1203)]}), encoding="utf-8")
    env = helpdesk_env(app)

    dry, loaded = run_cli(env, "import", "tickets", str(path), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["imported"] == 1203 and loaded == []  # no web layer
    assert _count(session) == 0

    done, _loaded = run_cli(env, "import", "tickets", str(path), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["imported"] == 1203
    assert [t["number"] for t in result["tickets"]] == list(range(1001, 2204))
    assert _count(session) == 1203

    again, _loaded = run_cli(env, "import", "tickets", str(path))
    assert again.returncode == 0, again.stderr
    assert "Imported 0 tickets; 1203 imported before, skipped." in again.stdout
    assert _count(session) == 1203


def test_a_bad_ticket_anywhere_in_the_file_writes_nothing(
    app: Flask, admin: Agent, session: Session, tmp_path: Path
) -> None:
    tickets = [_ticket(n) for n in range(1100)]
    tickets[1050]["messages"][1]["agent"] = "nobody@example.com"
    tickets[1070]["status"] = "archived"
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tickets), encoding="utf-8")
    done, _loaded = run_cli(helpdesk_env(app), "import", "tickets", str(path))
    assert done.returncode == 1
    assert "tickets.1070.status: Unknown status." in done.stderr
    assert _count(session) == 0
    tickets[1070]["status"] = "closed"
    path.write_text(json.dumps(tickets), encoding="utf-8")
    done, _loaded = run_cli(helpdesk_env(app), "import", "tickets", str(path))
    assert done.returncode == 1
    assert "tickets.1050.messages.1.agent: No agent has this email address" in done.stderr
    assert _count(session) == 0


def test_a_file_is_cut_into_requests_worth_of_tickets_and_messages() -> None:
    from helpdesk.import_cli import _parts

    short = [{"messages": [{}] * 2}] * 2500
    assert _parts(short) == [(0, 1000), (1000, 2000), (2000, 2500)]
    long = [{"messages": [{}] * 30}] * 1000  # 20,000 messages fit 666 of them
    assert _parts(long) == [(0, 666), (666, 1000)]
    assert _parts([]) == []
