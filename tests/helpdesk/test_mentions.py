"""@mentions in internal notes notify the mentioned agent in the app, live and in a list."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.extensions import socketio
from helpdesk.models import Agent, Ticket
from helpdesk.models.notifications import Notification
from helpdesk.services import tickets
from helpdesk.services.agents import create_agent
from helpdesk.services.mentions import find_mentions
from tests.conftest import PASSWORD, AgentClient, login


def test_who_is_mentioned(session: Session, agent: Agent) -> None:
    ana = create_agent(session, "ana@example.com", "Ana", "password123")
    ana_maria = create_agent(session, "am@example.com", "Ana Maria", "password123")
    nusrat = create_agent(session, "nusrat@example.com", "নুসরাত জাহান", "password123")
    names = lambda text: sorted(a.name for a in find_mentions(session, text))  # noqa: E731
    assert names("@Ana Maria please check") == ["Ana Maria"]
    assert names("@ana and (@nusrat)") == ["Ana", "নুসরাত জাহান"]
    assert names("@নুসরাত জাহান দেখুন") == ["নুসরাত জাহান"]
    assert names("mail ana@example.com, @anabel") == []
    assert {ana.id, ana_maria.id, nusrat.id}


def test_mention_creates_a_live_notification(
    app: Flask, session: Session, ticket: Ticket, agent: Agent, agent_client: AgentClient
) -> None:
    bea = create_agent(session, "bea@example.com", "Bea Khan", PASSWORD)
    session.commit()
    bea_client = app.test_client()
    login(bea_client, "bea@example.com")
    sio = socketio.test_client(app, namespace="/agent", flask_test_client=bea_client)
    sio.get_received("/agent")

    agent_client.post(
        f"/agent/tickets/{ticket.number}/note", {"note-body": "@Bea Khan can you call them? @alex"}
    )
    got = [e for e in sio.get_received("/agent") if e["name"] == "notification"]
    assert [e["args"][0]["number"] for e in got] == [ticket.number]  # once, and not for the author
    page = bea_client.get("/agent/queue").get_data(as_text=True)
    assert "data-notification-count >1<" in page.replace("\n", "")
    listing = bea_client.get("/agent/notifications").get_data(as_text=True)
    assert "Alex Agent mentioned you on #1001" in listing
    rows = session.scalars(select(Notification).where(Notification.agent_id == bea.id)).all()
    assert len(rows) == 1 and rows[0].read_at is None
    sio.disconnect("/agent")


def test_opening_a_notification_marks_it_read(
    app: Flask, session: Session, ticket: Ticket, agent: Agent
) -> None:
    bea = create_agent(session, "bea@example.com", "Bea", PASSWORD)
    tickets.add_note(session, ticket, agent, "@bea look")
    session.commit()
    client = app.test_client()
    login(client, "bea@example.com")
    from tests.conftest import csrf_token

    n = session.scalars(select(Notification)).one()
    response = client.post(
        "/agent/notifications/read",
        data={
            "id": str(n.id),
            "open": str(ticket.number),
            "csrf_token": csrf_token(client, "/agent/queue"),
        },
    )
    assert response.headers["Location"].startswith(f"/agent/tickets/{ticket.number}")
    session.expire_all()
    assert session.get(Notification, n.id).read_at is not None  # type: ignore[union-attr]
    assert bea.id
