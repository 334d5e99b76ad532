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
from helpdesk.services.mentions import find_mentions, resolve
from tests.conftest import PASSWORD, AgentClient, bn, login


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


def test_a_first_name_or_its_start_mentions_the_one_agent_it_fits(session: Session) -> None:
    ayesha = create_agent(session, "admin@example.com", "Ayesha Rahman", "password123")
    create_agent(session, "rahim.u@example.com", "Rahim Uddin", "password123")
    create_agent(session, "rahim.k@example.com", "Rahim Khan", "password123")
    nusrat = create_agent(session, "nusrat.j@example.com", "নুসরাত জাহান", "password123")
    names = lambda text: sorted(a.name for a in find_mentions(session, text))  # noqa: E731
    assert names("@Ayesha can you look?") == ["Ayesha Rahman"]  # the README's tour step
    assert names("@ayes, and @Rahman.") == ["Ayesha Rahman"]
    assert names("@নুসরাত দেখুন") == [nusrat.name] == names("@নুস দেখুন")
    assert names("@Rahim Khan please") == ["Rahim Khan"]

    found = resolve(session, "@Rahim @Ra @Zed, @Zed and @a mail ayesha@example.com")
    assert found.agents == []
    assert found.ambiguous == {
        "@Rahim": ["Rahim Khan", "Rahim Uddin"],
        "@Ra": ["Ayesha Rahman", "Rahim Khan", "Rahim Uddin"],  # "Ra" starts Rahman too
    }
    assert found.unmatched == ["@Zed", "@a"]  # once each; one letter is too little to guess
    assert ayesha.id


def test_the_author_is_told_who_was_notified_and_which_mention_reached_nobody(
    app: Flask, session: Session, ticket: Ticket, agent: Agent, agent_client: AgentClient
) -> None:
    ayesha = create_agent(session, "admin@example.com", "Ayesha Rahman", PASSWORD)
    create_agent(session, "rahim.u@example.com", "Rahim Uddin", PASSWORD)
    create_agent(session, "rahim.k@example.com", "Rahim Khan", PASSWORD)
    session.commit()
    response = agent_client.post(
        f"/agent/tickets/{ticket.number}/note",
        {"note-body": "@Ayesha please call. @Rahim and @Zed too"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Notified: Ayesha Rahman." in page
    assert "No agent is called @Zed: nobody was notified for it." in page
    assert (
        "@Rahim could be Rahim Khan, Rahim Uddin: nobody was notified. Write more of the name."
        in page
    )
    notified = session.scalars(select(Notification)).all()
    assert [n.agent_id for n in notified] == [ayesha.id]

    # In Bengali, the warning is in Bengali.
    agent_client.post("/language", {"lang": "bn"})
    page = agent_client.post(
        f"/agent/tickets/{ticket.number}/note", {"note-body": "@Zed দেখুন"}, follow_redirects=True
    ).get_data(as_text=True)
    warning = bn("No agent is called %(handle)s: nobody was notified for it.")
    assert warning % {"handle": "@Zed"} in page


def test_the_note_box_suggests_agents_for_what_follows_the_at(
    session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    create_agent(session, "admin@example.com", "Ayesha Rahman", PASSWORD)
    create_agent(session, "nusrat.j@example.com", "নুসরাত জাহান", PASSWORD)
    gone = create_agent(session, "gone@example.com", "Ayesha Gone", PASSWORD)
    gone.active = False
    session.commit()
    got = agent_client.client.get("/agent/mentions/suggest?q=ay").get_json()
    assert [a["name"] for a in got["agents"]] == ["Ayesha Rahman"]
    got = agent_client.client.get("/agent/mentions/suggest?q=রাহ").get_json()
    assert got["agents"] == []
    got = agent_client.client.get("/agent/mentions/suggest?q=জাহ").get_json()
    assert [a["name"] for a in got["agents"]] == ["নুসরাত জাহান"]
