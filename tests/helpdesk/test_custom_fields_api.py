"""Custom fields through the REST API: the definitions under ``/api/v1/custom-fields`` (any
agent reads, an admin's admin token writes), the values under ``custom`` in tickets', customers'
and organizations' JSON (read with GET, set with PATCH, a ticket's with POST), errors naming
``custom.<key>`` in the reader's language, the queue's ``cf.<key>`` filter, and a webhook
delivery carrying ``custom``."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Ticket
from helpdesk.services import api_tokens, organizations, stream
from tests.api.conftest import ApiClient, error_of
from tests.conftest import MakeTicket
from tests.helpdesk.webhook_receiver import Receiver, signature_ok
from tests.helpdesk.webhook_receiver import pump as shared_pump

pytestmark = pytest.mark.usefixtures("db_backend")

PLAN = {
    "object": "ticket",
    "key": "plan",
    "type": "dropdown",
    "label": {"en": "Plan", "bn": "প্ল্যান"},
    "options": ["free | Free | ফ্রি", {"value": "gold", "label": {"en": "Gold", "bn": "গোল্ড"}}],
}


def _client(app: Flask, session: Session, agent: Agent, scope: str) -> ApiClient:
    new = api_tokens.create_token(session, agent, "script", scope)
    session.commit()
    return ApiClient(app, new.secret)


@pytest.fixture
def admin_api(app: Flask, session: Session, admin: Agent) -> ApiClient:
    return _client(app, session, admin, "admin")


@pytest.fixture
def api(app: Flask, session: Session, agent: Agent) -> ApiClient:
    return _client(app, session, agent, "write")


def _define(admin_api: ApiClient, **body: Any) -> dict[str, Any]:
    made = admin_api.post("/api/v1/custom-fields", json=body)
    assert made.status_code == 201, made.get_data(as_text=True)
    return dict(made.get_json())


# --- definitions ---------------------------------------------------------------------------------


def test_an_admin_defines_changes_archives_and_deletes_a_field(
    admin_api: ApiClient, api: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    plan = _define(admin_api, **PLAN, required_on_resolve=True)
    assert plan["object"] == "ticket" and plan["key"] == "plan" and plan["type"] == "dropdown"
    assert plan["label"] == {"en": "Plan", "bn": "প্ল্যান"}
    assert plan["options"] == [
        {"value": "free", "label": {"en": "Free", "bn": "ফ্রি"}},
        {"value": "gold", "label": {"en": "Gold", "bn": "গোল্ড"}},
    ]
    assert plan["required_on_resolve"] is True and plan["visible_to_customers"] is False
    assert plan["active"] is True and plan["position"] == 1
    assert plan["created_at"] and plan["updated_at"]
    seats = _define(admin_api, object="customer", key="seats", type="number", label={"en": "Seats"})
    assert seats["label"] == {"en": "Seats", "bn": ""} and seats["options"] == []

    # Any agent reads them, by object, in order.
    listed = api.get("/api/v1/custom-fields").get_json()["custom_fields"]
    assert [(f["object"], f["key"]) for f in listed] == [("ticket", "plan"), ("customer", "seats")]
    assert [
        f["key"]
        for f in api.get("/api/v1/custom-fields?object=customer").get_json()["custom_fields"]
    ] == ["seats"]
    assert api.get(f"/api/v1/custom-fields/{plan['id']}").get_json() == plan

    changed = admin_api.patch(
        f"/api/v1/custom-fields/{plan['id']}",
        json={"label": {"bn": "পরিকল্পনা"}, "options": ["free", "gold", "platinum"]},
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["label"] == {"en": "Plan", "bn": "পরিকল্পনা"}
    assert [o["value"] for o in changed.get_json()["options"]] == ["free", "gold", "platinum"]

    # Archived: gone from the list unless asked for, values kept.
    ticket = make_ticket().ticket
    assert (
        api.patch(f"/api/v1/tickets/{ticket.number}", json={"custom": {"plan": "gold"}}).status_code
        == 200
    )
    archived = admin_api.patch(f"/api/v1/custom-fields/{plan['id']}", json={"active": False})
    assert archived.get_json()["active"] is False
    assert [f["key"] for f in api.get("/api/v1/custom-fields").get_json()["custom_fields"]] == [
        "seats"
    ]
    with_archived = api.get("/api/v1/custom-fields?archived=true&object=ticket").get_json()
    assert [f["key"] for f in with_archived["custom_fields"]] == ["plan"]
    assert api.get(f"/api/v1/tickets/{ticket.number}").get_json()["custom"] == {"plan": "gold"}
    admin_api.patch(f"/api/v1/custom-fields/{plan['id']}", json={"active": True})

    # Deleted: the field and its values.
    assert admin_api.delete(f"/api/v1/custom-fields/{plan['id']}").status_code == 204
    session.expire_all()  # the test's requests share one session; a server's each have their own
    error_of(api.get(f"/api/v1/custom-fields/{plan['id']}"), 404)
    assert api.get(f"/api/v1/tickets/{ticket.number}").get_json()["custom"] == {}
    names = [e.name for e in stream.read(session, after=0, limit=100)]
    assert names.count("custom_field.created") == 2
    assert "custom_field.updated" in names and "custom_field.deleted" in names


def test_only_an_admins_admin_token_writes(
    app: Flask, session: Session, admin: Agent, admin_api: ApiClient, api: ApiClient
) -> None:
    field = _define(admin_api, **PLAN)
    admin_write = _client(app, session, admin, "write")
    for client in (api, admin_write):
        error_of(client.post("/api/v1/custom-fields", json={**PLAN, "key": "other"}), 403)
        error_of(client.patch(f"/api/v1/custom-fields/{field['id']}", json={"active": False}), 403)
        error_of(client.delete(f"/api/v1/custom-fields/{field['id']}"), 403)
    assert api.get(f"/api/v1/custom-fields/{field['id']}").get_json()["active"] is True


def test_a_taken_key_is_409_and_bad_definitions_422_naming_the_field(
    admin_api: ApiClient,
) -> None:
    field = _define(admin_api, **PLAN)
    assert error_of(admin_api.post("/api/v1/custom-fields", json=PLAN), 409)["code"] == "key_taken"
    # The same key on another object is another field.
    _define(admin_api, **{**PLAN, "object": "organization"})

    bad_key = error_of(admin_api.post("/api/v1/custom-fields", json={**PLAN, "key": "Plan!"}), 422)
    assert set(bad_key["fields"]) == {"key"}
    no_options = error_of(
        admin_api.post("/api/v1/custom-fields", json={**PLAN, "key": "tier", "options": []}), 422
    )
    assert set(no_options["fields"]) == {"options"}
    twice = error_of(
        admin_api.post(
            "/api/v1/custom-fields", json={**PLAN, "key": "tier", "options": ["a", "a"]}
        ),
        422,
    )
    assert "a" in twice["fields"]["options"]
    no_label = error_of(
        admin_api.post("/api/v1/custom-fields", json={**PLAN, "key": "tier", "label": {"bn": "x"}}),
        422,
    )
    assert set(no_label["fields"]) == {"label.en"}
    bad_type = error_of(
        admin_api.post("/api/v1/custom-fields", json={**PLAN, "key": "tier", "type": "colour"}), 422
    )
    assert set(bad_type["fields"]) == {"type"}

    # object, key and type never change: each is named.
    immutable = error_of(
        admin_api.patch(
            f"/api/v1/custom-fields/{field['id']}",
            json={"key": "tier", "type": "text", "object": "customer"},
        ),
        422,
    )
    assert set(immutable["fields"]) == {"key", "type", "object"}
    assert "cannot be changed" in immutable["fields"]["key"]
    hidden_form = error_of(
        admin_api.patch(f"/api/v1/custom-fields/{field['id']}", json={"on_portal_form": True}),
        422,
    )
    assert set(hidden_form["fields"]) == {"visible_to_customers"}


# --- values --------------------------------------------------------------------------------------


def test_a_tickets_custom_values_in_get_and_patch_with_errors_by_key(
    admin_api: ApiClient, api: ApiClient, make_ticket: MakeTicket
) -> None:
    _define(admin_api, **PLAN)
    _define(
        admin_api, object="ticket", key="seats", type="number", label={"en": "Seats", "bn": "আসন"}
    )
    ticket = make_ticket().ticket
    got = api.get(f"/api/v1/tickets/{ticket.number}").get_json()
    assert got["custom"] == {}
    assert api.get("/api/v1/tickets").get_json()["tickets"][0]["custom"] == {}

    changed = api.patch(
        f"/api/v1/tickets/{ticket.number}", json={"custom": {"plan": "gold", "seats": "12"}}
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["custom"] == {"plan": "gold", "seats": 12}
    assert changed.get_json()["version"] > got["version"]
    summary = api.get("/api/v1/tickets").get_json()["tickets"][0]
    assert summary["custom"] == {"plan": "gold", "seats": 12}

    cleared = api.patch(f"/api/v1/tickets/{ticket.number}", json={"custom": {"seats": None}})
    assert cleared.get_json()["custom"] == {"plan": "gold"}

    bad = error_of(
        api.patch(
            f"/api/v1/tickets/{ticket.number}",
            json={"custom": {"seats": "twelve", "plan": "silver", "colour": "red"}},
        ),
        422,
    )
    assert bad["code"] == "invalid_custom_field"
    assert set(bad["fields"]) == {"custom.seats", "custom.plan", "custom.colour"}
    assert bad["fields"]["custom.seats"] == "Seats must be a number."
    in_bengali = error_of(
        api.patch(
            f"/api/v1/tickets/{ticket.number}",
            json={"custom": {"seats": "twelve"}},
            headers={"Accept-Language": "bn"},
        ),
        422,
    )
    assert in_bengali["fields"]["custom.seats"] == "আসন একটি সংখ্যা হতে হবে।"
    assert api.get(f"/api/v1/tickets/{ticket.number}").get_json()["custom"] == {"plan": "gold"}


def test_resolving_without_a_required_field_is_422_and_one_request_can_fill_and_resolve(
    admin_api: ApiClient, api: ApiClient, make_ticket: MakeTicket
) -> None:
    _define(admin_api, **PLAN, required_on_resolve=True)
    ticket = make_ticket().ticket
    refused = error_of(
        api.patch(f"/api/v1/tickets/{ticket.number}", json={"status": "resolved"}), 422
    )
    assert refused["fields"] == {
        "custom.plan": "Plan must be filled in before the ticket is resolved."
    }
    assert api.get(f"/api/v1/tickets/{ticket.number}").get_json()["status"] != "resolved"
    done = api.patch(
        f"/api/v1/tickets/{ticket.number}", json={"status": "resolved", "custom": {"plan": "free"}}
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["status"] == "resolved"
    assert done.get_json()["custom"] == {"plan": "free"}


def test_a_ticket_created_through_the_api_takes_custom_values_checked_first(
    admin_api: ApiClient, api: ApiClient, session: Session
) -> None:
    _define(admin_api, **PLAN)
    body = {
        "subject": "Upgrade",
        "body": "Please upgrade us.",
        "customer": {"email": "buyer@example.com"},
    }
    bad = error_of(api.post("/api/v1/tickets", json={**body, "custom": {"plan": "silver"}}), 422)
    assert set(bad["fields"]) == {"custom.plan"}
    assert session.query(Ticket).count() == 0
    made = api.post("/api/v1/tickets", json={**body, "custom": {"plan": "gold"}})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["custom"] == {"plan": "gold"}


def test_customer_and_organization_custom_values(
    admin_api: ApiClient, api: ApiClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    _define(admin_api, object="customer", key="vip", type="checkbox", label={"en": "VIP"})
    _define(admin_api, object="organization", key="renewal", type="date", label={"en": "Renewal"})
    customer = make_ticket().ticket.customer
    org = organizations.create_organization(session, "Acme", actor=agent)
    session.commit()

    assert api.get(f"/api/v1/customers/{customer.id}").get_json()["custom"] == {}
    vip = api.patch(f"/api/v1/customers/{customer.id}", json={"custom": {"vip": True}})
    assert vip.status_code == 200, vip.get_data(as_text=True)
    assert vip.get_json()["custom"] == {"vip": True}
    assert api.get("/api/v1/customers").get_json()["customers"][0]["custom"] == {"vip": True}
    wrong = error_of(
        api.patch(f"/api/v1/customers/{customer.id}", json={"custom": {"vip": "maybe"}}), 422
    )
    assert set(wrong["fields"]) == {"custom.vip"}

    assert api.get(f"/api/v1/organizations/{org.id}").get_json()["custom"] == {}
    renewal = api.patch(
        f"/api/v1/organizations/{org.id}", json={"custom": {"renewal": "2027-01-31"}}
    )
    assert renewal.status_code == 200, renewal.get_data(as_text=True)
    assert renewal.get_json()["custom"] == {"renewal": "2027-01-31"}
    late = error_of(
        api.patch(f"/api/v1/organizations/{org.id}", json={"custom": {"renewal": "next year"}}),
        422,
    )
    assert late["fields"] == {"custom.renewal": "Renewal must be a date (YYYY-MM-DD)."}
    # A ticket field is not a customer's.
    unknown = error_of(
        api.patch(f"/api/v1/customers/{customer.id}", json={"custom": {"renewal": "2027-01-31"}}),
        422,
    )
    assert set(unknown["fields"]) == {"custom.renewal"}


def test_the_ticket_list_filters_by_custom_fields(
    admin_api: ApiClient, api: ApiClient, make_ticket: MakeTicket
) -> None:
    _define(admin_api, **PLAN)
    gold, free, _none = (make_ticket().ticket for _ in range(3))
    api.patch(f"/api/v1/tickets/{gold.number}", json={"custom": {"plan": "gold"}})
    api.patch(f"/api/v1/tickets/{free.number}", json={"custom": {"plan": "free"}})

    listed = api.get("/api/v1/tickets?cf.plan=gold").get_json()["tickets"]
    assert [t["number"] for t in listed] == [gold.number]
    assert len(api.get("/api/v1/tickets").get_json()["tickets"]) == 3
    error_of(api.get("/api/v1/tickets?cf.plan=silver"), 400)
    error_of(api.get("/api/v1/tickets?cf.colour=red"), 400)
    assert error_of(api.get("/api/v1/tickets?cf.plan=gold&q=order"), 400)["code"] == (
        "unsupported_filter"
    )


# --- webhooks ------------------------------------------------------------------------------------


@pytest.fixture
def app_config(receiver: Receiver) -> dict[str, Any]:
    return {"WEBHOOK_ALLOWED_HOSTS": receiver.host, "BASE_URL": "http://localhost"}


def test_webhooks_carry_the_field_and_custom_values(
    app: Flask, admin_api: ApiClient, api: ApiClient, make_ticket: MakeTicket, receiver: Receiver
) -> None:
    ticket = make_ticket().ticket
    hook = admin_api.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "events": ["custom_field.created", "ticket.updated"]},
    )
    assert hook.status_code == 201, hook.get_data(as_text=True)
    secret = hook.get_json()["secret"]
    field = _define(admin_api, **PLAN)
    api.patch(f"/api/v1/tickets/{ticket.number}", json={"custom": {"plan": "gold"}})

    assert shared_pump(app, own_thread=True) == 2
    created, updated = receiver.wait_for(2)
    assert all(signature_ok(secret, r.headers, r.body) for r in (created, updated))
    assert created.json["event"] == "custom_field.created"
    assert created.json["data"] == api.get(f"/api/v1/custom-fields/{field['id']}").get_json()
    assert updated.json["event"] == "ticket.updated"
    assert updated.json["data"]["custom"] == {"plan": "gold"}
    assert updated.json["details"]["changes"]["custom.plan"] == {"from": None, "to": "gold"}
