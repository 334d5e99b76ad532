"""Admin → Webhooks in the browser's terms: register (the secret shown once), the delivery log
with response code, latency and attempts, "Redeliver", rotate, disable, delete; in English and
Bengali; nobody but an admin reaches it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole, Webhook, WebhookDelivery
from helpdesk.services import webhooks
from helpdesk.services.agents import create_agent
from tests.conftest import PASSWORD, AgentClient, MakeTicket, bn, login
from tests.helpdesk.webhook_receiver import Receiver, pump, signature_ok


@pytest.fixture
def app_config(receiver: Receiver) -> dict[str, Any]:
    return {"WEBHOOK_ALLOWED_HOSTS": receiver.host}


def signed_in(app: Flask, email: str) -> AgentClient:
    client: FlaskClient = app.test_client()
    assert login(client, email).status_code == 302
    return AgentClient(client)


@pytest.fixture
def admin_client(app: Flask, admin: Agent) -> AgentClient:
    return signed_in(app, admin.email)


SECRET = re.compile(r"data-webhook-secret>(whsec_[A-Za-z0-9_-]+)<")


def test_an_admin_registers_a_webhook_and_sees_the_secret_once(
    app: Flask,
    session: Session,
    admin_client: AgentClient,
    receiver: Receiver,
    make_ticket: MakeTicket,
) -> None:
    menu = admin_client.get("/agent/queue").get_data(as_text=True)
    assert 'href="/admin/webhooks"' in menu
    response = admin_client.post(
        "/admin/webhooks/new", {"url": receiver.url, "events": ["ticket.created"]}
    )
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    match = SECRET.search(page)
    assert match and "Copy it now: it is not shown again." in page
    secret = match.group(1)
    (webhook,) = session.scalars(select(Webhook)).all()
    assert secret not in webhook.secret  # stored encrypted
    for path in ("/admin/webhooks", f"/admin/webhooks/{webhook.id}"):
        shown = admin_client.get(path).get_data(as_text=True)
        assert receiver.url in shown and secret not in shown

    ticket = make_ticket(subject="Where is my parcel?").ticket
    pump(app)
    (request,) = receiver.wait_for(1)
    assert signature_ok(secret, request.headers, request.body)
    assert request.json["data"]["number"] == ticket.number

    log = admin_client.get(f"/admin/webhooks/{webhook.id}").get_data(as_text=True)
    (delivery,) = session.scalars(select(WebhookDelivery)).all()
    row = log[log.index(f'data-delivery="{delivery.id}"') :]
    assert 'data-state="delivered"' in row[:2000]
    assert "<td data-response>200</td>" in row
    assert f"{delivery.latency_ms} ms" in row
    assert "<td data-attempts>1</td>" in row
    detail = admin_client.get(f"/admin/webhooks/{webhook.id}/deliveries/{delivery.id}")
    text = detail.get_data(as_text=True)
    assert "X-Helpdesk-Signature: sha256=" in text and "Where is my parcel?" in text

    # Redeliver: a new delivery with the same body reaches the receiver.
    again = admin_client.post(f"/admin/webhooks/{webhook.id}/deliveries/{delivery.id}/redeliver")
    assert again.status_code == 302
    pump(app)
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert first.headers["X-Helpdesk-Delivery"] != second.headers["X-Helpdesk-Delivery"]
    log = admin_client.get(f"/admin/webhooks/{webhook.id}").get_data(as_text=True)
    assert log.count('data-state="delivered"') == 2

    # Rotate: the new secret is shown once and signs from now on.
    rotated = admin_client.post(f"/admin/webhooks/{webhook.id}/secret")
    new_match = SECRET.search(rotated.get_data(as_text=True))
    assert new_match and new_match.group(1) != secret
    make_ticket(subject="Second")
    pump(app)
    third = receiver.wait_for(3)[-1]
    assert signature_ok(new_match.group(1), third.headers, third.body)
    assert not signature_ok(secret, third.headers, third.body)


def test_a_private_url_is_refused_with_the_reason_on_the_form(
    app: Flask, admin_client: AgentClient
) -> None:
    response = admin_client.post(
        "/admin/webhooks/new",
        {"url": "http://169.254.169.254/latest/meta-data/", "events": ["ticket.created"]},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "HELPDESK_WEBHOOK_ALLOWED_HOSTS" in page
    assert 'value="http://169.254.169.254/latest/meta-data/"' in page  # what was typed is kept
    assert db.session.scalars(select(Webhook)).all() == []


def test_edit_disable_enable_and_delete(
    app: Flask, session: Session, admin: Agent, admin_client: AgentClient, receiver: Receiver
) -> None:
    webhook, _secret = webhooks.create_webhook(session, admin, receiver.url, ["ticket.created"])
    session.commit()
    page = f"/admin/webhooks/{webhook.id}"
    saved = admin_client.post(page, {"url": receiver.url + "2", "events": ["ticket.updated"]})
    assert saved.status_code == 302
    session.expire_all()
    assert (webhook.url, webhook.events) == (receiver.url + "2", ["ticket.updated"])
    admin_client.post(f"{page}/active", {"active": "0"})
    assert "data-disabled" in admin_client.get("/admin/webhooks").get_data(as_text=True)
    admin_client.post(f"{page}/active", {"active": "1"})
    session.expire_all()
    assert webhook.active
    assert admin_client.post(f"{page}/delete").status_code == 302
    assert admin_client.get(page).status_code == 404


def test_the_pages_are_in_bengali_for_a_bengali_admin(
    app: Flask, session: Session, admin: Agent, receiver: Receiver
) -> None:
    create_agent(session, "nusrat@example.com", "Nusrat", PASSWORD, AgentRole.ADMIN, "bn")
    webhook, _secret = webhooks.create_webhook(session, admin, receiver.url, ["ticket.created"])
    session.commit()
    client = signed_in(app, "nusrat@example.com")
    listing = client.get("/admin/webhooks").get_data(as_text=True)
    assert bn("Webhooks") in listing and bn("New webhook") in listing
    edit = client.get(f"/admin/webhooks/{webhook.id}").get_data(as_text=True)
    for msgid in ("Deliveries", "Rotate secret", "No deliveries yet."):
        assert bn(msgid) in edit
    created = client.post(
        "/admin/webhooks/new", {"url": receiver.url, "events": ["ticket.updated"]}
    )
    assert bn("The signing secret of this webhook. Copy it now: it is not shown again.") in (
        created.get_data(as_text=True)
    )


def test_agents_get_a_404_and_forms_need_csrf(
    app: Flask, session: Session, admin: Agent, agent_client: AgentClient, receiver: Receiver
) -> None:
    webhook, _secret = webhooks.create_webhook(session, admin, receiver.url, ["ticket.created"])
    session.commit()
    for path in ("/admin/webhooks", f"/admin/webhooks/{webhook.id}", "/admin/webhooks/new"):
        assert agent_client.get(path).status_code == 404
    assert agent_client.post(f"/admin/webhooks/{webhook.id}/secret").status_code == 404
    admin_raw = app.test_client()
    login(admin_raw, admin.email)
    no_token = admin_raw.post(f"/admin/webhooks/{webhook.id}/secret")
    assert no_token.status_code == 400
    assert "whsec_" not in no_token.get_data(as_text=True)
