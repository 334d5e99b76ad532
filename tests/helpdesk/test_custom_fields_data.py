"""Custom fields in the data's ways in and out: the CSV exports (one ``cf.<key>`` column per
active field), the CSV import reading those columns back (Bengali intact, a bad value failing
its row only, in the reader's language), the ticket search finding values and option labels in
both languages right after the change commits, and ``helpdesk tickets list/export --field``."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy.orm import Session

from helpdesk.models import Agent, CustomField
from helpdesk.services import csv_export, customer_import, customers, organizations
from helpdesk.services import custom_fields as cf
from helpdesk.services.search import SearchFilter, search_tickets
from tests.conftest import AgentClient, MakeTicket, bn
from tests.helpdesk.test_cli_startup import helpdesk_env, run_cli

pytestmark = pytest.mark.usefixtures("db_backend")


def _define(session: Session, admin: Agent, key: str, kind: str, **kw: Any) -> CustomField:
    field = cf.define_field(
        session,
        admin,
        object_type=kw.pop("object_type", "ticket"),
        key=key,
        type=kind,
        label_en=kw.pop("label_en", key.title()),
        **kw,
    )
    session.commit()
    return field


def _rows(body: bytes | str) -> list[dict[str, str]]:
    text = body.decode("utf-8-sig") if isinstance(body, bytes) else body.lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text, newline="")))


PLAN_OPTIONS = ["free | Free | ফ্রি", "gold | Gold | গোল্ড"]
REGIONS = ["dhaka | Dhaka | ঢাকা", "sylhet | Sylhet | সিলেট"]


def test_customers_and_organizations_export_and_import_back_with_bengali(
    app: Flask, admin: Agent, session: Session
) -> None:
    for obj in ("customer", "organization"):
        _define(session, admin, "tier", "dropdown", object_type=obj, options=PLAN_OPTIONS)
        _define(session, admin, "regions", "multi_select", object_type=obj, options=REGIONS)
        _define(session, admin, "since", "date", object_type=obj)
        _define(session, admin, "seats", "number", object_type=obj)
        _define(session, admin, "vip", "checkbox", object_type=obj)
        _define(session, admin, "motto", "text", object_type=obj)
    archived = _define(session, admin, "old", "text", object_type="customer")
    org = organizations.create_organization(session, "ঢাকা ট্রেডার্স", actor=admin)
    rahim = customers.create_customer(session, "rahim@example.com", name="রহিম", actor=admin)
    values = {
        "tier": "gold",
        "regions": ["dhaka", "sylhet"],
        "since": "2025-01-31",
        "seats": -12,
        "vip": True,
        "motto": "সবার আগে গ্রাহক",
        "old": "kept",
    }
    cf.set_values(session, rahim, values, admin)
    cf.set_values(session, org, {k: v for k, v in values.items() if k != "old"}, admin)
    cf.update_field(session, archived, admin, active=False)
    session.commit()

    people = "".join(csv_export.customers_csv(session))
    header = next(csv.reader(io.StringIO(people.lstrip("\ufeff"))))
    # After the built-in columns, one per active field in the fields' order; not the archived.
    assert header[len(csv_export.CUSTOMER_COLUMNS) :] == [
        "cf.tier",
        "cf.regions",
        "cf.since",
        "cf.seats",
        "cf.vip",
        "cf.motto",
    ]
    row = _rows(people)[0]
    assert row["cf.tier"] == "gold" and row["cf.regions"] == "dhaka, sylhet"
    assert row["cf.since"] == "2025-01-31" and row["cf.vip"] == "true"
    assert row["cf.seats"] == "'-12"  # a formula-looking cell defused as every other cell
    assert row["cf.motto"] == "সবার আগে গ্রাহক"
    org_file = "".join(csv_export.organizations_csv(session))
    orgs = _rows(org_file)
    assert orgs[0]["cf.regions"] == "dhaka, sylhet" and orgs[0]["cf.motto"] == "সবার আগে গ্রাহক"

    # The values are wiped, then the export imports back to the same values.
    for record in (rahim, org):
        cf.set_values(session, record, {k: None for k in values if k != "old"}, admin)
    session.commit()
    report = customer_import.import_rows(
        session, customer_import.parse_csv(people.encode(), "customers"), admin
    )
    assert report.counts == {"created": 0, "updated": 1, "skipped": 0, "error": 0}
    assert report.outcomes[0].reason.startswith("cf.")
    org_report = customer_import.import_rows(
        session, customer_import.parse_csv(org_file.encode(), "organizations"), admin
    )
    assert org_report.counts["updated"] == 1
    session.commit()
    session.refresh(rahim)
    session.refresh(org)
    assert rahim.custom == values  # the archived field's value kept, the rest back
    assert org.custom == {k: v for k, v in values.items() if k != "old"}
    # Imported again unchanged: nothing to change.
    again = customer_import.import_rows(
        session, customer_import.parse_csv(people.encode(), "customers"), admin
    )
    assert again.counts == {"created": 0, "updated": 0, "skipped": 1, "error": 0}


def test_import_a_bad_value_fails_its_row_in_the_readers_language(
    app: Flask, admin: Agent, session: Session
) -> None:
    _define(
        session,
        admin,
        "tier",
        "dropdown",
        object_type="customer",
        label_bn="স্তর",
        options=PLAN_OPTIONS,
    )
    _define(session, admin, "since", "date", object_type="customer", label_bn="কবে থেকে")
    text = (
        "email,name,cf.tier,cf.since,cf.unknown\n"
        "new@example.com,নতুন,gold,2026-02-01,x\n"
        "bad@example.com,Bad,platinum,,x\n"
        "late@example.com,Late,,31/12/2026,\n"
        "empty@example.com,Empty,,,\n"
    )
    parsed = customer_import.parse_csv(text.encode(), "customers")
    assert "cf.tier" in parsed.columns  # the preview shows the column
    with app.test_request_context(headers={"Accept-Language": "bn"}), force_locale("bn"):
        report = customer_import.import_rows(session, parsed, admin)
    session.commit()
    assert report.counts == {"created": 2, "updated": 0, "skipped": 0, "error": 2}
    assert report.ignored_columns == ["cf.unknown"]  # a column of no field
    errors = {o.key: o for o in report.of("error")}
    assert errors["bad@example.com"].field == "cf.tier"
    assert errors["bad@example.com"].reason == bn("%(value)s is not an option of %(field)s.") % {
        "value": "platinum",
        "field": "স্তর",
    }
    assert errors["late@example.com"].field == "cf.since"
    assert "কবে থেকে" in errors["late@example.com"].reason
    new = customers.find_by_identity(session, "email", "new@example.com")  # type: ignore[arg-type]
    assert new is not None and new.custom == {"tier": "gold", "since": "2026-02-01"}
    assert customers.find_by_identity(session, "email", "bad@example.com") is None  # type: ignore[arg-type]
    empty = customers.find_by_identity(session, "email", "empty@example.com")  # type: ignore[arg-type]
    assert empty is not None and empty.custom is None


def test_queue_export_has_the_fields_and_keeps_their_filter(
    agent_client: AgentClient, admin: Agent, agent: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    _define(session, admin, "plan", "dropdown", options=PLAN_OPTIONS)
    _define(session, admin, "note", "long_text")
    gold = make_ticket(subject="Gold customer").ticket
    free = make_ticket(subject="Free customer").ticket
    make_ticket(subject="No plan")
    cf.set_values(session, gold, {"plan": "gold", "note": "দুই\nলাইন"}, agent)
    cf.set_values(session, free, {"plan": "free"}, agent)
    session.commit()

    rows = _rows(agent_client.get("/agent/queue/export.csv?view=all&cf.plan=gold").data)
    assert [r["subject"] for r in rows] == ["Gold customer"]
    assert rows[0]["cf.plan"] == "gold" and rows[0]["cf.note"] == "দুই\nলাইন"
    every = _rows(agent_client.get("/agent/queue/export.csv?view=all").data)
    assert {r["subject"]: r["cf.plan"] for r in every} == {
        "Gold customer": "gold",
        "Free customer": "free",
        "No plan": "",
    }
    unknown = agent_client.get("/agent/queue/export.csv?view=all&cf.nothing=x")
    assert unknown.status_code == 400  # before any row, not a broken download


def _found(session: Session, query: str) -> list[int]:
    return [h.ticket.number for h in search_tickets(session, query, SearchFilter()).hits]


def test_search_finds_values_and_option_labels_in_both_languages(
    admin: Agent, agent: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    _define(session, admin, "plan", "dropdown", options=["enterprise | Enterprise | এন্টারপ্রাইজ"])
    _define(session, admin, "regions", "multi_select", options=REGIONS)
    _define(session, admin, "contract", "text")
    _define(session, admin, "page", "url")
    _define(session, admin, "seats", "number")
    one = make_ticket(subject="Invoice question", text="Where is my invoice?").ticket
    two = make_ticket(subject="Login trouble", text="I cannot sign in.").ticket
    assert _found(session, "এন্টারপ্রাইজ") == []
    cf.set_values(
        session,
        one,
        {"plan": "enterprise", "regions": ["sylhet"], "contract": "চুক্তি ZX-42"},
        agent,
    )
    cf.set_values(session, two, {"page": "https://shop.example/checkout", "seats": 77}, agent)
    session.commit()  # found right after the change commits

    for query in ("এন্টারপ্রাইজ", "enterprise", "Enterprise", "সিলেট", "sylhet", "চুক্তি", "ZX-42"):
        assert _found(session, query) == [one.number], query
    assert _found(session, "checkout") == [two.number]
    assert _found(session, "77") == []  # numbers are filters, not words
    # A value cleared or changed is no longer found by its old words.
    cf.set_values(session, one, {"plan": None, "contract": "নবায়ন"}, agent)
    session.commit()
    assert _found(session, "এন্টারপ্রাইজ") == [] and _found(session, "চুক্তি") == []
    assert _found(session, "নবায়ন") == [one.number] and _found(session, "সিলেট") == [one.number]


def test_search_reindex_keeps_the_values(
    app: Flask, admin: Agent, agent: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    _define(session, admin, "plan", "dropdown", options=PLAN_OPTIONS)
    ticket = make_ticket(subject="Anything").ticket
    cf.set_values(session, ticket, {"plan": "gold"}, agent)
    session.commit()
    done, _loaded = run_cli(helpdesk_env(app), "tickets", "reindex")
    assert done.returncode == 0, done.stderr
    session.rollback()
    assert _found(session, "গোল্ড") == [ticket.number]


def test_cli_list_and_export_by_field(
    app: Flask, admin: Agent, agent: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    _define(session, admin, "plan", "dropdown", options=PLAN_OPTIONS)
    _define(session, admin, "vip", "checkbox")
    gold = make_ticket(subject="সোনা").ticket
    both = make_ticket(subject="Gold and VIP").ticket
    make_ticket(subject="Nothing")
    cf.set_values(session, gold, {"plan": "gold"}, agent)
    cf.set_values(session, both, {"plan": "gold", "vip": True}, agent)
    session.commit()
    env = helpdesk_env(app)

    listed, _loaded = run_cli(env, "tickets", "list", "--field", "plan=gold", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(r["subject"] for r in json.loads(listed.stdout)) == ["Gold and VIP", "সোনা"]
    two, _loaded = run_cli(
        env, "tickets", "list", "--field", "plan=gold", "--field", "vip=yes", "--json"
    )
    assert [r["subject"] for r in json.loads(two.stdout)] == ["Gold and VIP"]
    exported, _loaded = run_cli(env, "tickets", "export", "--field", "plan=gold")
    assert exported.returncode == 0, exported.stderr
    rows = _rows(exported.stdout)
    assert sorted(r["subject"] for r in rows) == ["Gold and VIP", "সোনা"]
    assert {r["cf.vip"] for r in rows} == {"true", ""}

    for command in ("list", "export"):
        bad, _loaded = run_cli(env, "tickets", command, "--field", "plan=platinum")
        assert bad.returncode == 1 and "platinum is not an option of Plan" in bad.stderr
        assert "Traceback" not in bad.stderr
        shape, _loaded = run_cli(env, "tickets", command, "--field", "plan")
        assert shape.returncode == 2 and "KEY=VALUE" in shape.stderr


def test_search_filters_by_a_field_like_the_queue(
    agent_client: AgentClient, admin: Agent, agent: Agent, session: Session, make_ticket: MakeTicket
) -> None:
    _define(session, admin, "plan", "dropdown", options=PLAN_OPTIONS)
    gold = make_ticket(subject="Invoice for the gold plan", text="Where is the invoice?").ticket
    free = make_ticket(subject="Invoice missing", text="No invoice came.").ticket
    cf.set_values(session, gold, {"plan": "gold"}, agent)
    cf.set_values(session, free, {"plan": "free"}, agent)
    session.commit()

    flt = SearchFilter.from_args({"cf.plan": "free"})
    assert flt.as_args() == {"cf.plan": "free"}
    assert [h.ticket.number for h in search_tickets(session, "invoice", flt).hits] == [free.number]
    # A ticket number pinned first obeys the filter too.
    pinned = search_tickets(session, f"#{gold.number}", flt)
    assert gold.number not in [h.ticket.number for h in pinned.hits]
    page = agent_client.get("/agent/search?q=invoice&cf.plan=gold").get_data(as_text=True)
    assert "for the gold plan" in page and "missing" not in page  # the word is highlighted
    wrong = agent_client.get("/agent/search?q=invoice&cf.plan=platinum").get_data(as_text=True)
    assert "platinum is not an option of Plan" in wrong
