"""Admins see mailbox health and the quarantine in the browser, download and replay mail."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email import services as mail_services
from helpdesk.models import Agent, Ticket
from tests.conftest import PASSWORD, AgentClient, csrf_token, login

GOOD = (
    b"From: Rina <rina@example.com>\r\nTo: support@example.com\r\nSubject: Parcel late\r\n"
    b"Message-ID: <q1@example.com>\r\n\r\nWhere is my parcel?\r\n"
)


def test_only_admins_reach_the_admin_pages(agent_client: AgentClient) -> None:
    for url in ("/admin/channels", "/admin/quarantine"):
        assert agent_client.get(url).status_code == 404


def test_admin_replays_a_quarantined_mail(app: Flask, session: Session, admin: Agent) -> None:
    item = mail_services.quarantine(session, GOOD, "database was down", channel_id=None)
    session.commit()
    client = app.test_client()
    login(client, admin.email, PASSWORD)
    assert "Quarantine (1 waiting)" in client.get("/admin/channels").get_data(as_text=True)
    page = client.get("/admin/quarantine").get_data(as_text=True)
    assert "database was down" in page
    raw = client.get(f"/admin/quarantine/{item.id}/raw")
    assert raw.get_data() == GOOD and raw.mimetype == "message/rfc822"
    raw.close()
    token = csrf_token(client, "/admin/quarantine")
    response = client.post(f"/admin/quarantine/{item.id}/replay", data={"csrf_token": token})
    assert response.status_code == 302
    assert "processed into ticket #1001" in client.get("/admin/quarantine").get_data(as_text=True)
    t = session.scalars(select(Ticket)).one()
    assert t.subject == "Parcel late" and t.customer.email == "rina@example.com"
    # A second replay of the same entry is refused with a message, not a crash.
    again = client.post(f"/admin/quarantine/{item.id}/replay", data={"csrf_token": token})
    assert again.status_code == 400


def test_the_mailbox_form_is_bengali_down_to_its_options(app: Flask, admin: Agent) -> None:
    """Choices declared on a form class were turned into English text when the module was
    imported, so a Bengali admin saw "Password" and "None (trusted network only)"."""
    from tests.conftest import bn

    client = app.test_client()
    login(client, admin.email, PASSWORD)
    client.post(
        "/language", data={"lang": "bn", "csrf_token": csrf_token(client, "/admin/channels")}
    )
    page = client.get("/admin/mailboxes/new").get_data(as_text=True)
    for english in ("Password", "None (trusted network only)"):
        assert f">{bn(english)}</option>" in page
        assert f">{english}</option>" not in page
