"""The customers resource: as an integrator (a CRM) uses it, through the
same service verbs as the customer pages (the event stream says the same)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Customer, Ticket
from helpdesk.services import customers as customer_verbs
from helpdesk.services import stream
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import MakeTicket, bn


def _names(session: Session, after: int) -> list[str]:
    return [e.name for e in stream.read(session, after=after, limit=100)]


def test_create_get_and_find_by_email(api: ApiClient, session: Session) -> None:
    start = stream.last_id(session)
    made = api.post(
        "/api/v1/customers",
        json={
            "email": "Rahim@Example.com",
            "name": "রহিম উদ্দিন",
            "language": "bn",
            "organization": "Acme Ltd",
            "notes": "VIP",
        },
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    body = made.get_json()
    assert body == api.get(f"/api/v1/customers/{body['id']}").get_json()
    assert body["email"] == "rahim@example.com" and body["name"] == "রহিম উদ্দিন"
    assert body["language"] == "bn" and body["notes"] == "VIP"
    assert body["organization"]["name"] == "Acme Ltd"
    assert [(i["kind"], i["value"]) for i in body["identities"]] == [("email", "rahim@example.com")]
    assert body["tickets"] == {
        "total": 0, "new": 0, "open": 0, "pending": 0, "resolved": 0, "closed": 0
    }  # fmt: skip
    assert _names(session, start) == ["organization.created", "customer.created"]
    # ?email= is exact, on any address, case-insensitive like every address.
    found = api.get("/api/v1/customers?email=RAHIM@example.com").get_json()
    assert [c["id"] for c in found["customers"]] == [body["id"]]
    assert api.get("/api/v1/customers?email=rahim@example").get_json()["customers"] == []
    # The address belongs to someone: 409 identity_taken, nothing created.
    taken = api.post("/api/v1/customers", json={"email": "rahim@example.com"})
    assert error_of(taken, 409)["code"] == "identity_taken"
    assert len(session.scalars(select(Customer)).all()) == 1


def test_ticket_counts_and_search(api: ApiClient, make_ticket: MakeTicket) -> None:
    first = make_ticket(sender="bea@example.com", sender_name="Bea Buyer").ticket
    make_ticket(sender="bea@example.com")
    make_ticket(sender="carl@shop.example", sender_name="Carl")
    number = first.number
    api.patch(f"/api/v1/tickets/{number}", json={"status": "pending"})
    customer_id = first.customer_id
    body = api.get(f"/api/v1/customers/{customer_id}").get_json()
    assert body["tickets"]["total"] == 2 and body["tickets"]["pending"] == 1
    by_name = api.get("/api/v1/customers?q=buyer").get_json()["customers"]
    assert [c["id"] for c in by_name] == [customer_id]
    by_address = api.get("/api/v1/customers?q=shop.example").get_json()["customers"]
    assert [c["email"] for c in by_address] == ["carl@shop.example"]
    # LIKE's wildcards are literal characters.
    assert api.get("/api/v1/customers?q=%25").get_json()["customers"] == []
    assert error_of(api.get("/api/v1/customers/999999"), 404)["code"] == "not_found"


def test_pages_walk_every_customer_once(api: ApiClient, session: Session) -> None:
    for i in range(7):
        customer_verbs.create_customer(session, f"p{i}@example.com")
    session.commit()
    seen: list[int] = []
    cursor = None
    while True:
        url = "/api/v1/customers?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).get_json()
        seen += [c["id"] for c in page["customers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7 and seen == sorted(seen, reverse=True)
    assert error_of(api.get("/api/v1/customers?cursor=bm9wZQ"), 400)["code"] == "invalid_cursor"
    ticket_cursor = api.get("/api/v1/tickets?limit=1").get_json()["next_cursor"]
    if ticket_cursor:
        error_of(api.get(f"/api/v1/customers?cursor={ticket_cursor}"), 400)


def test_patch_changes_only_what_is_given(api: ApiClient, session: Session) -> None:
    made = api.post("/api/v1/customers", json={"email": "c@example.com", "name": "C"}).get_json()
    start = stream.last_id(session)
    url = f"/api/v1/customers/{made['id']}"
    body = api.patch(url, json={"organization": "Globex", "notes": "Calls on Mondays"}).get_json()
    assert body["name"] == "C" and body["organization"]["name"] == "Globex"
    assert body["notes"] == "Calls on Mondays"
    body = api.patch(url, json={"organization": None, "language": "en"}).get_json()
    assert body["organization"] is None and body["language"] == "en"
    assert _names(session, start) == [
        "organization.created", "customer.updated", "customer.updated"
    ]  # fmt: skip
    error = error_of(api.patch(url, json={"email": "x@example.com"}), 422)
    assert set(error["fields"]) == {"email"}
    assert set(error_of(api.patch(url, json={"language": "no way"}), 422)["fields"]) == {"language"}


def test_merge_moves_identities_and_tickets(
    api: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    a = make_ticket(sender="old@example.com").ticket
    b = make_ticket(sender="new@example.com").ticket
    source, target = a.customer_id, b.customer_id
    merged = api.post(f"/api/v1/customers/{source}/merge", json={"into": target})
    assert merged.status_code == 200, merged.get_data(as_text=True)
    body = merged.get_json()
    assert body["id"] == target and body["tickets"]["total"] == 2
    assert {i["value"] for i in body["identities"]} == {"old@example.com", "new@example.com"}
    error_of(api.get(f"/api/v1/customers/{source}"), 404)
    session.expire_all()
    assert session.get(Ticket, a.id).customer_id == target  # type: ignore[union-attr]
    error = error_of(api.post(f"/api/v1/customers/{target}/merge", json={"into": target}), 400)
    assert error["code"] == "invalid"
    error_of(api.post(f"/api/v1/customers/{target}/merge", json={"into": 999999}), 404)


def test_add_identity(api: ApiClient, session: Session) -> None:
    one = api.post("/api/v1/customers", json={"email": "one@example.com"}).get_json()
    two = api.post("/api/v1/customers", json={"email": "two@example.com"}).get_json()
    added = api.post(
        f"/api/v1/customers/{one['id']}/identities",
        json={"kind": "email", "value": "One.Work@Example.com"},
    )
    assert added.status_code == 201
    values = [i["value"] for i in added.get_json()["identities"]]
    assert values == ["one@example.com", "one.work@example.com"]
    found = api.get("/api/v1/customers?email=one.work@example.com").get_json()["customers"]
    assert [c["id"] for c in found] == [one["id"]]
    # Someone else's address: 409 identity_taken (in Bengali too).
    taken = api.post(
        f"/api/v1/customers/{two['id']}/identities",
        json={"kind": "email", "value": "one@example.com"},
        headers={"Accept-Language": "bn"},
    )
    error = error_of(taken, 409)
    assert error["code"] == "identity_taken"
    assert error["message"] == bn("This identity belongs to another customer.")
    bad = api.post(f"/api/v1/customers/{two['id']}/identities", json={"kind": "fax", "value": "1"})
    assert set(error_of(bad, 422)["fields"]) == {"kind"}


def test_create_is_idempotent(api: ApiClient, session: Session) -> None:
    headers = {"Idempotency-Key": "crm-contact-7"}
    first = api.post("/api/v1/customers", json={"email": "k@example.com"}, headers=headers)
    again = api.post("/api/v1/customers", json={"email": "k@example.com"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"


def test_read_token_cannot_change_customers(
    app: Flask, agent: Agent, make_token: MakeToken, session: Session
) -> None:
    read = ApiClient(app, make_token(agent, "read"))
    customer = customer_verbs.create_customer(session, "r@example.com")
    session.commit()
    assert read.get(f"/api/v1/customers/{customer.id}").status_code == 200
    for response in (
        read.post("/api/v1/customers", json={"email": "s@example.com"}),
        read.patch(f"/api/v1/customers/{customer.id}", json={"name": "X"}),
        read.post(f"/api/v1/customers/{customer.id}/merge", json={"into": customer.id}),
        read.post(
            f"/api/v1/customers/{customer.id}/identities",
            json={"kind": "email", "value": "t@example.com"},
        ),
    ):
        assert error_of(response, 403)["code"] == "forbidden"
