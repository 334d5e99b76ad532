"""Where ratings show to agents: the ticket page's Satisfaction box and history line, the
customer timeline (its "Ratings" chip and the API's entries), and the agents list's column,
in English and in Bengali."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent, SatisfactionRating, Ticket, TicketStatus
from helpdesk.services import api_tokens, satisfaction, stream, tickets
from tests.conftest import MakeTicket, bn, login

pytestmark = pytest.mark.usefixtures("db_backend")


def rated(
    session: Session, agent: Agent, ticket: Ticket, score: str, comment: str | None
) -> SatisfactionRating:
    stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event, start_at_end=True)
    session.commit()
    tickets.assign_ticket(session, ticket, agent, agent)
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    session.commit()
    stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event)
    survey = satisfaction.latest_for(session, ticket, ticket.customer)
    assert survey is not None
    satisfaction.rate(session, survey, score, comment, channel="portal")
    session.commit()
    return survey


def test_the_ticket_page_shows_the_rating_and_its_history_line(
    session: Session, agent: Agent, make_ticket: MakeTicket, agent_client: Any
) -> None:
    ticket = make_ticket().ticket
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "data-satisfaction" not in page  # never asked: no box
    rated(session, agent, ticket, "bad", "The parcel is still missing")
    page = agent_client.get(f"/agent/tickets/{ticket.number}").get_data(as_text=True)
    assert "data-satisfaction" in page and "👎 Bad" in page
    assert "The parcel is still missing" in page
    assert "rated the help: 👎 Bad" in page


def test_the_timeline_and_its_chip_in_bengali(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    app.config["SATISFACTION_SCALE"] = "five"
    ticket = make_ticket(sender="rahim@example.com").ticket
    survey = rated(session, agent, ticket, "4", "ভালো সেবা")
    agent.language = "bn"
    session.commit()
    client = app.test_client()
    login(client, agent.email)
    path = f"/agent/customers/{ticket.customer_id}"
    page = client.get(f"{path}?tl_kind=satisfaction").get_data(as_text=True)
    assert bn("Ratings") in page and 'data-kind="satisfaction"' in page
    assert "★★★★☆" in page and "ভালো সেবা" in page and "৪" in page
    only_tasks = client.get(f"{path}?tl_kind=task").get_data(as_text=True)
    assert 'data-kind="satisfaction"' not in only_tasks
    secret = api_tokens.create_token(session, agent, "script", "read").secret
    session.commit()
    entries = client.get(
        f"/api/v1/customers/{ticket.customer_id}/timeline?kind=satisfaction",
        headers={"Authorization": f"Bearer {secret}"},
    ).get_json()["entries"]
    assert [e["satisfaction"] for e in entries] == [
        {
            "id": survey.id,
            "scale": "five",
            "score": 4,
            "comment": "ভালো সেবা",
            "round": 1,
            "agent": agent.name,
        }
    ]
    assert entries[0]["channel"] == "portal"


def test_the_agents_list_shows_each_agents_answered_count_and_good_share(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_ticket: MakeTicket
) -> None:
    rated(session, agent, make_ticket(sender="a@example.com").ticket, "good", None)
    rated(session, agent, make_ticket(sender="b@example.com").ticket, "bad", None)
    client = app.test_client()
    login(client, admin.email)
    page = client.get("/admin/agents").get_data(as_text=True)
    assert "2 rated, 50% good" in page
