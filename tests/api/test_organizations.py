"""The organizations resource as an integrator (a CRM) uses it: list and search by name or
domain, read, create, change, merge, link the known customers by domain; 422 fields, 409 for a
taken name or domain, and the same events as the pages."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import stream
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import MakeTicket, bn


def _events(session: Session, after: int) -> list[stream.StoredEvent]:
    return stream.read(session, after=after, limit=100)


def test_create_read_change_and_search(api: ApiClient, session: Session) -> None:
    start = stream.last_id(session)
    made = api.post(
        "/api/v1/organizations",
        json={"name": "বিকাশ লিমিটেড", "domains": ["Bikash.example"], "notes": "VIP"},
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    body = made.get_json()
    assert body == api.get(f"/api/v1/organizations/{body['id']}").get_json()
    assert body["domains"] == ["bikash.example"] and body["notes"] == "VIP"
    assert body["customer_count"] == 0 and body["tickets"]["total"] == 0
    org_id = body["id"]
    changed = api.patch(
        f"/api/v1/organizations/{org_id}",
        json={"name": "বিকাশ", "domains": ["bikash.example", "bkash.example"]},
    ).get_json()
    assert changed["name"] == "বিকাশ" and changed["domains"] == ["bikash.example", "bkash.example"]
    assert changed["notes"] == "VIP"  # not given: unchanged
    created, updated = _events(session, start)
    assert created.name == "organization.created"
    assert updated.name == "organization.updated" and updated.subject_id == org_id
    assert updated.data["changes"] == {
        "name": {"from": "বিকাশ লিমিটেড", "to": "বিকাশ"},
        "domains": {"from": ["bikash.example"], "to": ["bikash.example", "bkash.example"]},
    }
    api.post("/api/v1/organizations", json={"name": "Globex"})
    # q finds by name or by domain; pages by cursor.
    found = api.get("/api/v1/organizations?q=BKASH").get_json()["organizations"]
    assert [o["id"] for o in found] == [org_id]
    assert [o["name"] for o in api.get("/api/v1/organizations?q=glob").get_json()["organizations"]]
    first = api.get("/api/v1/organizations?limit=1").get_json()
    assert first["organizations"][0]["name"] == "Globex" and first["next_cursor"]
    second = api.get(f"/api/v1/organizations?limit=1&cursor={first['next_cursor']}").get_json()
    assert second["organizations"][0]["id"] == org_id and second["next_cursor"] is None


def test_refusals(api: ApiClient) -> None:
    org = api.post("/api/v1/organizations", json={"name": "Acme", "domains": ["acme.example"]})
    org_id = org.get_json()["id"]
    taken = api.post(
        "/api/v1/organizations",
        json={"name": "Other", "domains": ["ACME.example"]},
        headers={"Accept-Language": "bn"},
    )
    error = error_of(taken, 409)
    assert error["code"] == "domain_taken"
    assert error["message"] == bn(
        "The domain %(domain)s belongs to another organization: %(name)s."
    ) % {"domain": "acme.example", "name": "Acme"}
    assert error_of(api.post("/api/v1/organizations", json={"name": "ACME"}), 409)["code"] == (
        "name_taken"
    )
    bad = error_of(api.post("/api/v1/organizations", json={"name": "X", "domains": ["nope"]}), 422)
    assert set(bad["fields"]) == {"domains"} and "nope" in bad["fields"]["domains"]
    blank = error_of(api.post("/api/v1/organizations", json={"name": "   "}), 422)
    assert set(blank["fields"]) == {"name"}
    missing = error_of(api.post("/api/v1/organizations", json={"domains": []}), 422)
    assert set(missing["fields"]) == {"name"}
    other = api.post("/api/v1/organizations", json={"name": "Other"}).get_json()["id"]
    patch = api.patch(f"/api/v1/organizations/{other}", json={"domains": ["acme.example"]})
    assert error_of(patch, 409)["code"] == "domain_taken"
    same = error_of(api.post(f"/api/v1/organizations/{org_id}/merge", json={"into": org_id}), 422)
    assert set(same["fields"]) == {"into"}
    unknown = api.post(f"/api/v1/organizations/{org_id}/merge", json={"into": 999999})
    assert set(error_of(unknown, 422)["fields"]) == {"into"}
    error_of(api.get("/api/v1/organizations/999999"), 404)
    error_of(api.patch("/api/v1/organizations/999999", json={"name": "Y"}), 404)


def test_domain_linking_and_merge(
    api: ApiClient, session: Session, make_ticket: MakeTicket
) -> None:
    known = make_ticket(sender="old@acme.example").ticket.customer_id
    acme = api.post(
        "/api/v1/organizations", json={"name": "Acme", "domains": ["acme.example"]}
    ).get_json()
    # A new customer from the domain joins at once; one known before joins on demand.
    new = make_ticket(sender="new@acme.example").ticket.customer_id
    assert api.get(f"/api/v1/customers/{new}").get_json()["organization"]["id"] == acme["id"]
    assert api.get(f"/api/v1/customers/{known}").get_json()["organization"] is None
    start = stream.last_id(session)
    linked = api.post(f"/api/v1/organizations/{acme['id']}/link-domain-customers")
    assert linked.status_code == 200, linked.get_data(as_text=True)
    assert linked.get_json()["linked"] == 1
    assert linked.get_json()["organization"]["customer_count"] == 2
    assert linked.get_json()["organization"]["tickets"]["new"] == 2
    [event] = _events(session, start)
    assert (event.name, event.subject_id) == ("customer.updated", known)
    # Merge: the other's customers and domains move to acme, it is gone.
    old = api.post(
        "/api/v1/organizations",
        json={"name": "Acme BD", "domains": ["acme-bd.example"], "notes": "Dhaka office"},
    ).get_json()
    member = make_ticket(sender="x@acme-bd.example").ticket.customer_id
    start = stream.last_id(session)
    merged = api.post(f"/api/v1/organizations/{old['id']}/merge", json={"into": acme["id"]})
    assert merged.status_code == 200, merged.get_data(as_text=True)
    body = merged.get_json()
    assert body["id"] == acme["id"] and body["customer_count"] == 3
    assert body["domains"] == ["acme-bd.example", "acme.example"]
    assert body["notes"] == "Acme BD:\nDhaka office"
    error_of(api.get(f"/api/v1/organizations/{old['id']}"), 404)
    assert api.get(f"/api/v1/customers/{member}").get_json()["organization"]["id"] == acme["id"]
    assert [e.name for e in _events(session, start)] == [
        "customer.updated",
        "organization.merged",
        "organization.updated",
    ]
    # The queue's filter by organization, through the tickets resource.
    listed = api.get(f"/api/v1/tickets?organization={acme['id']}").get_json()["tickets"]
    assert len(listed) == 3
    make_ticket(sender="someone@elsewhere.example")
    assert len(api.get(f"/api/v1/tickets?organization={acme['id']}").get_json()["tickets"]) == 3


def test_read_token_cannot_change_organizations(
    app: Flask, agent: Agent, make_token: MakeToken
) -> None:
    writer = ApiClient(app, make_token(agent, "write"))
    org_id = writer.post("/api/v1/organizations", json={"name": "Acme"}).get_json()["id"]
    reader = ApiClient(app, make_token(agent, "read", name="reader"))
    assert reader.get(f"/api/v1/organizations/{org_id}").status_code == 200
    for response in (
        reader.post("/api/v1/organizations", json={"name": "B"}),
        reader.patch(f"/api/v1/organizations/{org_id}", json={"name": "B"}),
        reader.post(f"/api/v1/organizations/{org_id}/merge", json={"into": org_id}),
        reader.post(f"/api/v1/organizations/{org_id}/link-domain-customers"),
    ):
        assert error_of(response, 403)["code"] == "forbidden"
