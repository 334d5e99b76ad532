"""The contract every resource shares: the error shape, pagination, Idempotency-Key, the rate
limit, languages, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Ticket
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import MakeTicket, bn


def test_error_shape_for_each_status(
    app: Flask, api: ApiClient, agent: Agent, make_token: MakeToken, make_ticket: MakeTicket
) -> None:
    number = make_ticket().ticket.number
    # 400: a service's refusal (merging a ticket into itself), with its code.
    assert error_of(api.post(f"/api/v1/tickets/{number}/merge", json={"into": number}), 400)
    # 401, 403
    assert error_of(ApiClient(app, None).get("/api/v1/tickets"), 401)["code"] == "unauthorized"
    read = ApiClient(app, make_token(agent, "read"))
    assert error_of(read.patch(f"/api/v1/tickets/{number}", json={}), 403)["code"] == "forbidden"
    # 404: a missing ticket, and a path no route has (Werkzeug's own 404).
    assert error_of(api.get("/api/v1/tickets/999999"), 404)["code"] == "not_found"
    assert error_of(api.get("/api/v1/no-such-thing"), 404)["code"] == "not_found"
    # 405 with Allow
    response = api.delete(f"/api/v1/tickets/{number}")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "PATCH" in response.headers["Allow"]
    # 409: a reply written against a version of the ticket that changed since.
    read_version = api.get(f"/api/v1/tickets/{number}").get_json()["version"]
    fresh = api.post(
        f"/api/v1/tickets/{number}/messages", json={"body": "Hi", "version": read_version}
    )
    assert fresh.status_code == 201
    conflict = api.post(
        f"/api/v1/tickets/{number}/messages", json={"body": "Again", "version": read_version}
    )
    assert error_of(conflict, 409)["code"] == "conflict"
    # 422: the library's validation, every field named.
    error = error_of(
        api.post("/api/v1/tickets", json={"subject": "", "customer": {"email": "nope"}}), 422
    )
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"subject", "body", "customer.email"}
    error = error_of(api.get("/api/v1/tickets?limit=1000&status=bogus"), 422)
    assert set(error["fields"]) == {"limit", "status"}
    error = error_of(api.patch(f"/api/v1/tickets/{number}", json={"colour": "red"}), 422)
    assert set(error["fields"]) == {"colour"}


def test_an_unexpected_error_is_a_500_in_the_shape_without_a_traceback(
    app: Flask, api: ApiClient, make_ticket: MakeTicket, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = make_ticket().ticket.number
    from helpdesk.api import serialize

    def broken(*args: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(serialize, "ticket_json", broken)
    response = api.get(f"/api/v1/tickets/{number}")
    error = error_of(response, 500)
    assert error["code"] == "internal" and "secret internals" not in response.get_data(as_text=True)


def test_messages_follow_accept_language(app: Flask) -> None:
    response = ApiClient(app, None).get("/api/v1/tickets", headers={"Accept-Language": "bn"})
    assert error_of(response, 401)["message"] == bn("A valid API token is required.")


def test_nul_characters_are_refused_in_the_shape(api: ApiClient, make_ticket: MakeTicket) -> None:
    number = make_ticket().ticket.number
    for response in (
        api.get("/api/v1/tickets?q=a%00b"),
        api.post(
            "/api/v1/tickets",
            json={"subject": "a\x00b", "body": "x", "customer": {"email": "c@example.com"}},
        ),
        api.post(f"/api/v1/tickets/{number}/messages", json={"body": "x\x00"}),
    ):
        assert error_of(response, 400)["code"] == "nul_character"


def test_pagination_walks_every_ticket_once_while_tickets_arrive(
    api: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    for i in range(7):
        make_ticket(sender=f"c{i}@example.com")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/tickets?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).get_json()
        seen += [t["number"] for t in body["tickets"]]
        cursor = body["next_cursor"]
        pages += 1
        # New tickets between pages: newest first, they are before the cursor.
        make_ticket(sender=f"late{pages}@example.com")
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)
    assert session.scalar(select(func.count()).select_from(Ticket)) == 10


def test_limit_default_and_bad_cursor(api: ApiClient, make_ticket: MakeTicket) -> None:
    for i in range(27):
        make_ticket(sender=f"p{i}@example.com", commit=False)
    make_ticket(sender="last@example.com")
    body = api.get("/api/v1/tickets").get_json()
    assert len(body["tickets"]) == 25 and body["next_cursor"]
    error = error_of(api.get("/api/v1/tickets?cursor=garbage"), 400)
    assert error["code"] == "invalid_cursor"
    # A cursor of one sort is no cursor of another.
    error_of(api.get(f"/api/v1/tickets?sort=updated&cursor={body['next_cursor']}"), 400)


NEW = {
    "subject": "Refund for order 1234",
    "body": "Please refund my order.",
    "customer": {"email": "buyer@example.com", "name": "Bea Buyer"},
}


def test_idempotency_key_replays_the_first_response(api: ApiClient, session: Session) -> None:
    headers = {"Idempotency-Key": "order-1234-refund"}
    first = api.post("/api/v1/tickets", json=NEW, headers=headers)
    assert first.status_code == 201
    again = api.post("/api/v1/tickets", json=NEW, headers=headers)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1
    # The same key with another body: refused, nothing created.
    other = api.post("/api/v1/tickets", json={**NEW, "subject": "Other"}, headers=headers)
    assert error_of(other, 422)["code"] == "idempotency_key_reused"
    # Without a key, or with another key, a second ticket.
    assert api.post("/api/v1/tickets", json=NEW).status_code == 201
    assert (
        api.post("/api/v1/tickets", json=NEW, headers={"Idempotency-Key": "k2"}).status_code == 201
    )
    assert session.scalar(select(func.count()).select_from(Ticket)) == 3


def test_idempotency_keys_belong_to_one_token(
    app: Flask, api: ApiClient, agent: Agent, make_token: MakeToken, session: Session
) -> None:
    other = ApiClient(app, make_token(agent, "write", name="other"))
    headers = {"Idempotency-Key": "same"}
    a = api.post("/api/v1/tickets", json=NEW, headers=headers).get_json()
    b = other.post("/api/v1/tickets", json=NEW, headers=headers).get_json()
    assert a["number"] != b["number"]


def test_two_requests_racing_with_one_key_open_one_ticket(
    app: Flask, api: ApiClient, session: Session
) -> None:
    import threading

    barrier = threading.Barrier(2)
    results: list[Any] = []

    def send() -> None:
        client = ApiClient(app, api.secret)
        barrier.wait()
        response = client.post("/api/v1/tickets", json=NEW, headers={"Idempotency-Key": "race"})
        results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(2)]
    session.rollback()  # the test's own transaction must not hold SQLite's write lock
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    assert results[0] == results[1] and results[0][0] == 201
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1
