"""Custom fields on the agent's pages: the ticket sidebar's values and form (errors naming the
field in the reader's language, what was typed kept), resolving held up by a required field
(status form and reply-and-resolve, the reply kept), the customer and organization pages, and
the queue's field filters (chips, saved views, the page's statements unchanged)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AgentRole, CustomField, SavedView, Ticket, TicketStatus
from helpdesk.services import custom_fields as cf
from helpdesk.services import organizations
from helpdesk.services.agents import create_agent
from tests.conftest import PASSWORD, AgentClient, MakeTicket, bn, login
from tests.helpdesk.test_queue_page import Selects, documented, page_selects, selects

__all__ = ["selects"]  # the statement recorder, a fixture of the queue page's test

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


@pytest.fixture
def ticket_fields(session: Session, admin: Agent) -> dict[str, CustomField]:
    return {
        "plan": _define(
            session,
            admin,
            "plan",
            "dropdown",
            label_en="Plan",
            label_bn="প্ল্যান",
            options=["free | Free | ফ্রি", "gold | Gold | গোল্ড"],
            required_on_resolve=True,
        ),
        "seats": _define(session, admin, "seats", "number", label_en="Seats", label_bn="আসন"),
        "renewal": _define(session, admin, "renewal", "date", label_en="Renewal"),
        "regions": _define(
            session,
            admin,
            "regions",
            "multi_select",
            label_en="Regions",
            options=["dhaka | Dhaka | ঢাকা", "khulna | Khulna | খুলনা"],
        ),
        "vip": _define(session, admin, "vip", "checkbox", label_en="VIP", label_bn="ভিআইপি"),
        "site": _define(session, admin, "site", "url", label_en="Website", label_bn="ওয়েবসাইট"),
        "story": _define(session, admin, "story", "long_text", label_en="Background"),
    }


def _client(app: Flask, email: str) -> AgentClient:
    client = app.test_client()
    assert login(client, email).status_code == 302
    return AgentClient(client)


@pytest.fixture
def bn_client(app: Flask, session: Session) -> AgentClient:
    create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.AGENT, "bn")
    session.commit()
    return _client(app, "nusrat@example.com")


SHOWN = "plan,seats,renewal,regions,vip,site,story"


def _fresh(session: Session, ticket_id: int) -> Ticket:
    session.expire_all()
    found = session.get(Ticket, ticket_id)
    assert found is not None
    return found


@pytest.mark.usefixtures("ticket_fields")
def test_the_sidebar_shows_and_edits_the_values(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    t = make_ticket().ticket
    page = agent_client.get(f"/agent/tickets/{t.number}").get_data(as_text=True)
    box = page.split("data-custom-fields", 1)[1].split("</section>", 1)[0]
    # In the admin's order, empty ones as a dash, the required one marked.
    assert box.index("Plan") < box.index("Seats") < box.index("Background")
    assert '<dd data-cf-value="plan" dir="auto">—</dd>' in box
    assert "Required to resolve" in box
    saved = agent_client.post(
        f"/agent/tickets/{t.number}/fields",
        {
            "cf-shown": SHOWN,
            "cf-plan": "gold",
            "cf-seats": "1,200",
            "cf-renewal": "2027-01-31",
            "cf-regions": ["dhaka", "khulna"],
            "cf-vip": "1",
            "cf-site": "https://example.com/acme",
            "cf-story": "Long-standing customer.",
        },
    )
    assert saved.status_code == 302
    assert _fresh(session, t.id).custom == {
        "plan": "gold",
        "seats": 1200,
        "renewal": "2027-01-31",
        "regions": ["dhaka", "khulna"],
        "vip": True,
        "site": "https://example.com/acme",
        "story": "Long-standing customer.",
    }
    page = agent_client.get(f"/agent/tickets/{t.number}").get_data(as_text=True)
    assert '<dd data-cf-value="plan" dir="auto">Gold</dd>' in page
    assert '<dd data-cf-value="seats" dir="auto">1,200</dd>' in page
    assert '<dd data-cf-value="regions" dir="auto">Dhaka, Khulna</dd>' in page
    assert '<dd data-cf-value="vip" dir="auto">Yes</dd>' in page
    assert "Fields saved." in page
    # The history says what changed, by the field's label.
    assert "set Plan to Gold" in page.split('class="card history"', 1)[1]
    # An unticked checkbox is No; an emptied field is cleared; a field the form did not show
    # (an admin added it after the page loaded) keeps its value.
    agent_client.post(
        f"/agent/tickets/{t.number}/fields",
        {"cf-shown": "vip,seats", "cf-seats": ""},
    )
    after = _fresh(session, t.id).custom or {}
    assert after["vip"] is False and "seats" not in after and after["plan"] == "gold"


@pytest.mark.usefixtures("ticket_fields")
def test_bad_values_are_named_in_bengali_and_kept(
    bn_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    t = make_ticket().ticket
    page = bn_client.get(f"/agent/tickets/{t.number}").get_data(as_text=True)
    assert bn("Edit fields") in page and bn("Save fields") in page
    assert bn("Required to resolve") in page
    bad = bn_client.post(
        f"/agent/tickets/{t.number}/fields",
        {"cf-shown": SHOWN, "cf-seats": "twelve", "cf-site": "example.com", "cf-plan": "gold"},
    )
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert bn("%(field)s must be a number.") % {"field": "আসন"} in html
    assert (
        bn("%(field)s must be a web address starting with https://.") % {"field": "ওয়েবসাইট"} in html
    )
    # What the agent typed is still in the form; nothing was stored.
    assert 'name="cf-seats" value="twelve"' in html and 'value="example.com"' in html
    assert '<option value="gold" selected>' in html
    assert _fresh(session, t.id).custom is None


@pytest.mark.usefixtures("ticket_fields")
def test_resolving_is_held_up_by_a_required_field(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket
) -> None:
    t = make_ticket().ticket
    held = agent_client.post(f"/agent/tickets/{t.number}/status", {"status-status": "resolved"})
    assert held.status_code == 400
    html = held.get_data(as_text=True)
    assert "Plan must be filled in before the ticket is resolved." in html
    assert '<details class="cf-edit" open>' in html  # the form is open on what is missing
    assert _fresh(session, t.id).status != TicketStatus.RESOLVED
    # Reply and resolve: nothing is sent, the reply stays in the box.
    replied = agent_client.post(
        f"/agent/tickets/{t.number}/reply",
        {"reply-body": "All done, thanks for waiting!", "reply-status": "resolved"},
    )
    assert replied.status_code == 400
    html = replied.get_data(as_text=True)
    assert "Plan must be filled in before the ticket is resolved." in html
    assert "All done, thanks for waiting!</textarea>" in html
    assert _fresh(session, t.id).message_count == 1
    # Filled in, the same reply resolves.
    agent_client.post(f"/agent/tickets/{t.number}/fields", {"cf-shown": "plan", "cf-plan": "free"})
    done = agent_client.post(
        f"/agent/tickets/{t.number}/reply",
        {"reply-body": "All done, thanks for waiting!", "reply-status": "resolved"},
    )
    assert done.status_code == 302
    assert _fresh(session, t.id).status == TicketStatus.RESOLVED


@pytest.mark.usefixtures("ticket_fields")
def test_a_bulk_resolve_is_held_up_as_a_whole(
    agent_client: AgentClient, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    filled = make_ticket(sender="a@example.com", commit=False).ticket
    cf.set_values(session, filled, {"plan": "gold"}, agent)
    empty = make_ticket(sender="b@example.com").ticket
    ids = [filled.id, empty.id]
    held = agent_client.post(
        "/agent/bulk",
        {"ticket": [str(i) for i in ids], "status": "resolved", "next": "/agent/queue?view=all"},
    )
    assert held.status_code == 302 and held.headers["Location"].endswith("/agent/queue?view=all")
    queue = agent_client.get("/agent/queue?view=all").get_data(as_text=True)
    assert "No ticket was changed. Plan must be filled in before the ticket is resolved." in queue
    session.expire_all()
    assert {session.get(Ticket, i).status for i in ids} == {TicketStatus.NEW}  # type: ignore[union-attr]


def test_resolving_is_held_up_in_bengali(
    bn_client: AgentClient, session: Session, admin: Agent, make_ticket: MakeTicket
) -> None:
    _define(
        session,
        admin,
        "plan",
        "dropdown",
        label_en="Plan",
        label_bn="প্ল্যান",
        options=["gold | Gold | গোল্ড"],
        required_on_resolve=True,
    )
    t = make_ticket().ticket
    held = bn_client.post(f"/agent/tickets/{t.number}/status", {"status-status": "resolved"})
    assert held.status_code == 400
    message = bn("%(field)s must be filled in before the ticket is resolved.")
    assert message % {"field": "প্ল্যান"} in held.get_data(as_text=True)


def test_customer_and_organization_pages_edit_their_fields(
    agent_client: AgentClient,
    bn_client: AgentClient,
    session: Session,
    admin: Agent,
    make_ticket: MakeTicket,
) -> None:
    _define(
        session,
        admin,
        "tier",
        "dropdown",
        object_type="customer",
        label_en="Tier",
        label_bn="স্তর",
        options=["a | Tier A | স্তর ক", "b | Tier B | স্তর খ"],
    )
    _define(
        session,
        admin,
        "seats",
        "number",
        object_type="organization",
        label_en="Seats",
        label_bn="আসন",
    )
    customer = make_ticket(sender="rina@acme.example").ticket.customer
    org = organizations.create_organization(session, "Acme", domains=["acme.example"])
    session.commit()
    page = agent_client.get(f"/agent/customers/{customer.id}").get_data(as_text=True)
    assert "Tier" in page and f'action="/agent/customers/{customer.id}/fields"' in page
    saved = agent_client.post(
        f"/agent/customers/{customer.id}/fields", {"cf-shown": "tier", "cf-tier": "b"}
    )
    assert saved.status_code == 302
    page = bn_client.get(f"/agent/customers/{customer.id}").get_data(as_text=True)
    assert '<dd data-cf-value="tier" dir="auto">স্তর খ</dd>' in page and bn("Fields") in page
    wrong = agent_client.post(
        f"/agent/customers/{customer.id}/fields", {"cf-shown": "tier", "cf-tier": "z"}
    )
    assert wrong.status_code == 400 and "z is not an option of Tier." in wrong.get_data(
        as_text=True
    )

    saved = agent_client.post(
        f"/agent/organizations/{org.id}/fields", {"cf-shown": "seats", "cf-seats": "40"}
    )
    assert saved.status_code == 302
    session.expire_all()
    assert org.custom == {"seats": 40}
    page = bn_client.get(f"/agent/organizations/{org.id}").get_data(as_text=True)
    assert '<dd data-cf-value="seats" dir="auto">৪০</dd>' in page
    bad = bn_client.post(
        f"/agent/organizations/{org.id}/fields", {"cf-shown": "seats", "cf-seats": "many"}
    )
    assert bad.status_code == 400
    assert bn("%(field)s must be a number.") % {"field": "আসন"} in bad.get_data(as_text=True)
    # Without the CSRF token nothing is written.
    forged = agent_client.client.post(
        f"/agent/organizations/{org.id}/fields", data={"cf-shown": "seats", "cf-seats": "1"}
    )
    assert forged.status_code == 400
    session.expire_all()
    assert org.custom == {"seats": 40}


def _numbers(html: str) -> set[str]:
    import re

    return set(re.findall(r'href="/agent/tickets/(\d+)"', html))


@pytest.mark.usefixtures("ticket_fields")
def test_the_queue_filters_by_a_dropdown_and_a_checkbox(
    agent_client: AgentClient,
    bn_client: AgentClient,
    session: Session,
    agent: Agent,
    make_ticket: MakeTicket,
) -> None:
    gold_vip = make_ticket(sender="a@example.com", commit=False).ticket
    cf.set_values(session, gold_vip, {"plan": "gold", "vip": True}, agent)
    gold = make_ticket(sender="b@example.com", commit=False).ticket
    cf.set_values(session, gold, {"plan": "gold"}, agent)
    free = make_ticket(sender="c@example.com", commit=False).ticket
    cf.set_values(session, free, {"plan": "free", "vip": True}, agent)
    plain = make_ticket(sender="d@example.com", commit=False).ticket
    session.commit()

    page = agent_client.get("/agent/queue?view=all").get_data(as_text=True)
    # Dropdown, multi-select and checkbox fields are offered; text, number, date are not.
    assert 'name="cf.plan"' in page and 'name="cf.vip"' in page and 'name="cf.regions"' in page
    assert 'name="cf.seats"' not in page and 'name="cf.site"' not in page
    assert _numbers(page) == {str(t.number) for t in (gold_vip, gold, free, plain)}

    page = agent_client.get("/agent/queue?view=all&cf.plan=gold").get_data(as_text=True)
    assert _numbers(page) == {str(gold_vip.number), str(gold.number)}
    assert 'data-cf-chip="plan"' in page and "Plan: Gold" in page
    assert '<option value="gold" selected>' in page

    both = "/agent/queue?view=all&cf.plan=gold&cf.vip=true"
    page = agent_client.get(both).get_data(as_text=True)
    assert _numbers(page) == {str(gold_vip.number)}
    assert "VIP: Yes" in page
    # Each chip removes its own filter and keeps the other.
    chip = page.split('data-cf-chip="vip"', 1)[1].split("</li>", 1)[0]
    assert 'href="/agent/queue?view=all&amp;cf.plan=gold"' in chip

    page = agent_client.get("/agent/queue?view=all&cf.vip=false").get_data(as_text=True)
    assert _numbers(page) == {str(gold.number), str(plain.number)}

    # In Bengali: the field's label and options in Bengali.
    page = bn_client.get("/agent/queue?view=all&cf.plan=gold").get_data(as_text=True)
    assert "প্ল্যান: গোল্ড" in page and bn("Remove the filter %(name)s") % {"name": "প্ল্যান"} in page

    # An option that is not one is a clear 400, not a 500.
    wrong = agent_client.get("/agent/queue?view=all&cf.plan=platinum")
    assert wrong.status_code == 400
    assert "platinum is not an option of Plan." in wrong.get_data(as_text=True)


@pytest.mark.usefixtures("ticket_fields")
def test_a_saved_view_keeps_a_field_filter(
    agent_client: AgentClient, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    gold = make_ticket(sender="a@example.com", commit=False).ticket
    cf.set_values(session, gold, {"plan": "gold"}, agent)
    make_ticket(sender="b@example.com")
    saved = agent_client.post(
        "/agent/views",
        {"name": "Gold plans", "args": urlencode({"view": "all", "cf.plan": "gold"})},
    )
    assert saved.status_code == 302
    view = session.scalar(select(SavedView).where(SavedView.name == "Gold plans"))
    assert view is not None and view.args == {"view": "all", "cf.plan": "gold"}
    queue = agent_client.get("/agent/queue?view=open").get_data(as_text=True)
    assert '<a href="/agent/queue?view=all&amp;cf.plan=gold" >Gold plans' in queue
    page = agent_client.get("/agent/queue?view=all&cf.plan=gold").get_data(as_text=True)
    assert _numbers(page) == {str(gold.number)}
    assert 'aria-current="page" class="active">Gold plans' in page


def test_the_queue_page_keeps_its_statements_with_fields(
    agent_client: AgentClient,
    session: Session,
    admin: Agent,
    make_ticket: MakeTicket,
    selects: Selects,
) -> None:
    """Filterable fields ride in the statement of the page's other lists (teams, agents)."""
    t = make_ticket().ticket
    # (page_selects closes the test's session, as a request's ends: objects are read again.)
    before = len(page_selects(agent_client, selects, "/agent/queue?view=all"))
    _define(session, admin, "plan", "dropdown", options=["gold"])
    _define(session, admin, "vip", "checkbox")
    cf.set_values(session, _fresh(session, t.id), {"plan": "gold"}, admin)
    session.commit()
    statements = page_selects(agent_client, selects, "/agent/queue?view=all")
    assert len(statements) == before == documented()["page"]
    html = agent_client.get("/agent/queue?view=all").get_data(as_text=True)
    assert 'name="cf.plan"' in html and 'name="cf.vip"' in html
    # With a field filter on, one more: the look-up of the filtered fields' definitions; on
    # SQLite a dropdown's value is also counted (bounded) to know whether it is rare.
    filtered = page_selects(agent_client, selects, "/agent/queue?view=all&cf.plan=gold")
    rare_check = 1 if session.get_bind().dialect.name == "sqlite" else 0
    assert len(filtered) == before + 1 + rare_check
