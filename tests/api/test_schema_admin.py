"""schemathesis over this session's resources with an admin's admin token (the document-wide
run in test_openapi.py uses an agent's write token, which gets 403 on every admin operation):
customers, organizations, agents and teams; no answer is a 5xx or breaks the document.
Webhooks are left out: a generated URL's host is resolved when it is saved (request forgery
checks), and random host names would mean DNS look-ups."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis import GenerationMode
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Customer, Organization
from helpdesk.services import agents, customers
from tests.api.conftest import MakeToken
from tests.api.test_openapi import keep_promises
from tests.conftest import MakeTicket

TAGS = {"Customers", "Organizations", "Agents", "Teams"}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"API_RATE_LIMIT": "100000 per minute"}


def test_admin_operations_keep_their_promises(
    app: Flask,
    session: Session,
    admin: Agent,
    agent: Agent,
    make_token: MakeToken,
    make_ticket: MakeTicket,
) -> None:
    customer_id = make_ticket(sender="seeded@example.com").ticket.customer_id
    customers.update_customer(session, session.get(Customer, customer_id), organization="Acme")  # type: ignore[arg-type]
    team = agents.create_team(session, "Seeded", [agent])
    session.commit()
    existing = {
        "customer_id": customer_id,
        "organization_id": session.scalar(select(Organization.id)),
        "agent_id": agent.id,
        "team_id": team.id,
    }
    secret = make_token(admin, "admin")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if TAGS & set(op.definition.raw.get("tags", []))
    ]
    assert len(operations) >= 14
    # Random ids are 404s: also aim at objects that exist.
    runs = [(op, mode, {}) for op, mode in itertools.product(operations, GenerationMode)] + [
        (op, GenerationMode.POSITIVE, {k: v for k, v in existing.items() if f"{{{k}}}" in op.path})
        for op in operations
        if "{" in op.path
    ]
    keep_promises(runs, secret, max_examples=6)
