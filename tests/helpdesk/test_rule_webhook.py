"""A rule's ``webhook`` action: the ticket goes to that one webhook (whatever it subscribes to,
if it is enabled), signed, with the ticket as the API's GET returns it and the rule named;
through the real fan-out, delivery and an HTTP receiver."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import api_tokens, rules, stream, webhooks
from tests.api.conftest import ApiClient
from tests.conftest import MakeTicket
from tests.helpdesk.webhook_receiver import Receiver, pump, signature_ok

pytestmark = pytest.mark.usefixtures("db_backend")


@pytest.fixture
def app_config(receiver: Receiver) -> dict[str, Any]:
    return {"WEBHOOK_ALLOWED_HOSTS": receiver.host, "BASE_URL": "http://localhost"}


def run_rules(session: Session) -> None:
    """What the worker's rules consumer does after a commit."""
    session.commit()
    while stream.consume(session, rules.CONSUMER, rules.on_event):
        session.commit()


def test_the_rules_webhook_gets_the_ticket_and_no_other_does(
    app: Flask,
    session: Session,
    admin: Agent,
    make_ticket: MakeTicket,
    receiver: Receiver,
) -> None:
    stream.consume(session, rules.CONSUMER, rules.on_event, start_at_end=True)
    # The rule's webhook subscribes to something else; another one to tickets, disabled.
    target, secret = webhooks.create_webhook(session, admin, receiver.url, ["customer.merged"])
    other, _ = webhooks.create_webhook(session, admin, receiver.url + "/other", ["task.created"])
    disabled, _ = webhooks.create_webhook(session, admin, receiver.url + "/off", ["task.created"])
    session.flush()
    rules.create_rule(
        session,
        admin,
        name="VIP to the CRM",
        event="ticket.created",
        conditions_=[{"field": "customer_domain", "op": "is", "value": "vip.example"}],
        actions=[{"type": "webhook", "value": target.id}],
    )
    rules.create_rule(
        session,
        admin,
        name="Everything to the disabled one",
        event="ticket.created",
        actions=[{"type": "webhook", "value": disabled.id}],
    )
    webhooks.set_active(session, admin, disabled, False)
    session.commit()
    pump(app)  # the fan-out starts here: what came before goes nowhere

    ticket = make_ticket(sender="boss@vip.example", subject="Contract renewal").ticket
    make_ticket(sender="someone@example.com", subject="Not for the CRM")
    run_rules(session)

    assert pump(app, own_thread=True) == 1
    (delivery,) = receiver.wait_for(1)
    assert delivery.path == "/hook" and signature_ok(secret, delivery.headers, delivery.body)
    body = delivery.json
    assert body["event"] == "rule.webhook"
    token = api_tokens.create_token(session, admin, "check", "read")
    session.commit()
    api = ApiClient(app, token.secret)
    assert body["data"] == api.get(f"/api/v1/tickets/{ticket.number}").get_json()
    assert body["details"]["webhook_id"] == target.id
    assert body["details"]["rule"]["name"] == "VIP to the CRM"
    assert other.id != target.id
    # Nothing more is on its way: not to the other webhook, not to the disabled one.
    assert pump(app, own_thread=True) == 0
    assert len(receiver.requests) == 1
