"""CSV exports of customers, organizations and the queue's tickets: streamed, UTF-8 with a BOM,
ISO 8601 times, the queue's filters and order kept, Bengali and formulas surviving a round trip
through the import."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent, TicketStatus
from helpdesk.services import csv_export, customer_import, customers, organizations, tags, tickets
from tests.conftest import AgentClient, MakeTicket, login
from tests.helpdesk.test_cli_startup import helpdesk_env, run_cli


def _rows(body: bytes) -> list[dict[str, str]]:
    assert body.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the BOM
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_customers_round_trip_bengali_and_formulas(
    app: Flask, admin: Agent, session: Session
) -> None:
    organizations.create_organization(session, "ঢাকা ট্রেডার্স", domains=["dhaka.example"])
    session.commit()
    text = (
        "email,name,notes\n"
        'rahim@dhaka.example,রহিম উদ্দিন,"দুই\nলাইন"\n'
        'evil@example.com,=HYPERLINK("http://x"),-5 points\n'
    )
    parsed = customer_import.parse_csv(text.encode("utf-8"), "customers")
    assert customer_import.import_rows(session, parsed, admin).counts["created"] == 2
    session.commit()
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    assert "/agent/customers/export.csv" in client.get("/agent/customers").get_data(as_text=True)

    response = client.get("/agent/customers/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = {r["email"]: r for r in _rows(response.data)}
    assert rows["rahim@dhaka.example"]["name"] == "রহিম উদ্দিন"
    assert rows["rahim@dhaka.example"]["notes"] == "দুই\nলাইন"
    assert rows["rahim@dhaka.example"]["organization"] == "ঢাকা ট্রেডার্স"
    assert rows["evil@example.com"]["name"] == '\'=HYPERLINK("http://x")'  # not a formula
    created = datetime.fromisoformat(rows["evil@example.com"]["created_at"])
    assert created.utcoffset() is not None  # ISO 8601 with its offset

    # The export imports back unchanged: every row is "nothing to change".
    again = customer_import.parse_csv(response.data, "customers")
    assert "created_at" in again.ignored_columns
    report = customer_import.import_rows(session, again, admin)
    assert report.counts == {"created": 0, "updated": 0, "skipped": 2, "error": 0}
    evil = customers.find_by_identity(session, "email", "evil@example.com")  # type: ignore[arg-type]
    assert evil is not None and evil.name == '=HYPERLINK("http://x")'


def test_organizations_export(agent_client: AgentClient, session: Session) -> None:
    organizations.create_organization(session, "Acme", domains=["b.example", "a.example"])
    customers.create_customer(session, "x@a.example")
    session.commit()
    page = agent_client.get("/agent/organizations").get_data(as_text=True)
    assert "/agent/organizations/export.csv" in page
    rows = _rows(agent_client.get("/agent/organizations/export.csv").data)
    assert [(r["name"], r["domains"], r["customers"]) for r in rows] == [
        ("Acme", "a.example; b.example", "1")
    ]


def test_queue_export_keeps_the_filters_and_order(
    agent_client: AgentClient, agent: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    made = [make_ticket(subject=f"প্রশ্ন {i}").ticket for i in range(4)]
    tickets.set_status(session, made[1], TicketStatus.PENDING, agent)
    tickets.set_status(session, made[3], TicketStatus.PENDING, agent)
    tags.add_tags(session, made[3], ["vip"], agent)
    session.commit()
    queue = agent_client.get("/agent/queue?view=all&status=pending").get_data(as_text=True)
    assert "/agent/queue/export.csv?view=all&amp;status=pending" in queue
    rows = _rows(agent_client.get("/agent/queue/export.csv?view=all&status=pending").data)
    assert [r["subject"] for r in rows] == ["প্রশ্ন 3", "প্রশ্ন 1"]  # updated last first
    assert rows[0]["tags"] == "vip" and rows[0]["status"] == "pending"
    assert rows[0]["customer_email"] == "customer@example.com"
    oldest = _rows(agent_client.get("/agent/queue/export.csv?view=all&sort=oldest").data)
    assert [r["subject"] for r in oldest] == [f"প্রশ্ন {i}" for i in (0, 2, 1, 3)]
    tagged = _rows(agent_client.get("/agent/queue/export.csv?view=all&tag=vip").data)
    assert [r["number"] for r in tagged] == [str(made[3].number)]
    bad = agent_client.get("/agent/queue/export.csv?status=nonsense")
    assert bad.status_code == 400


def test_the_export_streams_rows_before_the_end(
    app: Flask, agent_client: AgentClient, make_ticket: MakeTicket, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(7):
        make_ticket(subject=f"Streamed {i}")
    monkeypatch.setattr(csv_export, "CHUNK", 3)
    response = agent_client.client.get("/agent/queue/export.csv?view=all", buffered=False)
    assert response.is_streamed
    chunks = response.iter_encoded()
    header = next(chunks)
    first = next(chunks).decode("utf-8")
    # Three rows are out while four are still unread.
    assert header.startswith("\ufeffnumber".encode()) and first.count("Streamed") == 3
    rest = b"".join(chunks).decode("utf-8")
    response.close()
    assert rest.count("Streamed") == 4


def test_cli_exports(app: Flask, agent: Agent, session: Session, make_ticket: MakeTicket) -> None:
    a = make_ticket(subject="খোলা").ticket
    b = make_ticket(subject="Waiting").ticket
    tickets.set_status(session, b, TicketStatus.PENDING, agent)
    session.commit()
    env = helpdesk_env(app)
    done, loaded = run_cli(env, "tickets", "export", "--status", "pending")
    assert done.returncode == 0, done.stderr and loaded == []
    rows = _rows(done.stdout.encode("utf-8"))
    assert [r["number"] for r in rows] == [str(b.number)] and str(a.number) not in done.stdout
    people, _loaded = run_cli(env, "customers", "export")
    assert [r["email"] for r in _rows(people.stdout.encode("utf-8"))] == ["customer@example.com"]
