"""``GET /api/v1/customers/<id>/export`` and ``POST /api/v1/customers/<id>/erase``: an admin
token of an admin gets the zip and erases; an agent's token gets 403 and nothing changes."""

from __future__ import annotations

import io
import json
import zipfile

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AuditEvent
from helpdesk.services import customers
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import MakeTicket


def test_export_and_erase_through_the_api(
    app: Flask,
    session: Session,
    agent: Agent,
    admin: Agent,
    make_token: MakeToken,
    make_ticket: MakeTicket,
) -> None:
    make_ticket(sender="mina@example.com", sender_name="মিনা", text="আমার ফোন নম্বর ০১৭১১")
    mina = customers.find_by_identity(session, "email", "mina@example.com")  # type: ignore[arg-type]
    assert mina is not None
    mina_id = mina.id
    agents_token = ApiClient(app, make_token(agent, "write"))
    admins = ApiClient(app, make_token(admin, "admin"))

    assert error_of(agents_token.get(f"/api/v1/customers/{mina_id}/export"), 403)
    refused = agents_token.post(f"/api/v1/customers/{mina_id}/erase", json={"confirm": True})
    assert error_of(refused, 403)["code"] == "forbidden"

    exported = admins.get(f"/api/v1/customers/{mina_id}/export")
    assert exported.status_code == 200 and exported.mimetype == "application/zip"
    document = json.loads(zipfile.ZipFile(io.BytesIO(exported.data)).read("customer.json"))
    assert document["customer"]["name"] == "মিনা"
    assert "০১৭১১" in document["tickets"][0]["messages"][0]["text"]

    unconfirmed = admins.post(f"/api/v1/customers/{mina_id}/erase", json={})
    assert unconfirmed.status_code == 422
    erased = admins.post(f"/api/v1/customers/{mina_id}/erase", json={"confirm": True})
    assert erased.status_code == 200, erased.get_data(as_text=True)
    assert erased.get_json()["erased"] is True and erased.get_json()["messages"] == 1
    session.expire_all()
    assert customers.find_by_identity(session, "email", "mina@example.com") is None  # type: ignore[arg-type]
    line = session.scalar(select(AuditEvent).where(AuditEvent.action == "customer.erased"))
    assert line is not None and line.actor_agent_id == admin.id
    events = admins.get("/api/v1/events?after=0&limit=100").get_json()
    assert "customer.erased" in [e["name"] for e in events["events"]]
