"""Macros: placeholders in both languages, actions with audit, sharing, safety, the reply box."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AuditEvent, Priority, Ticket, TicketStatus
from helpdesk.services import macros
from helpdesk.services.agents import create_agent
from helpdesk.services.errors import NotFound, ServiceError
from tests.conftest import AgentClient, MakeTicket

BODY_EN = "Hi {{ customer.name }}, your ticket {{ ticket.number }} is with {{ agent.name }}."
BODY_BN = "প্রিয় {{ customer.name }}, আপনার টিকিট {{ ticket.number }} {{ agent.name }} দেখছেন।"


@pytest.fixture
def macro(session: Session, agent: Agent) -> object:
    m = macros.save_macro(
        session,
        agent,
        name="Refund on its way",
        body_en=BODY_EN,
        body_bn=BODY_BN,
        actions={
            "status": "pending",
            "priority": "3",
            "add_tags": "refund, Billing",
            "assignee": "me",
        },
        shared=True,
    )
    session.commit()
    return m


def test_placeholders_render_in_the_customers_language(
    session: Session, make_ticket: MakeTicket, agent: Agent, macro: object
) -> None:
    en = make_ticket(sender="sarah@example.com", sender_name="Sarah", language="en").ticket
    bn = make_ticket(sender="rahim@example.com", sender_name="রহিম", language="bn").ticket
    assert (
        macros.render_macro(macro, en, agent)
        == f"Hi Sarah, your ticket #{en.number} is with Alex Agent."
    )  # type: ignore[arg-type]
    assert (
        macros.render_macro(macro, bn, agent)
        == f"প্রিয় রহিম, আপনার টিকিট #{bn.number} Alex Agent দেখছেন।"
    )  # type: ignore[arg-type]


def test_apply_runs_the_actions_with_audit(
    session: Session, make_ticket: MakeTicket, agent: Agent, macro: object
) -> None:
    t = make_ticket().ticket
    text = macros.apply_macro(session, macro, t, agent)  # type: ignore[arg-type]
    session.commit()
    assert "Hi" in text
    assert t.status == TicketStatus.PENDING and t.priority == Priority.HIGH
    assert t.assignee_id == agent.id
    assert [x.name for x in t.tags] == ["billing", "refund"]
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.ticket_id == t.id)).all()
    assert {"ticket.assignee", "ticket.priority", "ticket.status", "ticket.tags"} <= set(actions)
    assert macro.usage_count == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ customer.name",
        "{% for %}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_unsafe_or_broken_templates_are_refused_on_save(
    session: Session, agent: Agent, body: str
) -> None:
    with pytest.raises(ServiceError):
        macros.save_macro(session, agent, name="bad", body_en=body)


def test_personal_macros_are_private(session: Session, agent: Agent, macro: object) -> None:
    other = create_agent(session, "b@example.com", "Bea", "password123")
    mine = macros.save_macro(session, agent, name="Mine only", body_en="x")
    session.commit()
    assert {m.name for m in macros.visible_macros(session, other)} == {"Refund on its way"}
    assert {m.name for m in macros.visible_macros(session, agent, "mine")} == {"Mine only"}
    with pytest.raises(NotFound):
        macros.get_macro(session, other, mine.id)
    with pytest.raises(NotFound):
        macros.save_macro(session, other, name="hijack", body_en="x", macro=mine)


def test_macro_from_the_reply_box(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, macro: object
) -> None:
    t = make_ticket(sender_name="Sarah").ticket
    page = agent_client.get(f"/agent/tickets/{t.number}").get_data(as_text=True)
    assert "data-macro-picker" in page
    found = agent_client.get("/agent/macros/search?q=refund").get_json()
    assert [m["name"] for m in found] == ["Refund on its way"]
    response = agent_client.client.post(
        f"/agent/tickets/{t.number}/macros/{found[0]['id']}/apply",
        headers={"X-CSRFToken": agent_client.token()},
    )
    data = response.get_json()
    assert response.status_code == 200 and data["text"].startswith("Hi Sarah")
    assert data["status"] == "pending"
    session.expire_all()
    assert session.get(Ticket, t.id).version == data["version"]  # type: ignore[union-attr]
    # Without the CSRF header the action is refused.
    assert (
        agent_client.client.post(
            f"/agent/tickets/{t.number}/macros/{found[0]['id']}/apply"
        ).status_code
        == 400
    )


def test_manage_macros_pages(agent_client: AgentClient, session: Session) -> None:
    response = agent_client.post(
        "/agent/macros/new",
        {
            "name": "Greeting",
            "body_en": "Hello {{ customer.name }}",
            "body_bn": "নমস্কার",
            "shared": "y",
            "status": "open",
        },
    )
    assert response.status_code == 302
    listing = agent_client.get("/agent/macros").get_data(as_text=True)
    assert "Greeting" in listing
    bad = agent_client.post("/agent/macros/new", {"name": "Bad", "body_en": "{{ oops"})
    assert bad.status_code == 400 and "{{ oops" in bad.get_data(as_text=True)


def test_the_pickers_preview_is_the_text_the_macro_would_insert(
    agent_client: AgentClient, session: Session, make_ticket: MakeTicket, macro: object
) -> None:
    """A Bengali customer's ticket previews the Bengali text, with the customer's name: what
    applying the macro puts in the reply box, not the English source with its placeholders."""
    t = make_ticket(sender_name="রহিমা খাতুন").ticket
    t.customer.language = "bn"
    session.commit()
    page = agent_client.get(f"/agent/tickets/{t.number}").get_data(as_text=True)
    assert f"/agent/macros/search?ticket={t.number}" in page
    found = agent_client.get(f"/agent/macros/search?ticket={t.number}&q=refund").get_json()
    assert found[0]["preview"].startswith("প্রিয় রহিমা খাতুন, আপনার টিকিট")
    # Without a ticket (or one the agent cannot open), the text in the agent's language.
    plain = agent_client.get("/agent/macros/search?q=refund").get_json()
    assert plain[0]["preview"] == BODY_EN[:120]
    assert agent_client.get("/agent/macros/search?q=refund&ticket=999999").status_code == 404
