"""The webhooks resource (admin tokens) against a real receiver: a webhook registered through
the API, a ticket created through the API, and the delivery's ``data`` is the ticket exactly as
``GET /api/v1/tickets/<number>`` returns it (attachment URLs included); the signature is checked
by the receiver's own HMAC code."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask

from helpdesk.models import Agent
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.helpdesk.webhook_receiver import Receiver, pump, signature_ok


@pytest.fixture
def app_config(receiver: Receiver) -> dict[str, Any]:
    # BASE_URL: the worker builds attachment URLs from it; the test client's requests come to
    # http://localhost, so GET's URLs and the delivery's agree.
    return {"WEBHOOK_ALLOWED_HOSTS": receiver.host, "BASE_URL": "http://localhost"}


def test_a_delivery_carries_the_ticket_as_get_returns_it(
    app: Flask, admin: Agent, make_token: MakeToken, receiver: Receiver
) -> None:
    api = ApiClient(app, make_token(admin, "admin"))
    made = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["ticket.created"]})
    assert made.status_code == 201, made.get_data(as_text=True)
    hook = made.get_json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["ticket.created"]
    assert hook["active"] is True
    created = api.post(
        "/api/v1/tickets",
        data={
            "subject": "স্ক্রিন ভাঙা",
            "body": "ছবি সংযুক্ত।",
            "customer.email": "rahim@example.com",
            "customer.name": "রহিম",
            "tags": ["hardware"],
            "files": [(io.BytesIO(b"\x89PNG fake"), "screen.png", "image/png")],
        },
        content_type="multipart/form-data",
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    number = created.get_json()["number"]
    assert pump(app) == 1
    (request,) = receiver.wait_for(1)
    assert signature_ok(hook["secret"], request.headers, request.body)
    body = request.json
    assert body["event"] == "ticket.created"
    get = api.get(f"/api/v1/tickets/{number}").get_json()
    assert body["data"] == get
    [attachment] = get["messages"][0]["attachments"]
    assert attachment["url"].startswith("http://localhost/api/v1/attachments/")

    # The log, one delivery's request and answer, and a redelivery of the same body.
    page = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()
    [delivery] = page["deliveries"]
    assert delivery["state"] == "delivered" and delivery["response_code"] == 200
    assert delivery["event_id"] == body["id"] and page["next_cursor"] is None
    detail = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}").get_json()
    assert detail["request_body"] == body and detail["response_excerpt"] == "ok"
    again = api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 201 and again.get_json()["redelivery_of"] == delivery["id"]
    assert pump(app) == 1
    second = receiver.wait_for(2)[1]
    assert second.body == request.body
    assert second.headers["X-Helpdesk-Delivery"] == str(again.get_json()["id"])


def test_list_change_rotate_and_delete(
    app: Flask, admin: Agent, make_token: MakeToken, receiver: Receiver
) -> None:
    api = ApiClient(app, make_token(admin, "admin"))
    hook = api.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["ticket.updated"]}
    ).get_json()
    url = f"/api/v1/webhooks/{hook['id']}"
    listed = api.get("/api/v1/webhooks").get_json()["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]
    assert "secret" not in api.get(url).get_json()
    changed = api.patch(
        url, json={"events": ["ticket.created", "customer.created"], "active": False}
    ).get_json()
    assert changed["events"] == ["ticket.created", "customer.created"]
    assert changed["active"] is False and changed["disabled_at"]
    assert api.patch(url, json={"active": True}).get_json()["active"] is True
    rotated = api.post(f"{url}/rotate-secret").get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != hook["secret"]
    assert api.delete(url).status_code == 204
    error_of(api.get(url), 404)
    assert api.get("/api/v1/webhooks").get_json()["webhooks"] == []


def test_refusals(
    app: Flask, agent: Agent, admin: Agent, make_token: MakeToken, receiver: Receiver
) -> None:
    api = ApiClient(app, make_token(admin, "admin"))
    # Request forgery: a loopback address not allowed by WEBHOOK_ALLOWED_HOSTS.
    unsafe = api.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:1/x", "events": ["ticket.created"]}
    )
    assert error_of(unsafe, 400)["code"] == "invalid"
    unknown = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["nope"]})
    assert set(error_of(unknown, 422)["fields"]) == {"events.0"}
    empty = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": []})
    assert set(error_of(empty, 422)["fields"]) == {"events"}
    # Agents' tokens, whatever their scope, reach no webhook (not even the list).
    write = ApiClient(app, make_token(agent, "write"))
    error_of(write.get("/api/v1/webhooks"), 403)
    error_of(
        write.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["ticket.created"]}),
        403,
    )
    error_of(api.get("/api/v1/webhooks/999999/deliveries"), 404)
    error_of(api.get("/api/v1/webhooks/999999/deliveries?cursor=bm9wZQ"), 400)
