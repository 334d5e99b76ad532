"""The portal's contact form opens a ticket through the one inbound path."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import ChannelKind, Customer, Message, Ticket
from tests.conftest import AgentClient, MakeTicket, bn, csrf_token


def post(client: FlaskClient, **fields: object) -> object:
    data = {"csrf_token": csrf_token(client, "/portal/contact"), **fields}
    return client.post("/portal/contact", data=data, content_type="multipart/form-data")


def test_contact_form_opens_a_portal_ticket_for_the_same_customer(
    client: FlaskClient, session: Session, make_ticket: MakeTicket
) -> None:
    make_ticket(sender="fatema@example.com", channel="email")
    response = post(
        client,
        name="ফাতেমা খাতুন",
        email="Fatema@Example.com",
        subject="বিকাশ পেমেন্ট",
        description="অর্ডার কনফার্ম হয়নি",
        attachments=(io.BytesIO(b"receipt"), "receipt.pdf"),
    )
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "#1002" in page
    t = session.scalars(select(Ticket).where(Ticket.number == 1002)).one()
    assert t.channel == ChannelKind.PORTAL and t.subject == "বিকাশ পেমেন্ট"
    assert session.scalar(select(func.count()).select_from(Customer)) == 1  # same person
    assert t.customer.name == "ফাতেমা খাতুন"


def test_validation_errors_keep_what_was_typed(client: FlaskClient, session: Session) -> None:
    response = post(client, email="not-an-address", subject="Help", description="A long story")
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "A long story" in page and "Not an email address" in page
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_honeypot_and_csrf(client: FlaskClient, session: Session) -> None:
    bot = post(client, email="bot@example.com", subject="x", description="y", website="http://spam")
    assert bot.status_code == 200  # type: ignore[attr-defined]
    no_token = client.post(
        "/portal/contact", data={"email": "a@example.com", "subject": "x", "description": "y"}
    )
    assert no_token.status_code == 400
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_portal_in_bengali(client: FlaskClient) -> None:
    page = client.get("/portal/", headers={"Accept-Language": "bn"}).get_data(as_text=True)
    assert '<html lang="bn">' in page
    assert bn("How can we help?") in page and "How can we help?" not in page


def test_nul_characters_are_refused_with_a_clear_400_everywhere(
    client: FlaskClient, session: Session, agent_client: AgentClient, ticket: Ticket
) -> None:
    """A NUL byte would be stored on SQLite and fail with a 500 on PostgreSQL: every form, query
    and JSON body refuses it the same way, and nothing is stored."""
    before = session.scalar(select(func.count()).select_from(Message))
    response = post(client, email="nul@example.com", subject="Hi\x00there", description="help")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "NUL" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    reply = agent_client.post(
        f"/agent/tickets/{ticket.number}/reply",
        data={"text": "a\x00b", "version": str(ticket.version)},
    )
    assert reply.status_code == 400
    api = agent_client.get("/api/ui/tickets/search", query_string={"q": "x\x00y"})
    assert api.status_code == 400
    assert api.get_json()["code"] == "nul_character" and "NUL" in api.get_json()["error"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Message)) == before


def test_the_portal_shows_staff_the_way_to_their_sign_in(client: FlaskClient) -> None:
    page = client.get("/portal/").get_data(as_text=True)
    assert 'href="/login">Staff sign-in</a>' in page
    bengali = client.get("/portal/", headers={"Accept-Language": "bn"}).get_data(as_text=True)
    assert f'href="/login">{bn("Staff sign-in")}</a>' in bengali
