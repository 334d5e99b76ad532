"""Admin -> Rules in the browser's terms: the triggers by event and the time rules in order
(move, pause, run counts), a rule's form with condition and action rows and a mail action in
two languages, Preview (the tickets the conditions match now, nothing saved), mistakes shown on
the form in the reader's language with what was typed kept, delete after confirming; CSRF on
every form, admins only; the ticket's history names the rule that changed it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AgentRole, Rule, RuleKind
from helpdesk.services import custom_fields, rules, stream
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


def _rule(session: Session, name: str) -> Rule:
    session.expire_all()
    found = session.scalar(select(Rule).where(Rule.name == name))
    assert found is not None
    return found


def _names_in_order(page: str, *names: str) -> list[str]:
    table = page[page.index("data-rule-list") :]  # not the flashed messages above it
    return sorted(names, key=table.index)


TRIGGER: dict[str, Any] = {
    "name": "Refunds are urgent",
    "when": "ticket.created",
    "c.field": ["subject"],
    "c.op": ["contains"],
    "c.value": ["refund"],
    "a.type": ["add_tags", "send_email"],
    "a.value": ["refund, money", ""],
    "a.to": ["customer", "team"],
    "a.subject_en": ["", "We got your refund request"],
    "a.subject_bn": ["", "আপনার ফেরতের অনুরোধ পেয়েছি"],
    "a.body_en": ["", "Hello {{ customer.name }}, about {{ ticket.number }}."],
    "a.body_bn": ["", "নমস্কার {{ customer.name }}"],
    "active": "y",
}


def test_an_admin_creates_edits_reorders_pauses_and_deletes_rules(
    session: Session, admin_client: AgentClient
) -> None:
    menu = admin_client.get("/agent/queue").get_data(as_text=True)
    assert 'href="/admin/rules"' in menu
    empty = admin_client.get("/admin/rules").get_data(as_text=True)
    assert "No trigger yet." in empty and "No time rule yet." in empty
    blank = admin_client.get("/admin/rules/new").get_data(as_text=True)
    assert "A ticket is created" in blank and "Hours after the last update" in blank
    assert "Customer&#39;s email domain" in blank and "Send an email" in blank
    assert "{{ customer.name }}" in blank  # the placeholders are documented
    # A trigger's event fields are offered too (an SLA policy's form has none of them).
    assert 'value="actor"' in blank and "Who acted" in blank and 'value="changed"' in blank

    made = admin_client.post("/admin/rules/new", data=TRIGGER)
    assert made.status_code == 302, made.get_data(as_text=True)
    rule = _rule(session, "Refunds are urgent")
    assert rule.kind == RuleKind.EVENT and rule.event == "ticket.created" and rule.active
    assert rule.conditions == [{"field": "subject", "op": "contains", "value": "refund"}]
    assert rule.actions == [
        {"type": "add_tags", "value": ["refund", "money"]},
        {
            "type": "send_email",
            "value": {
                "to": "team",
                "subject": {"en": "We got your refund request", "bn": "আপনার ফেরতের অনুরোধ পেয়েছি"},
                "body": {
                    "en": "Hello {{ customer.name }}, about {{ ticket.number }}.",
                    "bn": "নমস্কার {{ customer.name }}",
                },
            },
        },
    ]
    # The form shows it back as it was typed.
    form = admin_client.get(f"/admin/rules/{rule.id}").get_data(as_text=True)
    assert 'value="refund, money"' in form and "আপনার ফেরতের অনুরোধ পেয়েছি" in form
    second = admin_client.post(
        "/admin/rules/new",
        data={**TRIGGER, "name": "Tag everything", "c.field": [], "c.op": [], "c.value": [],
              "a.type": ["add_tags"], "a.value": ["seen"], "a.to": ["customer"],
              "a.subject_en": [""], "a.subject_bn": [""], "a.body_en": [""], "a.body_bn": [""]},
    )  # fmt: skip
    assert second.status_code == 302
    timed = admin_client.post(
        "/admin/rules/new",
        data={"name": "Pending a week: resolve", "when": "time", "after_hours": "168",
              "c.field": ["status"], "c.op": ["is"], "c.value": ["pending"],
              "a.type": ["set_status"], "a.value": ["resolved"], "a.to": ["customer"],
              "a.subject_en": [""], "a.subject_bn": [""], "a.body_en": [""], "a.body_bn": [""],
              "active": "y"},
    )  # fmt: skip
    assert timed.status_code == 302, timed.get_data(as_text=True)
    assert _rule(session, "Pending a week: resolve").after_hours == 168

    listing = admin_client.get("/admin/rules").get_data(as_text=True)
    assert _names_in_order(listing, "Tag everything", "Refunds are urgent") == [
        "Refunds are urgent",
        "Tag everything",
    ]
    assert "168 hours" in listing
    moved = admin_client.post(
        f"/admin/rules/{_rule(session, 'Tag everything').id}/move", data={"direction": "up"}
    )
    assert moved.status_code == 302
    listing = admin_client.get("/admin/rules").get_data(as_text=True)
    assert _names_in_order(listing, "Tag everything", "Refunds are urgent") == [
        "Tag everything",
        "Refunds are urgent",
    ]

    assert admin_client.post(f"/admin/rules/{rule.id}/active").status_code == 302
    assert _rule(session, "Refunds are urgent").active is False
    assert "Rule Refunds are urgent is paused." in admin_client.get("/admin/rules").get_data(
        as_text=True
    )

    edited = admin_client.post(
        f"/admin/rules/{rule.id}",
        data={
            **{k: v for k, v in TRIGGER.items() if k != "active"},  # the box unticked
            "name": "Refunds",
            "when": "message.created",
            "stop": "y",
        },
    )
    assert edited.status_code == 302
    rule = _rule(session, "Refunds")
    assert rule.event == "message.created" and rule.stop and not rule.active

    confirm = admin_client.get(f"/admin/rules/{rule.id}/delete").get_data(as_text=True)
    assert "Delete rule Refunds?" in confirm
    assert admin_client.post(f"/admin/rules/{rule.id}/delete").status_code == 302
    session.expire_all()
    assert session.scalar(select(Rule).where(Rule.name == "Refunds")) is None


def test_preview_lists_the_matching_tickets_and_saves_nothing(
    session: Session, admin_client: AgentClient, make_ticket: MakeTicket
) -> None:
    custom_fields.define_field(
        session, None, object_type="ticket", key="plan", type="text", label_en="Plan"
    )
    session.commit()
    refund = make_ticket(subject="Refund for order 7").ticket
    make_ticket(subject="Where is my parcel?")
    page = admin_client.post("/admin/rules/new", data={**TRIGGER, "name": "", "preview": "1"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "1 of the 2 tickets looked at match." in text
    assert f"/agent/tickets/{refund.number}" in text and "Refund for order 7" in text
    assert "Where is my parcel?" not in text
    assert session.scalar(select(Rule.id)) is None
    # The rows stay as typed.
    assert 'value="refund"' in text and "We got your refund request" in text
    assert 'value="custom.plan"' in text and "Field: Plan" in text


def test_mistakes_are_shown_on_the_form_in_bengali_with_the_input_kept(
    app: Flask, session: Session, admin: Agent
) -> None:
    create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.ADMIN, "bn")
    session.commit()
    client = signed_in(app, "nusrat@example.com")
    listing = client.get("/admin/rules").get_data(as_text=True)
    assert bn("Triggers") in listing and bn("Time rules") in listing
    assert bn("New time rule") in listing
    blank = client.get("/admin/rules/new").get_data(as_text=True)
    for msgid in ("A ticket is created", "Send an email", "Add condition", "Preview"):
        assert bn(msgid) in blank

    bad = client.post(
        "/admin/rules/new",
        data={**TRIGGER, "c.op": ["matches"], "c.value": ["(unclosed"]},
    )
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    message = bn("Condition %(n)d: the pattern is not a valid regular expression.") % {"n": 1}
    message = message.replace("1", "১")  # the reader's digits
    assert message in text
    assert 'value="(unclosed"' in text and "আপনার ফেরতের অনুরোধ পেয়েছি" in text
    note = client.post(
        "/admin/rules/new",
        data={**TRIGGER, "a.type": ["add_note", "add_tags"], "a.value": [" ", "x"]},
    )
    assert note.status_code == 400
    assert bn("a note cannot be empty.") in note.get_data(as_text=True)
    assert session.scalar(select(Rule.id)) is None


def test_csrf_and_admins_only(
    app: Flask, session: Session, admin: Agent, agent_client: AgentClient
) -> None:
    assert agent_client.get("/admin/rules").status_code == 404
    assert agent_client.post("/admin/rules/new", data=TRIGGER).status_code == 404
    client: FlaskClient = app.test_client()
    assert login(client, admin.email).status_code == 302
    assert client.post("/admin/rules/new", data=TRIGGER).status_code == 400  # no CSRF token
    assert session.scalar(select(Rule.id)) is None


def test_the_history_names_the_rule(
    session: Session, admin: Agent, admin_client: AgentClient, make_ticket: MakeTicket
) -> None:
    stream.consume(session, rules.CONSUMER, rules.on_event, start_at_end=True)
    rules.create_rule(
        session,
        admin,
        name="Urgent refunds",
        event="ticket.created",
        conditions_=[{"field": "subject", "op": "contains", "value": "refund"}],
        actions=[{"type": "set_priority", "value": "urgent"}],
    )
    session.commit()
    ticket = make_ticket(subject="Refund now").ticket
    while stream.consume(session, rules.CONSUMER, rules.on_event):
        session.commit()
    session.commit()
    page = admin_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    history = page[page.index('class="card history"') :]
    line = next(li for li in history.split("<li>") if "by rule" in li)
    assert "(by rule Urgent refunds)" in line and "Urgent" in line
    listing = admin_client.get("/admin/rules").get_data(as_text=True)
    row = listing[listing.index('data-rule="') :]
    assert "<td data-run-count>1</td>" in row
