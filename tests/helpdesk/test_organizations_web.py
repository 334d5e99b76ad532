"""The organizations' pages (list and search, create and edit, merge with confirmation, the
organization page, linking by domain) in English and Bengali, the customer page setting an
organization, and the queue's organization filter kept by a saved view."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole, Customer, Organization, SavedView, TicketStatus
from helpdesk.services import organizations, tickets
from helpdesk.services.agents import create_agent
from tests.conftest import PASSWORD, AgentClient, MakeTicket, bn, login


def _client(app: Flask, email: str) -> AgentClient:
    client = app.test_client()
    assert login(client, email).status_code == 302
    return AgentClient(client)


def _org(session: Session, name: str) -> Organization:
    session.expire_all()
    org = session.scalar(select(Organization).where(Organization.name == name))
    assert org is not None
    return org


def test_create_edit_and_search(agent_client: AgentClient, session: Session) -> None:
    form = agent_client.get("/agent/organizations/new").get_data(as_text=True)
    assert 'name="csrf_token"' in form and "Email domains, one per line" in form
    made = agent_client.post(
        "/agent/organizations/new",
        {"name": "Acme Ltd", "domains": "acme.example\r\nACME-bd.example", "notes": "Yearly"},
    )
    assert made.status_code == 302
    org = _org(session, "Acme Ltd")
    assert org.domain_names == ["acme-bd.example", "acme.example"] and org.notes == "Yearly"
    page = agent_client.get(made.headers["Location"]).get_data(as_text=True)
    assert "Organization saved." in page and "acme-bd.example" in page and "Yearly" in page
    edited = agent_client.post(
        f"/agent/organizations/{org.id}/edit",
        {"name": "Acme", "domains": "acme.example", "notes": ""},
    )
    assert edited.status_code == 302
    assert _org(session, "Acme").domain_names == ["acme.example"]
    for i in range(3):
        organizations.create_organization(session, f"Zeta {i}", domains=[f"zeta{i}.example"])
    session.commit()
    listing = agent_client.get("/agent/organizations").get_data(as_text=True)
    assert listing.index("Acme") < listing.index("Zeta 0")
    by_domain = agent_client.get("/agent/organizations?q=ZETA1.ex").get_data(as_text=True)
    assert "Zeta 1" in by_domain and "Zeta 2" not in by_domain and "Acme" not in by_domain


def test_the_list_pages(
    agent_client: AgentClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpdesk.web import organizations as pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    for name in ("A", "B", "C"):
        organizations.create_organization(session, name)
    session.commit()
    first = agent_client.get("/agent/organizations").get_data(as_text=True)
    assert ">A<" in first and ">B<" in first and ">C<" not in first and 'rel="next"' in first
    second = agent_client.get("/agent/organizations?page=2").get_data(as_text=True)
    assert ">C<" in second and 'rel="prev"' in second and 'rel="next"' not in second


def test_forms_refuse_with_clear_messages(agent_client: AgentClient, session: Session) -> None:
    organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    taken = agent_client.post(
        "/agent/organizations/new", {"name": "Other", "domains": "acme.example"}
    )
    assert taken.status_code == 409
    text = taken.get_data(as_text=True)
    assert "The domain acme.example belongs to another organization: Acme." in text
    assert 'value="Other"' in text  # what was typed is kept
    bad = agent_client.post(
        "/agent/organizations/new", {"name": "Other", "domains": "not a domain"}
    )
    assert bad.status_code == 400 and "Not a domain: not" in bad.get_data(as_text=True)
    same = agent_client.post("/agent/organizations/new", {"name": "ACME"})
    assert same.status_code == 409
    assert "Another organization is already called Acme." in same.get_data(as_text=True)
    assert session.scalar(select(Organization).where(Organization.name == "Other")) is None
    # Without the CSRF token nothing is written.
    raw = agent_client.client.post("/agent/organizations/new", data={"name": "Forged"})
    assert raw.status_code == 400
    assert session.scalar(select(Organization).where(Organization.name == "Forged")) is None


def test_pages_in_bengali(app: Flask, session: Session, make_ticket: MakeTicket) -> None:
    create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.AGENT, "bn")
    org = organizations.create_organization(session, "বিকাশ", domains=["bikash.example"])
    session.commit()
    make_ticket(sender="rina@bikash.example")
    client = _client(app, "nusrat@example.com")
    listing = client.get("/agent/organizations").get_data(as_text=True)
    assert bn("Organizations") in listing and bn("Name or domain") in listing
    page = client.get(f"/agent/organizations/{org.id}").get_data(as_text=True)
    assert bn("Link customers from these domains") in page and "rina@bikash.example" in page
    assert bn("Open tickets: %(count)s").replace("%(count)s", "১") in page
    form = client.get(f"/agent/organizations/{org.id}/edit").get_data(as_text=True)
    assert bn("Email domains, one per line") in form
    refused = client.post("/agent/organizations/new", {"name": "x", "domains": "bikash.example"})
    assert refused.status_code == 409
    assert bn("The domain %(domain)s belongs to another organization: %(name)s.") % {
        "domain": "bikash.example",
        "name": "বিকাশ",
    } in refused.get_data(as_text=True)
    merge = client.get(f"/agent/organizations/{org.id}/merge").get_data(as_text=True)
    assert bn("Merge this organization into the organization named (or with id)") in merge


def test_organization_page_open_tickets_first_and_linking(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, agent: Agent
) -> None:
    before = make_ticket(sender="early@acme.example", subject="Known before").ticket
    org = organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    done = make_ticket(sender="a@acme.example", subject="Done one").ticket
    tickets.set_status(session, done, TicketStatus.RESOLVED, agent)
    session.commit()
    make_ticket(sender="a@acme.example", subject="Still open")
    page = agent_client.get(f"/agent/organizations/{org.id}").get_data(as_text=True)
    assert "Open tickets: 1" in page and "All tickets: 2" in page
    assert page.index("Still open") < page.index("Done one")
    assert "Known before" not in page
    linked = agent_client.post(f"/agent/organizations/{org.id}/link-customers")
    assert linked.status_code == 302
    page = agent_client.get(f"/agent/organizations/{org.id}").get_data(as_text=True)
    assert "1 customer joined this organization." in page and "Known before" in page
    session.expire_all()
    assert session.get(Customer, before.customer_id).organization_id == org.id  # type: ignore[union-attr]


def test_merge_asks_first(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    acme = organizations.create_organization(session, "Acme", domains=["acme.example"])
    old = organizations.create_organization(session, "Acme old", domains=["old.example"])
    session.commit()
    make_ticket(sender="p@old.example")
    acme_id, old_id = acme.id, old.id
    ask = agent_client.post(f"/agent/organizations/{old_id}/merge", {"into": "acme"})
    text = ask.get_data(as_text=True)
    assert ask.status_code == 200 and "Merge Acme old into Acme?" in text
    assert "Customers that move: 1" in text and "old.example" in text
    assert session.get(Organization, old_id) is not None  # nothing merged yet
    unknown = agent_client.post(f"/agent/organizations/{old_id}/merge", {"into": "Nobody Inc"})
    assert unknown.status_code == 400
    assert "No organization found for Nobody Inc." in unknown.get_data(as_text=True)
    done = agent_client.post(
        f"/agent/organizations/{old_id}/merge", {"into": str(acme_id), "confirm": "1"}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/{acme_id}")
    session.expire_all()
    assert session.get(Organization, old_id) is None
    assert _org(session, "Acme").domain_names == ["acme.example", "old.example"]


def test_customer_page_sets_the_organization(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    org = organizations.create_organization(session, "Acme Ltd")
    session.commit()
    customer_id = make_ticket(sender="x@example.com").ticket.customer_id
    page = agent_client.get(f"/agent/customers/{customer_id}").get_data(as_text=True)
    assert 'name="organization"' in page
    # By name, in any case: the existing organization, not a second one.
    agent_client.post(f"/agent/customers/{customer_id}", {"organization": "acme ltd"})
    session.expire_all()
    assert session.get(Customer, customer_id).organization_id == org.id  # type: ignore[union-attr]
    page = agent_client.get(f"/agent/customers/{customer_id}").get_data(as_text=True)
    assert f"/agent/organizations/{org.id}" in page


class _Selects:
    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, _conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.sql.append(statement)


def _ids(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-ticket-id="(\d+)"', page)}


def test_queue_filter_and_saved_view(
    app: Flask, agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    org = organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    ours = {make_ticket(sender=f"p{i}@acme.example").ticket.id for i in range(3)}
    theirs = make_ticket(sender="x@elsewhere.example").ticket.id
    url = f"/agent/queue?view=all&organization={org.id}"
    page = agent_client.get(url).get_data(as_text=True)
    assert _ids(page) == ours and theirs not in _ids(page)
    assert "data-organization-filter" in page and "Acme" in page
    # The filter box takes a name.
    named = agent_client.get("/agent/queue?view=all&organization=acme")
    assert named.status_code == 302 and f"organization={org.id}" in named.headers["Location"]
    # Its rows cost the statements of an unfiltered refresh (no extra query, no join).
    selects = _Selects()
    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", selects)
    try:
        counts = []
        for u in ("/agent/queue?view=all&partial=1", url + "&partial=1"):
            agent_client.get(u)
            db.session.close()
            selects.sql.clear()
            assert agent_client.get(u).status_code == 200
            counts.append(len(selects.sql))
    finally:
        event.remove(engine, "before_cursor_execute", selects)
    assert counts[0] == counts[1]
    # A saved view keeps the filter.
    args = urlencode({"view": "all", "organization": str(org.id)})
    saved = agent_client.post("/agent/views", {"name": "Acme tickets", "args": args})
    assert saved.status_code == 302
    view = session.scalar(select(SavedView).where(SavedView.name == "Acme tickets"))
    assert view is not None and view.args == {"view": "all", "organization": str(org.id)}
    again = agent_client.get(saved.headers["Location"]).get_data(as_text=True)
    assert _ids(again) == ours
    counts_json = agent_client.get("/agent/queue/counts").get_json()
    assert counts_json[f"saved:{view.id}"] == 3
