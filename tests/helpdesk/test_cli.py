"""The `helpdesk` command: init, demo, agents, tickets; clear errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from tests.conftest import MakeTicket


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def test_demo_then_tickets_list_json(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Demo loaded" in result.output
    rows = json.loads(runner.invoke(args=["tickets", "list", "--json"]).output)
    assert len(rows) == 8
    for key in (
        "id",
        "number",
        "subject",
        "status",
        "channel",
        "customer_email",
        "assignee",
        "message_count",
    ):
        assert key in rows[0]
    assert {r["channel"] for r in rows} == {"email", "portal", "chat"}
    assert any("পাসওয়ার্ড" in r["subject"] for r in rows)
    limited = json.loads(runner.invoke(args=["tickets", "list", "--json", "--limit", "3"]).output)
    assert len(limited) == 3
    email_only = json.loads(
        runner.invoke(args=["tickets", "list", "--json", "--channel", "email"]).output
    )
    assert email_only and {r["channel"] for r in email_only} == {"email"}
    # An organization's tickets, by its name in any case (the demo's Islam Traders has Nadia).
    traders = json.loads(
        runner.invoke(args=["tickets", "list", "--json", "--organization", "islam traders"]).output
    )
    assert traders and len(traders) < len(rows)
    assert {r["customer_id"] for r in traders} < {r["customer_id"] for r in rows}
    unknown = runner.invoke(args=["tickets", "list", "--organization", "Nobody Ltd"])
    assert unknown.exit_code != 0 and "No organization named" in unknown.output
    again = runner.invoke(args=["demo", "--if-empty"])
    assert "already present" in again.output


def test_tickets_show(runner: FlaskCliRunner) -> None:
    runner.invoke(args=["demo"])
    shown = json.loads(runner.invoke(args=["tickets", "show", "#1001", "--json"]).output)
    assert shown["number"] == 1001 and len(shown["messages"]) >= 2
    text = runner.invoke(args=["tickets", "show", "1001"]).output
    assert "#1001" in text and "[internal]" in text
    missing = runner.invoke(args=["tickets", "show", "999"])
    assert missing.exit_code == 1 and "not found" in missing.output
    bad = runner.invoke(args=["tickets", "show", "abc"])
    assert bad.exit_code == 2 and "not a ticket number" in bad.output


def test_agent_add_and_errors(runner: FlaskCliRunner) -> None:
    ok = runner.invoke(
        args=[
            "agent",
            "add",
            "Nusrat@Example.com",
            "--name",
            "নুসরাত",
            "--password",
            "long-enough-pw",
        ]
    )
    assert ok.exit_code == 0 and "nusrat@example.com" in ok.output
    dup = runner.invoke(args=["agent", "add", "nusrat@example.com", "--password", "long-enough-pw"])
    assert dup.exit_code == 1 and dup.output.startswith("Error: An agent with the email")
    short = runner.invoke(args=["agent", "add", "x@example.com", "--password", "short"])
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    role = runner.invoke(
        args=["agent", "add", "y@example.com", "--password", "long-enough-pw", "--role", "boss"]
    )
    assert role.exit_code == 2
    listed = json.loads(runner.invoke(args=["agent", "list", "--json"]).output)
    assert [a["name"] for a in listed] == ["নুসরাত"]


def test_bad_filter_value_is_a_usage_error(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["tickets", "list", "--status", "lost"])
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_console_script_init_on_a_fresh_instance(tmp_path: Path) -> None:
    """The real `helpdesk` executable: migrations from nothing, idempotent, secret generated."""
    env = {**os.environ, "HELPDESK_INSTANCE_PATH": str(tmp_path / "inst")}
    env.pop("HELPDESK_DATABASE_URL", None)
    exe = Path(sys.executable).with_name("helpdesk")
    for _ in range(2):
        out = subprocess.run(
            [str(exe), "init"], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert "Database ready" in out.stdout
    secret = tmp_path / "inst" / "secret_key"
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"
    listed = subprocess.run(
        [str(exe), "tickets", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_serve_says_where_agents_sign_in(tmp_path: Path) -> None:
    """`helpdesk serve` prints the sign-in and portal addresses before it starts serving."""
    from tests.servers import free_port

    port = free_port()
    env = {**os.environ, "HELPDESK_INSTANCE_PATH": str(tmp_path / "i"),
           "HELPDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'h.sqlite3'}"}  # fmt: skip
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "helpdesk"),
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert first.strip() == (
        f"Agents sign in at http://127.0.0.1:{port}/login; "
        f"the customer portal is http://127.0.0.1:{port}/portal/"
    )


def test_init_indexes_tickets_again_when_the_text_analysis_changed(
    app: Flask, session: Session, make_ticket: MakeTicket, capsys: pytest.CaptureFixture[str]
) -> None:
    """An upgrade that changes how words are analysed (a Bengali suffix now stripped) leaves
    the old documents with words no query produces any more: `helpdesk init`, the upgrade
    step, indexes the tickets again; a second init has nothing to do."""
    from helpdesk.cli import _index_existing_tickets
    from helpdesk.models.search import read_meta, write_meta
    from helpdesk.services import search_index
    from helpdesk.services.search import search_tickets

    ticket = make_ticket(subject="দাম", text="ভ্যাটসহ দাম কত হবে?").ticket
    engine = db.engine(app)
    # The document as an older analysis wrote it: whole words, ভ্যাটসহ not reduced to ভ্যাট.
    analyzer = search_index._analyzer
    search_index._analyzer = None
    search_index.analyze_word.cache_clear()
    try:
        with engine.begin() as conn:
            search_index.write_documents(conn, [ticket.id])
            write_meta(conn, "analyzer", "1")
    finally:
        search_index._analyzer = analyzer
        search_index.analyze_word.cache_clear()
    assert search_index.analyzer_version() != "1"
    assert not search_tickets(session, "ভ্যাট").hits
    session.rollback()

    _index_existing_tickets(app)
    assert "text analysis changed" in capsys.readouterr().out
    session.rollback()
    assert [h.ticket.id for h in search_tickets(session, "ভ্যাট").hits] == [ticket.id]
    session.rollback()
    with engine.connect() as conn:
        assert read_meta(conn, "analyzer") == search_index.analyzer_version()
    _index_existing_tickets(app)
    assert capsys.readouterr().out == ""
