"""The queue page's cost in statements: what docs/performance.md says, on every database.

The page is the busiest one agents have; its statement count is documented and measured here so
the two cannot drift apart again (the doc said 5 SELECTs while a page sent 13: one per team for
the "share with" list, teams and agents for a live refresh that shows neither, two for a tag).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for
from flask_login import login_user
from sqlalchemy import event
from sqlalchemy.orm import Session

from helpdesk.extensions import db
from helpdesk.i18n import _, format_ago, format_number
from helpdesk.models import Agent, ChannelKind, Priority, TicketStatus
from helpdesk.services import mentions, tags, tickets, views
from helpdesk.services.agents import create_agent, create_team, update_profile
from helpdesk.web.filters import channel_label, datetime_filter, priority_label, status_label
from helpdesk.web.queue_rows import RowText
from tests.conftest import AgentClient, MakeTicket

PERFORMANCE_MD = Path(__file__).resolve().parents[2] / "docs" / "performance.md"


def documented() -> dict[str, int]:
    """The figures of the sentence in docs/performance.md that states them."""
    text = " ".join(PERFORMANCE_MD.read_text(encoding="utf-8").split())
    match = re.search(
        r"A queue page sends (\d+) SELECT statements.*?a live refresh of its rows (\d+).*?"
        r"a tag filter adds (\d+)",
        text,
    )
    assert match, "docs/performance.md no longer states the queue page's statements"
    page, refresh, tag = (int(g) for g in match.groups())
    return {"page": page, "refresh": refresh, "tag": page + tag}


class Selects:
    """The SELECTs the engine sends while recording (BEGIN, a driver's own, are not counted:
    SQLite's is a statement, PostgreSQL's is implicit)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, _conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.sql.append(" ".join(statement.split()))


@pytest.fixture
def selects(app: Flask) -> Iterator[Selects]:
    rec = Selects()
    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", rec)
    yield rec
    event.remove(engine, "before_cursor_execute", rec)


@pytest.fixture
def busy_desk(session: Session, make_ticket: MakeTicket, agent: Agent) -> None:
    """What a real queue page shows: several teams (the agent in some), personal and team
    views, tagged and assigned tickets, an unread notification."""
    bea = create_agent(session, "bea@example.com", "Bea Agent", "password123")
    billing = create_team(session, "Billing", [agent, bea])
    create_team(session, "Shipping", [bea])
    create_team(session, "Technical", [agent])
    create_team(session, "Accounts", [])
    views.save_view(session, agent, "Urgent", {"priority": "4"})
    views.save_view(session, bea, "Team chats", {"channel": "chat"}, team_id=billing.id)
    for i in range(12):
        t = make_ticket(sender=f"c{i}@example.com", commit=False).ticket
        tags.set_tags(session, t, ["vip"] if i % 2 else ["billing", "vip"], agent)
        tickets.assign_ticket(session, t, agent if i % 3 else bea, agent)
        if i % 4 == 0:
            tickets.set_status(session, t, TicketStatus.PENDING, agent)
    session.commit()
    t = make_ticket(sender="mention@example.com", commit=False).ticket
    tickets.add_note(session, t, bea, "@Alex please look", mentions=mentions.Mentions())
    session.commit()


def page_selects(agent_client: AgentClient, selects: Selects, url: str) -> list[str]:
    agent_client.get(url)  # the first request of a client warms what is per process
    # Requests here share the test's app context and so its session; a server's request starts
    # with an empty one (the signed-in agent is loaded again): start there.
    db.session.close()
    selects.sql.clear()
    response = agent_client.get(url)
    assert response.status_code == 200
    assert b"data-ticket-id" in response.data
    return list(selects.sql)


@pytest.mark.usefixtures("busy_desk")
def test_a_queue_page_sends_the_documented_statements(
    agent_client: AgentClient, selects: Selects
) -> None:
    want = documented()
    page = page_selects(agent_client, selects, "/agent/queue?view=all")
    assert len(page) == want["page"], "\n".join(page)
    refresh = page_selects(agent_client, selects, "/agent/queue?view=all&partial=1")
    assert len(refresh) == want["refresh"], "\n".join(refresh)
    tagged = page_selects(agent_client, selects, "/agent/queue?view=all&tag=vip")
    assert len(tagged) == want["tag"], "\n".join(tagged)


@pytest.mark.usefixtures("busy_desk")
def test_the_share_list_offers_only_the_agents_teams(agent_client: AgentClient) -> None:
    html = agent_client.get("/agent/queue").get_data(as_text=True)
    share = html.split('name="team"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r"<option value=\"\d+\">([^<]+)</option>", share) == [
        "Billing",
        "Technical",
    ]


@pytest.mark.parametrize(
    ("language", "zone"), [("en", "America/New_York"), ("bn", "Asia/Dhaka"), ("en", None)]
)
def test_rows_read_as_the_filters_write(
    app: Flask,
    session: Session,
    agent: Agent,
    make_ticket: MakeTicket,
    language: str,
    zone: str | None,
) -> None:
    """The queue's per-request row text says what the template filters say, for the agent's
    language and time zone (summer and winter time, the past and the future)."""
    update_profile(session, agent, name=agent.name, language=language, timezone=zone)
    session.commit()
    ticket = make_ticket().ticket
    with app.test_request_context("/agent/queue"):
        login_user(agent)
        text = RowText()
        for value in [
            datetime(2026, 1, 15, 3, 4, 5, tzinfo=UTC),
            datetime(2026, 7, 15, 23, 59, 1, tzinfo=UTC),
            text.now - timedelta(minutes=3),
            text.now - timedelta(days=400),
            text.now + timedelta(hours=5),
        ]:
            assert text.when(value) == datetime_filter(value)
            assert text.ago(value) == format_ago(value, text.now)
        assert all(text.status[s] == status_label(s) for s in TicketStatus)
        assert all(text.priority[int(p)] == priority_label(p) for p in Priority)
        assert all(text.channel[c] == channel_label(c) for c in ChannelKind)
        assert [text.count(n) for n in (1, 7, 1234, 1)] == [
            format_number(n) for n in (1, 7, 1234, 1)
        ]
        assert text.href(ticket) == url_for("agent.ticket", number=ticket.number)
        assert text.select(ticket) == _("Select %(number)s", number=ticket.display_number)
        assert text.messages == _("Messages")
        if language == "bn":
            assert text.when(datetime(2026, 1, 15, 3, 4, 5, tzinfo=UTC)).startswith("১৫")
