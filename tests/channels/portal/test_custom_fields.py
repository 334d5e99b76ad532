"""Custom fields on the portal: the contact form asks the customer-visible ones flagged for it
(labels in the page's language, an input per type), errors come back beside the field with
what was typed kept, answers land on the new ticket and the customer, agent-only fields are
never shown nor taken, and the ticket page shows only the customer-visible values."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.portal import accounts
from helpdesk.models import Agent, Customer, Ticket
from helpdesk.services import custom_fields as cf
from tests.conftest import MakeTicket, bn, csrf_token

pytestmark = pytest.mark.usefixtures("db_backend")

BN = {"Accept-Language": "bn"}


@pytest.fixture
def fields(session: Session, admin: Agent) -> None:
    define = cf.define_field
    define(
        session,
        admin,
        object_type="ticket",
        key="product",
        type="dropdown",
        label_en="Product",
        label_bn="পণ্য",
        options=["phone | Phone | ফোন", "laptop | Laptop | ল্যাপটপ"],
        visible_to_customers=True,
        on_portal_form=True,
        required_on_forms=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="seats",
        type="number",
        label_en="Seats",
        label_bn="আসন",
        visible_to_customers=True,
        on_portal_form=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="extras",
        type="multi_select",
        label_en="Extras",
        label_bn="অতিরিক্ত",
        options=["case | Case | কভার", "charger | Charger | চার্জার"],
        visible_to_customers=True,
        on_portal_form=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="bought",
        type="date",
        label_en="Bought on",
        visible_to_customers=True,
        on_portal_form=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="order_no",
        type="text",
        label_en="Order number",
        label_bn="অর্ডার নম্বর",
        visible_to_customers=True,
    )
    define(
        session,
        admin,
        object_type="ticket",
        key="refund_ok",
        type="checkbox",
        label_en="Refund approved",
        label_bn="রিফান্ড অনুমোদিত",
    )
    define(
        session,
        admin,
        object_type="customer",
        key="tier",
        type="dropdown",
        label_en="Customer tier",
        label_bn="গ্রাহক স্তর",
        options=["basic | Basic | বেসিক", "gold | Gold | গোল্ড"],
        visible_to_customers=True,
        on_portal_form=True,
    )
    define(
        session,
        admin,
        object_type="customer",
        key="vip_note",
        type="text",
        label_en="VIP note",
        visible_to_customers=False,
    )
    session.commit()  # fmt: skip


def post(
    client: FlaskClient,
    answers: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    form = {
        "csrf_token": csrf_token(client, "/portal/contact"),
        "email": "rina@example.com",
        "subject": "Screen cracked",
        "description": "It fell.",
        **(answers or {}),
    }
    return client.post(
        "/portal/contact", data=form, headers=headers, content_type="multipart/form-data"
    )


def _ticket(session: Session) -> Ticket:
    session.expire_all()
    return session.scalars(select(Ticket)).one()


@pytest.mark.usefixtures("fields")
def test_the_form_asks_the_customer_fields_in_the_pages_language(client: FlaskClient) -> None:
    page = client.get("/portal/contact").get_data(as_text=True)
    for shown in ("Product", "Phone", "Seats", "Extras", "Charger", "Bought on", "Customer tier"):
        assert shown in page
    assert 'name="custom.product"' in page and 'name="customer_custom.tier"' in page
    assert re.search(r'<select id="cf-custom-product" name="custom.product" required', page)
    assert re.search(r'name="custom.seats"\s+value=""\s+type="number"', page)
    assert re.search(r'name="custom.bought"\s+value=""\s+type="date"', page)
    assert page.count('name="custom.extras"') == 2  # a checkbox per option
    # Visible but not asked on the form, and agent-only: never there.
    for hidden in ("Order number", "order_no", "Refund approved", "refund_ok", "VIP note"):
        assert hidden not in page

    bengali = client.get("/portal/contact", headers=BN).get_data(as_text=True)
    for shown in ("পণ্য", "ফোন", "ল্যাপটপ", "আসন", "চার্জার", "গ্রাহক স্তর", "গোল্ড"):
        assert shown in bengali
    assert "Product" not in bengali and "Laptop" not in bengali
    assert "Bought on" in bengali  # no Bengali label: the English one
    assert "রিফান্ড" not in bengali and "অর্ডার নম্বর" not in bengali


@pytest.mark.usefixtures("fields")
def test_missing_and_bad_answers_come_back_beside_the_field_with_the_input_kept(
    client: FlaskClient, session: Session
) -> None:
    answers = {"custom.seats": "many", "custom.bought": "someday", "custom.extras": ["case"],
               "customer_custom.tier": "gold"}  # fmt: skip
    response = post(client, answers)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r"Product is required\.</p>", page)
    assert "Seats must be a number." in page and "Bought on must be a date" in page
    # What was typed is still there: the built-in fields and the custom ones.
    assert "Screen cracked" in page and 'value="many"' in page and 'value="someday"' in page
    assert re.search(r'value="case" checked', page) and not re.search(
        r'value="charger" checked', page
    )
    assert re.search(r'<option value="gold" selected>', page)
    assert re.search(r'id="cf-custom-seats-error"', page)
    assert session.scalars(select(Ticket)).first() is None

    wrong = post(client, headers=BN, answers={"custom.product": "tablet"})
    assert wrong.status_code == 400
    expected = bn("%(value)s is not an option of %(field)s.") % {"value": "tablet",
                                                                  "field": "পণ্য"}  # fmt: skip
    assert expected in wrong.get_data(as_text=True)
    missing = post(client, headers=BN).get_data(as_text=True)
    assert bn("%(field)s is required.") % {"field": "পণ্য"} in missing
    assert session.scalars(select(Ticket)).first() is None


@pytest.mark.usefixtures("fields")
def test_answers_land_on_the_ticket_and_customer_and_agent_only_keys_are_ignored(
    client: FlaskClient, session: Session
) -> None:
    response = post(client, {
        "custom.product": "laptop", "custom.seats": "1,200", "custom.extras": ["charger", "case"],
        "custom.bought": "2026-11-30", "customer_custom.tier": "gold",
        # Forged: an agent-only ticket field, a visible field the form does not ask, an
        # agent-only customer field, and a key that is no field at all.
        "custom.refund_ok": "y", "custom.order_no": "A-1", "customer_custom.vip_note": "x",
        "custom.nothing": "1",
    })  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    ticket = _ticket(session)
    assert ticket.custom == {"product": "laptop", "seats": 1200,
                             "extras": ["case", "charger"], "bought": "2026-11-30"}  # fmt: skip
    assert ticket.customer.custom == {"tier": "gold"}


def _signed_in(app: Flask, session: Session, make_ticket: MakeTicket, email: str) -> FlaskClient:
    customer = make_ticket(sender=email).ticket.customer
    accounts.set_password(session, customer, "long enough pw")
    session.commit()
    client = app.test_client()
    token = csrf_token(client, "/portal/signin")
    form = {"csrf_token": token, "email": email, "password": "long enough pw"}
    signed = client.post("/portal/signin", data=form)
    assert signed.status_code == 302
    return client


@pytest.mark.usefixtures("fields")
def test_a_customers_own_value_is_prefilled_and_only_they_may_change_it(
    app: Flask, client: FlaskClient, session: Session, make_ticket: MakeTicket, admin: Agent
) -> None:
    rina = _signed_in(app, session, make_ticket, "rina@example.com")
    customer = session.scalars(select(Customer).where(Customer.email == "rina@example.com")).one()
    cf.set_values(session, customer, {"tier": "basic"}, admin)
    session.commit()
    page = rina.get("/portal/contact").get_data(as_text=True)
    assert re.search(r'<option value="basic" selected>', page)

    # Someone else typing Rina's address does not change her record ...
    answers = {"custom.product": "phone", "customer_custom.tier": "gold"}
    assert post(client, answers).status_code == 200
    session.expire_all()
    assert customer.custom == {"tier": "basic"}
    # ... Rina herself does.
    assert post(rina, answers).status_code == 200
    session.expire_all()
    assert customer.custom == {"tier": "gold"}


@pytest.mark.usefixtures("fields")
def test_the_ticket_page_shows_only_customer_visible_values(
    app: Flask, session: Session, make_ticket: MakeTicket, admin: Agent
) -> None:
    rina = _signed_in(app, session, make_ticket, "rina@example.com")
    ticket = _ticket(session)
    cf.set_values(session, ticket, {"product": "laptop", "order_no": "A-77", "refund_ok": True,
                                    "bought": "2026-11-30"}, admin)  # fmt: skip
    session.commit()
    page = rina.get(f"/portal/tickets/{ticket.number}").get_data(as_text=True)
    assert "Product" in page and "Laptop" in page and "A-77" in page and "Order number" in page
    assert "Nov 30, 2026" in page
    assert "Refund approved" not in page
    bengali = rina.get(f"/portal/tickets/{ticket.number}", headers=BN).get_data(as_text=True)
    assert "পণ্য" in bengali and "ল্যাপটপ" in bengali and "রিফান্ড" not in bengali

    # Another customer reaches neither the page nor its values.
    other = _signed_in(app, session, make_ticket, "other@example.com")
    assert other.get(f"/portal/tickets/{ticket.number}").status_code == 404


def test_the_demo_fills_its_fields_and_the_form_asks_them(
    client: FlaskClient, session: Session
) -> None:
    """`make run`'s demo: its fields are defined, some records hold values, the form asks."""
    from helpdesk.demo import load_demo
    from helpdesk.models import Organization

    load_demo(session)
    session.commit()
    held = {t.number: t.custom for t in session.scalars(select(Ticket)) if t.custom}
    assert {"product": "phone"} in held.values() and {"order_number": "5532"} in held.values()
    assert any((c or {}).get("refund_approved") is True for c in held.values())
    tiers = {c.email: (c.custom or {}).get("tier") for c in session.scalars(select(Customer))}
    assert tiers["sarah.jones@example.com"] == "platinum"
    org = session.scalars(select(Organization)).one()
    assert org.custom and "contract_renewal" in org.custom
    assert [c.email for c in org.customers] == ["nadia.islam@example.com"]
    page = client.get("/portal/contact", headers=BN).get_data(as_text=True)
    assert "পণ্য" in page and "সাবস্ক্রিপশন" in page
    assert "রিফান্ড" not in page and "অর্ডার নম্বর" not in page
