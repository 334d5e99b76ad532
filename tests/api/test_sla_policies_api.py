"""SLA policies through the REST API: any agent reads ``/api/v1/sla-policies``, an admin's admin
token writes; the issue's POST shape round-trips (priorities by name or 1-4); bad targets,
conditions and calendars are 422 naming the field in the reader's language, a taken name 409;
a ticket's JSON carries its ``sla``."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from flask import Flask
from schemathesis import GenerationMode
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import api_tokens, sla, stream, tickets
from helpdesk.services.customers import resolve_customer
from tests.api.conftest import ApiClient, error_of
from tests.api.test_openapi import keep_promises

pytestmark = pytest.mark.usefixtures("db_backend")
DHAKA = ZoneInfo("Asia/Dhaka")
NOW = datetime(2026, 12, 3, 16, tzinfo=DHAKA)  # a Thursday, an hour before closing

ISSUE = {
    "name": "Standard",
    "targets": {
        "normal": {"first_response_minutes": 240, "resolution_minutes": 480},
        "4": {"first_response_minutes": 60, "next_response_minutes": 30},
    },
    "conditions": [{"field": "channel", "op": "is", "value": "email"}],
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


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"API_RATE_LIMIT": "100000 per minute"}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sla, "utcnow", lambda: NOW)
    sla.forget()


def _create(admin_api: ApiClient, **body: Any) -> dict[str, Any]:
    made = admin_api.post("/api/v1/sla-policies", json=body)
    assert made.status_code == 201, made.get_data(as_text=True)
    return dict(made.get_json())


def test_the_issues_shape_round_trips_and_any_agent_reads_it(
    admin_api: ApiClient, api: ApiClient, session: Session
) -> None:
    after = stream.last_id(session)
    made = _create(admin_api, **ISSUE)
    assert made["targets"] == {
        "normal": {"first_response_minutes": 240, "resolution_minutes": 480},
        "urgent": {"first_response_minutes": 60, "next_response_minutes": 30},
    }
    assert made["conditions"] == ISSUE["conditions"]
    assert made["business_hours"] is True and made["calendar_id"] is None
    assert made["position"] == 0 and made["active"] is True and made["warning_minutes"] == 30
    second = _create(admin_api, name="Chat", targets={"1": {"resolution_minutes": 60}})
    assert second["position"] == 1
    listed = api.get("/api/v1/sla-policies").get_json()["sla_policies"]
    assert [p["name"] for p in listed] == ["Standard", "Chat"]
    assert api.get(f"/api/v1/sla-policies/{made['id']}").get_json() == made
    events = [e.name for e in stream.read(session, after=after)]
    assert events.count("sla_policy.created") == 2


def test_patch_changes_what_is_given_and_delete_removes(
    admin_api: ApiClient, api: ApiClient
) -> None:
    made = _create(admin_api, **ISSUE)
    changed = admin_api.patch(
        f"/api/v1/sla-policies/{made['id']}",
        json={"business_hours": False, "warning_minutes": 15, "position": 3, "active": False},
    )
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["business_hours"], body["warning_minutes"], body["position"]) == (False, 15, 3)
    assert body["active"] is False and body["targets"] == made["targets"]
    assert admin_api.delete(f"/api/v1/sla-policies/{made['id']}").status_code == 204
    assert error_of(api.get(f"/api/v1/sla-policies/{made['id']}"), 404)["code"] == "not_found"


def test_writing_is_for_an_admins_admin_token(
    api: ApiClient, app: Flask, session: Session, admin: Agent
) -> None:
    assert error_of(api.post("/api/v1/sla-policies", json=ISSUE), 403)["code"] == "forbidden"
    admin_write = _client(app, session, admin, "write")
    refused = admin_write.post("/api/v1/sla-policies", json=ISSUE)
    assert error_of(refused, 403)["code"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"targets": {"someday": {"first_response_minutes": 5}}}, "invalid_targets", "targets"),
        ({"targets": {}}, "invalid_targets", "targets"),
        (
            {"conditions": [{"field": "colour", "op": "is", "value": "red"}]},
            "invalid_conditions",
            "conditions",
        ),
        ({"calendar_id": 999999}, "unknown_calendar", "calendar_id"),
    ],
)
def test_refusals_name_the_field(
    admin_api: ApiClient, body: dict[str, Any], code: str, field: str
) -> None:
    error = error_of(admin_api.post("/api/v1/sla-policies", json={**ISSUE, **body}), 422)
    assert error["code"] == code and set(error["fields"]) == {field}


def test_refusals_in_bengali_and_a_taken_name(admin_api: ApiClient) -> None:
    bad = {**ISSUE, "conditions": [{"field": "colour", "op": "is", "value": "x"}]}
    answer = admin_api.post("/api/v1/sla-policies", json=bad, headers={"Accept-Language": "bn"})
    error = error_of(answer, 422)
    assert error["code"] == "invalid_conditions"
    assert "শর্ত" in error["fields"]["conditions"], error  # "Condition 1: unknown field"
    _create(admin_api, **ISSUE)
    taken = error_of(admin_api.post("/api/v1/sla-policies", json=ISSUE), 409)
    assert taken["code"] == "name_taken" and "Standard" in taken["message"]


def test_a_tickets_json_carries_its_sla(
    admin_api: ApiClient, api: ApiClient, session: Session
) -> None:
    customer = resolve_customer(session, "email", "rahim@example.com", name="Rahim")
    plain = tickets.open_ticket(
        session, customer=customer, subject="Before", channel="email", created_at=NOW
    )
    session.commit()
    assert api.get(f"/api/v1/tickets/{plain.number}").get_json()["sla"] is None
    _create(admin_api, **ISSUE)
    sla.forget()
    ticket = tickets.open_ticket(
        session, customer=customer, subject="Order", channel="email", created_at=NOW
    )
    session.commit()
    got = api.get(f"/api/v1/tickets/{ticket.number}").get_json()["sla"]
    assert got["policy"] == "Standard" and got["breached"] == []
    # Four business hours from Thursday 16:00 in Dhaka (closing at 17:00, Friday and
    # Saturday the weekend): Sunday noon.
    due = datetime.fromisoformat(got["first_response_due_at"])
    assert due == datetime(2026, 12, 6, 12, tzinfo=DHAKA)
    assert got["targets"]["first_response"] == {
        "status": "running",
        "due_at": got["first_response_due_at"],
    }
    assert got["next_response_due_at"] is None


def test_the_sla_operations_keep_their_promises(
    app: Flask, admin_api: ApiClient, admin: Agent, session: Session
) -> None:
    """schemathesis with an admin's admin token."""
    made = _create(admin_api, **ISSUE)
    secret = api_tokens.create_token(session, admin, "fuzz", "admin").secret
    session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    every: list[Any] = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in every if "SLA policies" in op.definition.raw.get("tags", [])]
    assert len(operations) == 5
    runs: list[tuple[Any, GenerationMode, dict[str, Any]]] = [
        (op, mode, {}) for op, mode in itertools.product(operations, GenerationMode)
    ] + [
        (op, GenerationMode.POSITIVE, {"policy_id": made["id"]})
        for op in operations
        if "{policy_id}" in op.path
    ]
    keep_promises(runs, secret, max_examples=6)
