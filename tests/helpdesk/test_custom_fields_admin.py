"""Admin → Custom fields in the browser's terms: one section per kind of record with its fields
in order, define a field (options one a line), edit it, move it, archive and restore it, delete
it after a page saying how many records hold a value; errors on the form with what was typed
kept; in English and Bengali; nobody but an admin reaches it, and every form needs its CSRF
token."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AgentRole, CustomField, Ticket
from helpdesk.services import custom_fields as cf
from helpdesk.services.agents import create_agent
from tests.conftest import PASSWORD, AgentClient, MakeTicket, bn, login

pytestmark = pytest.mark.usefixtures("db_backend")


def signed_in(app: Flask, email: str) -> AgentClient:
    client: FlaskClient = app.test_client()
    assert login(client, email).status_code == 302
    return AgentClient(client)


@pytest.fixture
def admin_client(app: Flask, admin: Agent) -> AgentClient:
    return signed_in(app, admin.email)


def _define(session: Session, admin: Agent, key: str, **kw: Any) -> CustomField:
    field = cf.define_field(
        session,
        admin,
        object_type=kw.pop("object_type", "ticket"),
        key=key,
        type=kw.pop("type", "text"),
        label_en=kw.pop("label_en", key.title()),
        **kw,
    )
    session.commit()
    return field


def _section(page: str, object_type: str) -> str:
    start = page.index(f'data-fields="{object_type}"')
    end = page.find("</section>", start)
    return page[start:end]


def _keys(page: str, object_type: str) -> list[str]:
    return re.findall(r'data-field="([a-z0-9_]+)"', _section(page, object_type))


def test_an_admin_defines_a_dropdown_and_sees_it_in_its_section(
    session: Session, admin_client: AgentClient
) -> None:
    menu = admin_client.get("/agent/queue").get_data(as_text=True)
    assert 'href="/admin/custom-fields"' in menu
    empty = admin_client.get("/admin/custom-fields")
    assert empty.status_code == 200
    assert "Ticket fields" in empty.get_data(as_text=True)
    assert "No fields yet." in _section(empty.get_data(as_text=True), "organization")

    form = admin_client.get("/admin/custom-fields/new?object=customer").get_data(as_text=True)
    assert '<option selected value="customer">' in form
    created = admin_client.post(
        "/admin/custom-fields/new",
        {
            "object_type": "ticket",
            "key": "plan",
            "type": "dropdown",
            "label_en": "Plan",
            "label_bn": "প্ল্যান",
            "options": "free | Free | ফ্রি\ngold | Gold | গোল্ড\n",
            "required_on_resolve": "y",
        },
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    field = session.scalars(select(CustomField)).one()
    assert (field.key, field.type, field.label_bn) == ("plan", "dropdown", "প্ল্যান")
    assert field.options == [
        {"value": "free", "en": "Free", "bn": "ফ্রি"},
        {"value": "gold", "en": "Gold", "bn": "গোল্ড"},
    ]
    assert field.required_on_resolve and not field.visible_to_customers
    page = admin_client.get("/admin/custom-fields").get_data(as_text=True)
    assert "Field Plan created." in page
    tickets = _section(page, "ticket")
    assert "plan" in tickets and "Dropdown" in tickets and "2 options" in tickets
    assert "Required on resolve" in tickets and "Agents only" in tickets
    assert _keys(page, "customer") == []


def test_errors_are_shown_on_the_form_with_what_was_typed(
    session: Session, admin: Agent, admin_client: AgentClient
) -> None:
    _define(session, admin, "plan")
    taken = admin_client.post(
        "/admin/custom-fields/new",
        {"object_type": "ticket", "key": "plan", "type": "text", "label_en": "Another plan"},
    )
    assert taken.status_code == 400
    page = taken.get_data(as_text=True)
    assert "A field with the key plan exists already." in page
    assert 'value="Another plan"' in page

    no_options = admin_client.post(
        "/admin/custom-fields/new",
        {"object_type": "ticket", "key": "tier", "type": "dropdown", "label_en": "Tier"},
    )
    assert no_options.status_code == 400
    assert "A dropdown or multi-select field needs options." in no_options.get_data(as_text=True)

    bad_key = admin_client.post(
        "/admin/custom-fields/new",
        {"object_type": "customer", "key": "Tier!", "type": "text", "label_en": "Tier"},
    )
    assert bad_key.status_code == 400
    assert "A key is 1 to 40 lower-case letters" in bad_key.get_data(as_text=True)

    hidden = admin_client.post(
        "/admin/custom-fields/new",
        {
            "object_type": "customer",
            "key": "tier",
            "type": "text",
            "label_en": "Tier",
            "on_portal_form": "y",
        },
    )
    assert hidden.status_code == 400
    assert "must be visible to customers" in hidden.get_data(as_text=True)
    assert session.scalars(select(CustomField.key)).all() == ["plan"]


def test_edit_move_archive_restore(
    session: Session, admin: Agent, admin_client: AgentClient
) -> None:
    plan = _define(session, admin, "plan", type="dropdown", options=["free", "gold"])
    seats = _define(session, admin, "seats", type="number")
    edit = admin_client.get(f"/admin/custom-fields/{plan.id}").get_data(as_text=True)
    assert "free | free" in edit and "cannot be changed" in edit
    assert 'name="key"' not in edit and 'name="type"' not in edit

    saved = admin_client.post(
        f"/admin/custom-fields/{plan.id}",
        {
            "label_en": "Contract plan",
            "label_bn": "চুক্তি",
            "options": "free | Free\ngold | Gold | গোল্ড\nplatinum | Platinum",
            "visible_to_customers": "y",
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    session.expire_all()
    assert plan.label_en == "Contract plan" and plan.visible_to_customers
    assert plan.option_values == ["free", "gold", "platinum"]
    assert not plan.required_on_resolve

    blank = admin_client.post(f"/admin/custom-fields/{plan.id}", {"label_en": ""})
    assert blank.status_code == 400
    assert "field-error" in blank.get_data(as_text=True)

    assert _keys(admin_client.get("/admin/custom-fields").get_data(as_text=True), "ticket") == [
        "plan",
        "seats",
    ]
    admin_client.post(f"/admin/custom-fields/{seats.id}/move", {"step": "up"})
    page = admin_client.get("/admin/custom-fields").get_data(as_text=True)
    assert _keys(page, "ticket") == ["seats", "plan"]
    admin_client.post(f"/admin/custom-fields/{seats.id}/move", {"step": "down"})
    assert _keys(admin_client.get("/admin/custom-fields").get_data(as_text=True), "ticket") == [
        "plan",
        "seats",
    ]

    admin_client.post(f"/admin/custom-fields/{plan.id}/active", {"active": "0"})
    page = admin_client.get("/admin/custom-fields").get_data(as_text=True)
    assert "archived: hidden everywhere, its values kept" in page
    assert f'id="field-{plan.id}" data-field="plan" class="muted" data-archived' in page
    assert [f.key for f in cf.fields_for(session, "ticket")] == ["seats"]
    admin_client.post(f"/admin/custom-fields/{plan.id}/active", {"active": "1"})
    session.expire_all()
    assert [f.key for f in cf.fields_for(session, "ticket")] == ["plan", "seats"]


def test_delete_says_how_many_records_hold_a_value(
    session: Session,
    admin: Agent,
    agent: Agent,
    admin_client: AgentClient,
    make_ticket: MakeTicket,
) -> None:
    plan = _define(session, admin, "plan", type="dropdown", options=["free", "gold"])
    for _ in range(2):
        cf.set_values(session, make_ticket().ticket, {"plan": "gold"}, agent)
    make_ticket()
    session.commit()
    confirm = admin_client.get(f"/admin/custom-fields/{plan.id}/delete")
    assert confirm.status_code == 200
    assert "2 records have a value in this field." in confirm.get_data(as_text=True)
    assert session.get(CustomField, plan.id) is not None  # a GET deletes nothing

    done = admin_client.post(f"/admin/custom-fields/{plan.id}/delete")
    assert done.status_code == 302
    page = admin_client.get("/admin/custom-fields").get_data(as_text=True)
    assert "Field Plan deleted with 2 values." in page
    session.expire_all()
    assert session.get(CustomField, plan.id) is None
    assert all(not t.custom for t in session.scalars(select(Ticket)))


def test_the_pages_are_in_bengali_for_a_bengali_admin(
    app: Flask, session: Session, admin: Agent
) -> None:
    create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.ADMIN, "bn")
    plan = _define(
        session,
        admin,
        "plan",
        type="dropdown",
        label_bn="প্ল্যান",
        options=["gold | Gold | গোল্ড"],
    )
    _define(session, admin, "renewal", type="date", object_type="organization")
    session.commit()
    client = signed_in(app, "nusrat@example.com")
    listing = client.get("/admin/custom-fields").get_data(as_text=True)
    for msgid in ("Custom fields", "Ticket fields", "Organization fields", "Dropdown", "Move up"):
        assert bn(msgid) in listing, msgid
    assert "প্ল্যান" in listing and "Renewal" in listing  # no Bengali label: the English one
    new = client.get("/admin/custom-fields/new").get_data(as_text=True)
    for msgid in ("New field", "Key", "Label (Bengali)", "Required on resolve"):
        assert bn(msgid) in new, msgid
    edit = client.get(f"/admin/custom-fields/{plan.id}").get_data(as_text=True)
    assert bn("The records, key and type of a field cannot be changed.") in edit
    delete = client.get(f"/admin/custom-fields/{plan.id}/delete").get_data(as_text=True)
    assert bn("No record has a value in this field.") in delete
    refused = client.post(
        "/admin/custom-fields/new",
        {"object_type": "ticket", "key": "plan", "type": "text", "label_en": "Plan"},
    )
    assert refused.status_code == 400
    assert bn("A field with the key %(key)s exists already.").replace("%(key)s", "plan") in (
        refused.get_data(as_text=True)
    )
    created = client.post(
        "/admin/custom-fields/new",
        {
            "object_type": "customer",
            "key": "tier",
            "type": "text",
            "label_en": "Tier",
            "label_bn": "স্তর",
        },
        follow_redirects=True,
    )
    assert bn("Field %(label)s created.").replace("%(label)s", "স্তর") in created.get_data(
        as_text=True
    )


def test_agents_get_a_404_and_forms_need_csrf(
    app: Flask, session: Session, admin: Agent, agent_client: AgentClient
) -> None:
    plan = _define(session, admin, "plan")
    for path in (
        "/admin/custom-fields",
        "/admin/custom-fields/new",
        f"/admin/custom-fields/{plan.id}",
        f"/admin/custom-fields/{plan.id}/delete",
    ):
        assert agent_client.get(path).status_code == 404, path
    assert agent_client.post(f"/admin/custom-fields/{plan.id}/delete").status_code == 404
    admin_raw = app.test_client()
    login(admin_raw, admin.email)
    for path in (
        f"/admin/custom-fields/{plan.id}/delete",
        f"/admin/custom-fields/{plan.id}/active",
    ):
        assert admin_raw.post(path, data={"active": "0"}).status_code == 400
    session.expire_all()
    assert session.get(CustomField, plan.id) is not None and plan.active
