"""CSV import of customers and organizations: the admin's upload → preview → import page and
``helpdesk customers import``, with a spreadsheet's quirks (BOM, ``;``, quoted newlines, any
header case and order, extra columns), Bengali names, dedupe by email and a report by row."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from helpdesk.models import Agent, Customer, Organization
from helpdesk.services import customers, organizations
from tests.conftest import AgentClient, bn, login
from tests.helpdesk.test_cli_startup import helpdesk_env, run_cli

CUSTOMERS = (
    "\ufeffNotes;EMAIL;Name;Organization;Favourite colour\r\n"
    '"Line one\r\nline two";rahim@acme.example;রহিম উদ্দিন;;blue\r\n'
    ";karim@example.com;করিম;Dhaka Traders;red\r\n"
    ";not-an-address;Nobody;;\r\n"
    ";RAHIM@acme.example;Rahim again;;\r\n"
    ";old@example.com;Old Friend (renamed);;\r\n"
)


def _admin_client(app: Flask, admin: Agent) -> AgentClient:
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return AgentClient(client)


def _upload(client: AgentClient, text: str, kind: str = "customers", **extra: str) -> str:
    data = {"kind": kind, "file": (io.BytesIO(text.encode("utf-8")), "people.csv"), **extra}
    response = client.post("/agent/customers/import", data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_data(as_text=True))


def _customer(session: Session, email: str) -> Customer | None:
    session.expire_all()
    return customers.find_by_identity(session, "email", email)  # type: ignore[arg-type]


def test_preview_then_import_with_every_quirk(app: Flask, admin: Agent, session: Session) -> None:
    organizations.create_organization(session, "Acme", domains=["acme.example"])
    customers.create_customer(session, "old@example.com", name="Old Friend")
    session.commit()
    client = _admin_client(app, admin)
    assert "Import from CSV" in client.get("/agent/customers").get_data(as_text=True)

    preview = _upload(client, CUSTOMERS)
    assert "Nothing is saved yet" in preview
    assert "2 would be created, 1 updated, 1 skipped, 1 rows with errors" in preview
    assert "রহিম উদ্দিন" in preview and "Favourite colour" in preview  # ignored, reported
    assert re.search(r"<td>4</td><td[^>]*>not-an-address</td><td>error</td><td>email</td>", preview)
    assert "The same email address as row 2." in preview
    # The preview wrote nothing.
    assert _customer(session, "rahim@acme.example") is None
    assert session.scalar(select(Organization).where(Organization.name == "Dhaka Traders")) is None

    data = re.search(r'name="upload" value="([^"]+)"', preview)
    assert data is not None
    done = client.post(
        "/agent/customers/import",
        {"kind": "customers", "upload": data.group(1), "action": "import"},
    ).get_data(as_text=True)
    assert "Imported: 2 created, 1 updated, 1 skipped, 1 rows with errors." in done
    rahim = _customer(session, "rahim@acme.example")
    assert rahim is not None and rahim.name == "রহিম উদ্দিন"
    assert rahim.notes == "Line one\r\nline two"
    assert rahim.organization is not None and rahim.organization.name == "Acme"  # by domain
    karim = _customer(session, "karim@example.com")
    assert karim is not None and karim.organization is not None
    assert karim.organization.name == "Dhaka Traders"  # created by name
    old = _customer(session, "old@example.com")
    assert old is not None and old.name == "Old Friend (renamed)"
    assert session.scalar(select(func.count()).select_from(Customer)) == 3


def test_organizations_with_domains_and_a_bad_row(
    app: Flask, admin: Agent, session: Session
) -> None:
    organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    client = _admin_client(app, admin)
    text = (
        "name,domains,notes\n"
        "ঢাকা ট্রেডার্স,dhaka.example; dhaka-bd.example,Big\n"
        "Broken,not a domain!,\n"
        "acme,acme.org,\n"
    )
    preview = _upload(client, text, kind="organizations")
    data = re.search(r'name="upload" value="([^"]+)"', preview)
    assert data is not None
    done = client.post(
        "/agent/customers/import",
        {"kind": "organizations", "upload": data.group(1), "action": "import"},
    ).get_data(as_text=True)
    assert "1 created, 1 updated, 0 skipped, 1 rows with errors" in done
    assert "Not a domain" in done
    session.expire_all()
    org = organizations.find_by_name(session, "ঢাকা ট্রেডার্স")
    assert org is not None and org.domain_names == ["dhaka-bd.example", "dhaka.example"]
    acme = organizations.find_by_name(session, "Acme")
    assert acme is not None and acme.domain_names == ["acme.example", "acme.org"]
    assert organizations.find_by_name(session, "Broken") is None


def test_only_admins_and_clear_file_errors_in_bengali(
    app: Flask, admin: Agent, agent_client: AgentClient
) -> None:
    assert agent_client.get("/agent/customers/import").status_code == 403
    refused = agent_client.post(
        "/agent/customers/import",
        {"kind": "customers", "file": (io.BytesIO(b"email\nx@example.com\n"), "a.csv")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 403
    assert "Import from CSV" not in agent_client.get("/agent/customers").get_data(as_text=True)
    client = _admin_client(app, admin)
    client.client.set_cookie("lang", "bn")
    latin1 = client.post(
        "/agent/customers/import",
        {
            "kind": "customers",
            "file": (io.BytesIO("email\nzoë@example.com\n".encode("latin-1")), "a.csv"),
        },
        content_type="multipart/form-data",
        headers={"Accept-Language": "bn"},
    )
    assert latin1.status_code == 400
    page = latin1.get_data(as_text=True)
    assert bn("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again.") in page


def test_cli_dry_run_then_import_with_report(
    app: Flask, admin: Agent, session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    rows = "".join(f"c{i}@example.com,গ্রাহক {i}\n" for i in range(30))
    path.write_text("Email,Name,Shoe size\n" + rows + "broken,x\n", encoding="utf-8")
    env = helpdesk_env(app)

    dry, _loaded = run_cli(env, "customers", "import", str(path), "--dry-run")
    assert dry.returncode == 1, dry.stderr  # a row had an error
    assert "Would create 30, updated 0, skipped 0, 1 rows with errors." in dry.stdout
    assert "row 32 broken: error [email]" in dry.stdout and "Shoe size" in dry.stdout
    assert "Importing" in dry.stderr  # the progress bar
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    session.rollback()

    done, loaded = run_cli(env, "customers", "import", str(path), "--json")
    assert loaded == []  # no web layer
    report = json.loads(done.stdout)
    assert report["created"] == 30 and report["error"] == 1
    session.rollback()
    assert _customer(session, "c7@example.com") is not None
    assert _customer(session, "c7@example.com").name == "গ্রাহক 7"  # type: ignore[union-attr]
    session.rollback()

    again, _loaded = run_cli(env, "customers", "import", str(path), "--json")
    assert json.loads(again.stdout)["skipped"] == 30  # nothing to change the second time


def test_the_page_takes_a_bounded_number_of_rows(
    app: Flask, admin: Agent, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpdesk.web import customer_import as view

    monkeypatch.setattr(view, "MAX_ROWS", 3)
    client = _admin_client(app, admin)
    text = "email\n" + "".join(f"p{i}@example.com\n" for i in range(4))
    data = {"kind": "customers", "file": (io.BytesIO(text.encode()), "big.csv")}
    refused = client.post("/agent/customers/import", data, content_type="multipart/form-data")
    assert refused.status_code == 400
    assert "At most 3 rows a file." in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_file_of_a_megabyte_previews_and_imports(
    app: Flask, admin: Agent, session: Session
) -> None:
    # Above Flask's 500 kB for a form field: the previewed file waits on the server instead.
    notes = "ন" * 400
    rows = "".join(f"big{i}@example.com,{notes}\n" for i in range(900))
    text = "email,notes\n" + rows
    assert len(text.encode()) > 1_000_000
    client = _admin_client(app, admin)
    # The body encoded in memory: the test client spools a big one to a file it never closes.
    boundary, body = encode_multipart(
        {
            "csrf_token": client.token(),
            "kind": "customers",
            "file": FileStorage(io.BytesIO(text.encode()), "big.csv"),
        }
    )
    response = client.client.post(
        "/agent/customers/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    preview = response.get_data(as_text=True)
    assert response.status_code == 200 and "900 would be created" in preview
    token = re.search(r'name="upload" value="([^"]+)"', preview)
    assert token is not None
    done = client.post(
        "/agent/customers/import",
        {"kind": "customers", "upload": token.group(1), "action": "import"},
    )
    assert done.status_code == 200
    assert "Imported: 900 created" in done.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Customer)) == 900
    # Used once: the same token again finds no file.
    again = client.post(
        "/agent/customers/import",
        {"kind": "customers", "upload": token.group(1), "action": "import"},
    )
    assert again.status_code == 400
    assert "Choose a CSV file to import." in again.get_data(as_text=True)
