"""Business-hours calendars through the REST API: any agent reads ``/api/v1/calendars``, an
admin's admin token writes; the issue's POST shape round-trips; bad hours, zones and dates are
422 naming the field in the reader's language; Bangladesh's public holidays are copied in with
their Bengali names; webhooks carry the calendar as GET returns it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import GenerationMode
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import api_tokens
from tests.api.conftest import ApiClient, error_of
from tests.api.test_openapi import keep_promises
from tests.conftest import bn
from tests.helpdesk.webhook_receiver import Receiver, signature_ok
from tests.helpdesk.webhook_receiver import pump as shared_pump

pytestmark = pytest.mark.usefixtures("db_backend")

ISSUE = {
    "name": "Dhaka office",
    "timezone": "Asia/Dhaka",
    "hours": {
        "sun": [["09:00", "17:00"]],
        "mon": [["09:00", "13:00"], ["14:00", "17:00"]],
        "tue": [["09:00", "17:00"]],
        "wed": [["09:00", "17:00"]],
        "thu": [["09:00", "17:00"]],
    },
    "holidays": ["2026-12-16", "2027-02-21"],
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
def app_config(receiver: Receiver) -> dict[str, Any]:
    return {
        "WEBHOOK_ALLOWED_HOSTS": receiver.host,
        "BASE_URL": "http://localhost",
        "API_RATE_LIMIT": "100000 per minute",
    }


def _create(admin_api: ApiClient, **body: Any) -> dict[str, Any]:
    made = admin_api.post("/api/v1/calendars", json=body)
    assert made.status_code == 201, made.get_data(as_text=True)
    return dict(made.get_json())


def test_the_issues_post_shape_round_trips_and_any_agent_reads_it(
    admin_api: ApiClient, api: ApiClient
) -> None:
    made = _create(admin_api, **ISSUE)
    assert made["name"] == "Dhaka office" and made["timezone"] == "Asia/Dhaka"
    assert made["hours"] == ISSUE["hours"]  # fri and sat left out: closed
    assert [h["date"] for h in made["holidays"]] == ISSUE["holidays"]
    assert made["holidays"][0] == {
        "date": "2026-12-16",
        "name": "",
        "name_bn": "",
        "source": "custom",
        "estimated": False,
    }
    assert made["country"] is None and made["default"] is False
    assert made["created_at"] and made["updated_at"]

    got = api.get(f"/api/v1/calendars/{made['id']}")
    assert got.status_code == 200 and got.get_json() == made
    listed = api.get("/api/v1/calendars").get_json()["calendars"]
    assert [c["name"] for c in listed] == ["Dhaka office"]
    assert error_of(api.get("/api/v1/calendars/999999"), 404)["code"] == "not_found"


def test_only_an_admins_admin_token_writes(
    app: Flask, session: Session, admin: Agent, admin_api: ApiClient, api: ApiClient
) -> None:
    made = _create(admin_api, name="Support")
    url = f"/api/v1/calendars/{made['id']}"
    admins_write = _client(app, session, admin, "write")
    for client in (api, admins_write):
        assert error_of(client.post("/api/v1/calendars", json={"name": "X"}), 403)
        assert error_of(client.patch(url, json={"name": "Y"}), 403)
        assert error_of(client.delete(url), 403)
        assert error_of(client.post(f"{url}/public-holidays", json={"years": [2027]}), 403)
        assert client.get(url).status_code == 200
    assert api.get(url).get_json()["name"] == "Support"


def test_an_admin_changes_makes_default_and_deletes(admin_api: ApiClient) -> None:
    first = _create(admin_api, name="Head office", default=True)
    assert first["default"] is True
    second = _create(admin_api, name="Night shift", holidays=["2026-12-25"])
    url = f"/api/v1/calendars/{second['id']}"

    changed = admin_api.patch(
        url,
        json={
            "name": "Night desk",
            "timezone": "Asia/Kolkata",
            "hours": {"sat": [["20:00", "24:00"]]},
            "holidays": ["2026-12-31"],
        },
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    body = changed.get_json()
    assert body["name"] == "Night desk" and body["timezone"] == "Asia/Kolkata"
    assert body["hours"] == {"sat": [["20:00", "24:00"]]}
    assert [h["date"] for h in body["holidays"]] == ["2026-12-31"]

    # The default cannot be deleted nor un-defaulted; making another the default moves it.
    head = f"/api/v1/calendars/{first['id']}"
    assert error_of(admin_api.delete(head), 409)["code"] == "calendar_is_default"
    assert error_of(admin_api.patch(head, json={"default": False}), 409)["code"] == (
        "calendar_is_default"
    )
    assert admin_api.patch(url, json={"default": True}).get_json()["default"] is True
    assert admin_api.get(head).get_json()["default"] is False
    assert admin_api.delete(head).status_code == 204
    assert error_of(admin_api.get(head), 404)["code"] == "not_found"
    assert [c["name"] for c in admin_api.get("/api/v1/calendars").get_json()["calendars"]] == [
        "Night desk"
    ]


@pytest.mark.parametrize(
    ("body", "field", "code", "english"),
    [
        (
            {"hours": {"sun": [["17:00", "09:00"]]}},
            "hours",
            "invalid_hours",
            "%(day)s: an interval must end after it starts.",
        ),
        (
            {"hours": {"sun": [["9am", "5pm"]]}},
            "hours",
            "invalid_hours",
            "%(day)s: write hours like 09:00-17:00.",
        ),
        (
            {"timezone": "Mars/Olympus"},
            "timezone",
            "invalid_timezone",
            "Unknown time zone: %(zone)s",
        ),
        (
            {"holidays": ["2026-13-01"]},
            "holidays",
            "invalid_holiday",
            "%(value)s is not a date (YYYY-MM-DD).",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field_in_the_readers_language(
    admin_api: ApiClient, body: dict[str, Any], field: str, code: str, english: str
) -> None:
    for language, message in (("en", english), ("bn", bn(english))):
        error = error_of(
            admin_api.post(
                "/api/v1/calendars",
                json={"name": "Bad", **body},
                headers={"Accept-Language": language},
            ),
            422,
        )
        assert error["code"] == code
        head = message.split("%(")[0]
        assert error["fields"][field].startswith(head) and error["message"].startswith(head)
    assert admin_api.get("/api/v1/calendars").get_json()["calendars"] == []


def test_a_taken_name_is_409_and_a_bad_patch_changes_nothing(admin_api: ApiClient) -> None:
    made = _create(admin_api, name="Support")
    other = _create(admin_api, name="Sales")
    error = error_of(
        admin_api.post(
            "/api/v1/calendars", json={"name": "Support"}, headers={"Accept-Language": "bn"}
        ),
        409,
    )
    assert error["code"] == "name_taken"
    assert error["message"] == bn("A calendar named %(name)s exists already.").replace(
        "%(name)s", "Support"
    )
    url = f"/api/v1/calendars/{other['id']}"
    assert error_of(admin_api.patch(url, json={"name": "Support"}), 409)["code"] == "name_taken"
    assert error_of(admin_api.patch(url, json={"hours": {"fri": [["x", "y"]]}}), 422)
    assert admin_api.get(url).get_json() == other
    assert admin_api.get(f"/api/v1/calendars/{made['id']}").get_json()["name"] == "Support"


def test_bangladeshs_public_holidays_are_copied_in_with_bengali_names(
    admin_api: ApiClient, api: ApiClient
) -> None:
    made = _create(admin_api, name="Dhaka", country="BD", years=[2026])
    days = {h["date"]: h for h in made["holidays"]}
    assert made["country"] == "BD"
    assert days["2026-03-26"]["name"] == "Independence Day"
    assert days["2026-03-26"]["name_bn"] == "স্বাধীনতা দিবস" and days["2026-03-26"]["source"] == "BD"
    assert {d for d in days if days[d]["name"] == "Eid al-Fitr"} == {
        "2026-03-21",
        "2026-03-22",
        "2026-03-23",
    }

    url = f"/api/v1/calendars/{made['id']}/public-holidays"
    added = admin_api.post(url, json={"years": [2027]})
    assert added.status_code == 200, added.get_data(as_text=True)
    answer = added.get_json()
    assert answer["added"] == len([h for h in answer["calendar"]["holidays"] if h["date"] > "2027"])
    assert answer["added"] >= 15
    eid_2027 = [h for h in answer["calendar"]["holidays"] if h["name"] == "Eid al-Fitr"][3:]
    assert eid_2027 and all(h["estimated"] and h["name_bn"] == "ঈদুল ফিতর" for h in eid_2027)
    # Again: nothing new; an unknown country is 422 naming it.
    assert admin_api.post(url, json={"years": [2027]}).get_json()["added"] == 0
    error = error_of(admin_api.post(url, json={"country": "ZZ", "years": [2027]}), 422)
    assert error["code"] == "unknown_country" and "country" in error["fields"]
    assert error_of(admin_api.post(url, json={"years": []}), 422)["fields"]["years"]
    assert api.get(f"/api/v1/calendars/{made['id']}").get_json() == answer["calendar"]


def test_webhooks_carry_the_calendar_as_get_returns_it(
    app: Flask, admin_api: ApiClient, api: ApiClient, receiver: Receiver
) -> None:
    hook = admin_api.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "events": ["calendar.created", "calendar.deleted"]},
    )
    assert hook.status_code == 201, hook.get_data(as_text=True)
    secret = hook.get_json()["secret"]
    made = _create(admin_api, **ISSUE)
    assert admin_api.delete(f"/api/v1/calendars/{made['id']}").status_code == 204

    assert shared_pump(app, own_thread=True) == 2
    created, deleted = receiver.wait_for(2)
    assert all(signature_ok(secret, r.headers, r.body) for r in (created, deleted))
    assert created.json["event"] == "calendar.created"
    # The calendar is gone by the time of delivery: the event's own data.
    assert deleted.json["event"] == "calendar.deleted"
    assert deleted.json["data"] == {"type": "calendar", "id": made["id"], "name": "Dhaka office"}


def test_a_created_webhook_data_is_the_get(
    app: Flask, admin_api: ApiClient, api: ApiClient, receiver: Receiver
) -> None:
    hook = admin_api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["calendar.updated"]}
    )
    assert hook.status_code == 201
    made = _create(admin_api, **ISSUE)
    assert (
        admin_api.patch(
            f"/api/v1/calendars/{made['id']}", json={"holidays": ["2026-12-16"]}
        ).status_code
        == 200
    )
    assert shared_pump(app, own_thread=True) == 1
    (updated,) = receiver.wait_for(1)
    assert updated.json["data"] == api.get(f"/api/v1/calendars/{made['id']}").get_json()
    assert updated.json["details"]["changes"]["holidays"]["to"] == [
        {"date": "2026-12-16", "name": "", "name_bn": ""}
    ]


def test_the_calendar_operations_keep_their_promises(
    app: Flask, admin_api: ApiClient, admin: Agent, session: Session
) -> None:
    """schemathesis with an admin's admin token (test_openapi's run has a write token: 403s)."""
    made = _create(admin_api, name="Seeded", country="BD", years=[2026])
    secret = api_tokens.create_token(session, admin, "fuzz", "admin").secret
    session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    every: list[Any] = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in every if "Calendars" in op.definition.raw.get("tags", [])]
    assert len(operations) == 6
    runs: list[tuple[Any, GenerationMode, dict[str, Any]]] = [
        (op, mode, {}) for op, mode in itertools.product(operations, GenerationMode)
    ] + [
        (op, GenerationMode.POSITIVE, {"calendar_id": made["id"]})
        for op in operations
        if "{calendar_id}" in op.path
    ]
    keep_promises(runs, secret, max_examples=6)
