"""Triggers and time rules through the REST API: the issue's POST shape round-trips with its
run count; any agent reads, an admin's admin token writes and previews; bad conditions, actions,
events and hours are 422 naming the field with the service's code, in the reader's language; a
taken name is 409; webhooks carry a rule as GET returns it; schemathesis over the operations."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import GenerationMode
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import rules, stream
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.api.test_openapi import keep_promises
from tests.conftest import MakeTicket, bn
from tests.helpdesk.webhook_receiver import Receiver, signature_ok
from tests.helpdesk.webhook_receiver import pump as shared_pump

pytestmark = pytest.mark.usefixtures("db_backend")

ISSUE = {
    "name": "Refunds to billing",
    "event": "ticket.created",
    "conditions": [{"field": "subject", "op": "contains", "value": "refund"}],
    "actions": [
        {"type": "add_tags", "value": ["refund"]},
        {"type": "set_priority", "value": "high"},
    ],
}


@pytest.fixture
def app_config(receiver: Receiver) -> dict[str, Any]:
    return {
        "WEBHOOK_ALLOWED_HOSTS": receiver.host,
        "BASE_URL": "http://localhost",
        "API_RATE_LIMIT": "100000 per minute",
    }


@pytest.fixture
def admin_api(app: Flask, admin: Agent, make_token: MakeToken) -> ApiClient:
    return ApiClient(app, make_token(admin, "admin"))


def _made(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def test_a_trigger_round_trips_and_counts_its_runs(
    app: Flask, session: Session, admin_api: ApiClient, api: ApiClient, make_ticket: MakeTicket
) -> None:
    stream.consume(session, rules.CONSUMER, rules.on_event, start_at_end=True)
    session.commit()
    made = _made(admin_api.post("/api/v1/triggers", json=ISSUE))
    assert made["name"] == ISSUE["name"] and made["event"] == "ticket.created"
    assert made["conditions"] == ISSUE["conditions"]
    # Saved as the service keeps them: a priority by its rank.
    assert made["actions"] == [
        {"type": "add_tags", "value": ["refund"]},
        {"type": "set_priority", "value": 3},
    ]
    assert made["stop"] is False and made["active"] is True
    assert made["run_count"] == 0 and made["last_run_at"] is None

    ticket = make_ticket(subject="A refund please").ticket
    while stream.consume(session, rules.CONSUMER, rules.on_event):  # the worker's consumer
        session.commit()
    session.expire_all()
    assert [t.name for t in ticket.tags] == ["refund"]

    got = api.get(f"/api/v1/triggers/{made['id']}").get_json()
    assert got["run_count"] == 1 and got["last_run_at"]
    assert api.get("/api/v1/triggers").get_json()["triggers"] == [got]
    assert error_of(api.get(f"/api/v1/time-rules/{made['id']}"), 404)["code"] == "not_found"

    changed = admin_api.patch(
        f"/api/v1/triggers/{made['id']}", json={"active": False, "stop": True, "position": 4}
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["active"] is False and changed.get_json()["position"] == 4
    assert admin_api.delete(f"/api/v1/triggers/{made['id']}").status_code == 204
    assert api.get("/api/v1/triggers").get_json()["triggers"] == []


def test_time_rules_in_the_issues_shape(admin_api: ApiClient, api: ApiClient) -> None:
    remind = _made(
        admin_api.post(
            "/api/v1/time-rules",
            json={
                "name": "Remind after 3 days",
                "after_hours": 72,
                "conditions": [{"field": "status", "op": "is", "value": "pending"}],
                "actions": [
                    {
                        "type": "send_email",
                        "value": {
                            "to": "customer",
                            "subject": {"en": "Still there?", "bn": "আপনি কি আছেন?"},
                            "body": {"en": "About {{ ticket.subject }}", "bn": "বিষয়"},
                        },
                    }
                ],
            },
        )
    )
    resolve = _made(
        admin_api.post(
            "/api/v1/time-rules",
            json={
                "name": "Resolve after 7 days",
                "after_hours": 168,
                "conditions": [{"field": "status", "op": "is", "value": "pending"}],
                "actions": [{"type": "set_status", "value": "resolved"}],
                "active": False,
            },
        )
    )
    assert remind["after_hours"] == 72 and "event" not in remind
    listed = api.get("/api/v1/time-rules").get_json()["time_rules"]
    assert [r["name"] for r in listed] == ["Remind after 3 days", "Resolve after 7 days"]
    assert listed[1]["active"] is False and listed[1]["position"] > listed[0]["position"]
    moved = admin_api.patch(f"/api/v1/time-rules/{remind['id']}", json={"position": 9})
    assert moved.status_code == 200
    listed = api.get("/api/v1/time-rules").get_json()["time_rules"]
    assert [r["name"] for r in listed] == ["Resolve after 7 days", "Remind after 3 days"]
    assert api.get("/api/v1/triggers").get_json()["triggers"] == []
    url = f"/api/v1/time-rules/{resolve['id']}"
    assert admin_api.patch(url, json={"after_hours": 170}).get_json()["after_hours"] == 170
    error = error_of(admin_api.patch(url, json={"after_hours": 0}), 422)
    assert error["code"] == "invalid_after_hours" and "after_hours" in error["fields"]
    assert api.get(url).get_json()["after_hours"] == 170
    assert admin_api.delete(url).status_code == 204
    assert error_of(api.get(url), 404)


def test_only_an_admins_admin_token_writes_or_previews(
    app: Flask, admin: Agent, admin_api: ApiClient, api: ApiClient, make_token: MakeToken
) -> None:
    made = _made(admin_api.post("/api/v1/triggers", json=ISSUE))
    url = f"/api/v1/triggers/{made['id']}"
    admins_write = ApiClient(app, make_token(admin, "write", name="w"))
    for client in (api, admins_write):
        assert error_of(client.post("/api/v1/triggers", json={**ISSUE, "name": "X"}), 403)
        assert error_of(client.patch(url, json={"name": "Y"}), 403)
        assert error_of(client.delete(url), 403)
        assert error_of(client.post("/api/v1/triggers/preview", json={"conditions": []}), 403)
        assert error_of(client.post("/api/v1/time-rules", json={"name": "Z"}), 403)
        assert client.get(url).status_code == 200
    assert api.get(url).get_json()["name"] == ISSUE["name"]


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"conditions": [{"field": "colour", "op": "is", "value": "red"}]}, "invalid_conditions",
         "conditions"),
        ({"conditions": [{"field": "text", "op": "matches", "value": "("}]}, "invalid_conditions",
         "conditions"),
        ({"actions": [{"type": "explode", "value": 1}]}, "invalid_actions", "actions"),
        ({"actions": [{"type": "set_team", "value": "Nobody"}]}, "invalid_actions", "actions"),
        ({"actions": []}, "invalid_actions", "actions"),
        ({"event": "ticket.deleted"}, "invalid_event", "event"),
    ],
)  # fmt: skip
def test_bad_rules_are_422_naming_the_field(
    admin_api: ApiClient, change: dict[str, Any], code: str, field: str
) -> None:
    error = error_of(admin_api.post("/api/v1/triggers", json={**ISSUE, **change}), 422)
    assert error["code"] == code and set(error["fields"]) == {field}
    assert admin_api.get("/api/v1/triggers").get_json()["triggers"] == []


def test_refusals_speak_bengali_and_a_taken_name_is_409(admin_api: ApiClient) -> None:
    bad = {**ISSUE, "actions": [{"type": "add_note", "value": " "}]}
    error = error_of(
        admin_api.post("/api/v1/triggers", json=bad, headers={"Accept-Language": "bn"}), 422
    )
    assert error["code"] == "invalid_actions"
    assert bn("a note cannot be empty.") in error["fields"]["actions"]
    error = error_of(
        admin_api.post(
            "/api/v1/time-rules",
            json={"name": "T", "after_hours": -3, "actions": ISSUE["actions"]},
            headers={"Accept-Language": "bn"},
        ),
        422,
    )
    assert error["fields"]["after_hours"] == bn(
        "A time rule runs a whole number of hours after the last update."
    )

    first = _made(admin_api.post("/api/v1/triggers", json=ISSUE))
    assert error_of(admin_api.post("/api/v1/triggers", json=ISSUE), 409)["code"] == "name_taken"
    other = _made(admin_api.post("/api/v1/triggers", json={**ISSUE, "name": "Other"}))
    taken = admin_api.patch(f"/api/v1/triggers/{other['id']}", json={"name": first["name"]})
    assert error_of(taken, 409)["code"] == "name_taken"
    assert admin_api.get(f"/api/v1/triggers/{other['id']}").get_json()["name"] == "Other"


def test_preview_shows_the_tickets_the_conditions_match_now(
    admin_api: ApiClient, make_ticket: MakeTicket
) -> None:
    refund = make_ticket(subject="Refund for order 7").ticket
    make_ticket(subject="Where is my parcel?")
    answer = admin_api.post(
        "/api/v1/triggers/preview",
        json={"conditions": [{"field": "subject", "op": "contains", "value": "refund"}]},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {
        "tickets": [{"number": refund.number, "subject": "Refund for order 7", "status": "new"}],
        "looked_at": 2,
    }
    error = error_of(
        admin_api.post(
            "/api/v1/triggers/preview", json={"conditions": [{"field": "x", "op": "is"}]}
        ),
        422,
    )
    assert error["code"] == "invalid_conditions"


def test_webhooks_carry_the_rule_as_get_returns_it(
    app: Flask, admin_api: ApiClient, receiver: Receiver
) -> None:
    hook = admin_api.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "events": ["rule.created", "rule.updated", "rule.deleted"]},
    )
    assert hook.status_code == 201, hook.get_data(as_text=True)
    secret = hook.get_json()["secret"]
    made = _made(admin_api.post("/api/v1/triggers", json=ISSUE))
    url = f"/api/v1/triggers/{made['id']}"
    assert admin_api.patch(url, json={"stop": True}).status_code == 200
    assert admin_api.delete(url).status_code == 204

    assert shared_pump(app, own_thread=True) == 3
    created, updated, deleted = receiver.wait_for(3)
    assert all(signature_ok(secret, r.headers, r.body) for r in (created, updated, deleted))
    assert [r.json["event"] for r in (created, updated, deleted)] == [
        "rule.created",
        "rule.updated",
        "rule.deleted",
    ]
    assert updated.json["details"]["changes"] == {"stop": {"from": False, "to": True}}
    # Gone by the time of delivery: the event's own data.
    assert deleted.json["data"] == {"type": "rule", "id": made["id"], "name": ISSUE["name"]}


def test_webhook_data_of_a_live_rule_is_the_get(
    app: Flask, admin_api: ApiClient, receiver: Receiver
) -> None:
    hook = admin_api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["rule.created"]}
    )
    assert hook.status_code == 201
    made = _made(admin_api.post("/api/v1/triggers", json=ISSUE))
    assert shared_pump(app, own_thread=True) == 1
    (created,) = receiver.wait_for(1)
    assert created.json["data"] == {"kind": "event", **made}


def test_the_operations_keep_their_promises(
    app: Flask, admin: Agent, make_token: MakeToken, make_ticket: MakeTicket
) -> None:
    make_ticket(subject="Seeded refund")
    secret = make_token(admin, "admin")
    client = ApiClient(app, secret)
    trigger = _made(client.post("/api/v1/triggers", json=ISSUE))
    timed = _made(
        client.post(
            "/api/v1/time-rules",
            json={"name": "Old", "after_hours": 5, "actions": ISSUE["actions"]},
        )
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    every: list[Any] = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [
        op for op in every if {"Triggers", "Time rules"} & set(op.definition.raw.get("tags", []))
    ]
    assert len(operations) == 11
    runs: list[tuple[Any, GenerationMode, dict[str, Any]]] = [
        (op, mode, {}) for op, mode in itertools.product(operations, GenerationMode)
    ] + [
        (
            op,
            GenerationMode.POSITIVE,
            {"rule_id": trigger["id"] if op.path.startswith("/api/v1/triggers") else timed["id"]},
        )
        for op in operations
        if "{rule_id}" in op.path and op.method.upper() != "DELETE"
    ]
    keep_promises(runs, secret, max_examples=6)
