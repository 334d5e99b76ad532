"""Satisfaction ratings through the REST API: ``GET /api/v1/satisfaction`` with any agent's
token lists surveys with their ticket, agent, score and comment, filtered by when they were
rated, agent, ticket, score and answered; keyset pages; a bad date is a 422 naming the field;
the webhook payload is the list's shape; schemathesis keeps the document's promises."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import GenerationMode
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, SatisfactionRating, Ticket, TicketStatus
from helpdesk.services import api_tokens, satisfaction, stream, tickets, webhook_payloads
from helpdesk.services.webhooks import EVENT_TYPES
from tests.api.conftest import ApiClient, error_of
from tests.api.test_openapi import keep_promises
from tests.conftest import MakeTicket

pytestmark = pytest.mark.usefixtures("db_backend")


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"API_RATE_LIMIT": "100000 per minute"}


@pytest.fixture
def api(app: Flask, session: Session, agent: Agent) -> ApiClient:
    secret = api_tokens.create_token(session, agent, "script", "read").secret
    session.commit()
    return ApiClient(app, secret)


def resolved(session: Session, agent: Agent, ticket: Ticket) -> SatisfactionRating:
    stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event, start_at_end=True)
    session.commit()
    tickets.assign_ticket(session, ticket, agent, agent)
    tickets.set_status(session, ticket, TicketStatus.RESOLVED, agent)
    session.commit()
    stream.consume(session, satisfaction.CONSUMER, satisfaction.on_event)
    session.commit()
    survey = satisfaction.latest_for(session, ticket, ticket.customer)
    assert survey is not None
    return survey


def test_the_list_and_its_filters(
    api: ApiClient, session: Session, agent: Agent, admin: Agent, make_ticket: MakeTicket
) -> None:
    one = make_ticket(sender="a@example.com").ticket
    two = make_ticket(sender="b@example.com").ticket
    three = make_ticket(sender="c@example.com").ticket
    good = resolved(session, agent, one)
    bad = resolved(session, agent, two)
    unanswered = resolved(session, admin, three)
    satisfaction.rate(session, good, "good", "Fast, thanks", channel="email")
    satisfaction.rate(session, bad, "bad", None, channel="portal")
    session.commit()

    listed = api.get("/api/v1/satisfaction").get_json()
    assert [r["id"] for r in listed["ratings"]] == [unanswered.id, bad.id, good.id]
    first = listed["ratings"][2]
    assert first == {
        "id": good.id,
        "ticket": {"id": one.id, "number": one.number},
        "round": 1,
        "agent": {"id": agent.id, "email": agent.email},
        "customer_id": one.customer_id,
        "scale": "good_bad",
        "score": 5,
        "comment": "Fast, thanks",
        "channel": "email",
        "requested_at": first["requested_at"],
        "rated_at": first["rated_at"],
    }
    assert first["rated_at"] is not None and listed["next_cursor"] is None

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/v1/satisfaction?{query}")
        assert response.status_code == 200, response.get_json()
        return [r["id"] for r in response.get_json()["ratings"]]

    assert ids(f"agent={agent.email}") == [bad.id, good.id]
    assert ids(f"agent={admin.id}") == [unanswered.id]
    assert ids(f"ticket={two.number}") == [bad.id]
    assert ids("score=5") == [good.id]
    assert ids("answered=false") == [unanswered.id]
    assert ids("answered=true") == [bad.id, good.id]
    today = utcnow().date()
    assert ids(f"from={today}&to={today}") == [bad.id, good.id]
    assert ids(f"from={today + timedelta(days=1)}") == []
    assert ids(f"to={today - timedelta(days=1)}") == []
    page = api.get("/api/v1/satisfaction?limit=2").get_json()
    rest = api.get(f"/api/v1/satisfaction?limit=2&cursor={page['next_cursor']}").get_json()
    assert [r["id"] for r in page["ratings"] + rest["ratings"]] == [unanswered.id, bad.id, good.id]

    refused = error_of(api.get("/api/v1/satisfaction?from=yesterday"), 422)
    assert "from" in refused["fields"]
    refused = error_of(api.get("/api/v1/satisfaction?agent=nobody@example.com"), 422)
    assert "agent" in refused["fields"]


def test_webhooks_may_subscribe_and_carry_the_lists_shape(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    assert {"satisfaction.requested", "satisfaction.rated"} <= set(EVENT_TYPES)
    survey = resolved(session, agent, make_ticket().ticket)
    payload = webhook_payloads._payloads["satisfaction"](session, survey.id)
    assert payload is not None and payload["id"] == survey.id and payload["score"] is None


def test_the_satisfaction_operation_keeps_its_promises(
    app: Flask, session: Session, agent: Agent, make_ticket: MakeTicket
) -> None:
    resolved(session, agent, make_ticket().ticket)
    secret = api_tokens.create_token(session, agent, "fuzz", "read").secret
    session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    every: list[Any] = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in every if "Satisfaction" in op.definition.raw.get("tags", [])]
    assert len(operations) == 1
    runs: list[tuple[Any, GenerationMode, dict[str, Any]]] = [
        (op, mode, {}) for op, mode in itertools.product(operations, GenerationMode)
    ]
    keep_promises(runs, secret, max_examples=10)
