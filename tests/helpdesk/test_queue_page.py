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
from helpdesk.services.queue import SORTS, VIEWS
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
        # "ago" is remembered per (unit, count, direction): every step of every unit's range,
        # the rounding points and thresholds of each (past and future) read as Babel writes them.
        steps = {0, 1, 29, 30, 31, 50, 51, 52, 59, 60, 89, 90, 91}
        for unit in (60, 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400):
            steps |= {round(unit * k / 20) for k in range(1, 60)}
            steps |= {round(unit * 0.85) + d for d in (-1, 0, 1)}
            steps |= {round(unit * (k + 0.5)) + d for k in range(4) for d in (-1, 0, 1)}
        for seconds in sorted(steps):
            for value in (
                text.now - timedelta(seconds=seconds),
                text.now + timedelta(seconds=seconds),
                text.now - timedelta(seconds=seconds, microseconds=500_000),
            ):
                assert text.ago(value) == format_ago(value, text.now), value - text.now
        assert text.views == {k: str(v) for k, v in VIEWS.items()}
        assert text.sorts == {k: str(v) for k, v in SORTS.items()}
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


# The rows as the Jinja loop of agent/_queue_rows.html wrote them before RowText.rows: the
# reference the precompiled rows must keep to (the browser tests and shortcuts.js read them).
JINJA_ROWS = """{% for t in tickets %}{%- set href = text.href(t) %}
    <tr data-ticket-id="{{ t.id }}" class="row-{{ t.status.value }}">
      <td class="sel"><input type="checkbox" name="ticket" value="{{ t.id }}" form="bulk-form" aria-label="{{ text.select(t) }}"></td>
      <td class="num"><a href="{{ href }}">{{ t.display_number }}</a></td>
      <td class="subject">
        <span class="badge channel-{{ t.channel.value }}">{{ text.channel[t.channel] }}</span>
        <a href="{{ href }}">{{ t.subject }}</a>
        {% for tag in t.tags %}<span class="tag">{{ tag.name }}</span>{% endfor %}
        <span class="count" title="{{ text.messages }}">{{ text.count(t.message_count) }}</span>
      </td>
      <td>{{ t.customer.display_name }}</td>
      <td><span class="status status-{{ t.status.value }}">{{ text.status[t.status] }}</span></td>
      <td><span class="prio prio-{{ t.priority }}">{{ text.priority[t.priority] }}</span></td>
      <td>{{ t.assignee.name if t.assignee else "—" }}</td>
      <td><time datetime="{{ t.updated_at.isoformat() }}" title="{{ text.when(t.updated_at) }}">{{ text.ago(t.updated_at) }}</time></td>
      {{ text.sla(t)|safe }}
    </tr>{% endfor %}"""  # noqa: E501


def _markup(html: str) -> str:
    """Spaces as a browser reads them: runs are one space, none around rows and cells."""
    html = re.sub(r"\s+", " ", html)
    return re.sub(r"\s*(</?(?:tr|td)\b[^>]*>)\s*", r"\1", html).strip()


@pytest.mark.parametrize(("language", "zone"), [("en", "America/New_York"), ("bn", "Asia/Dhaka")])
def test_rows_are_written_as_the_template_wrote_them(
    app: Flask,
    session: Session,
    agent: Agent,
    make_ticket: MakeTicket,
    language: str,
    zone: str | None,
) -> None:
    """Every cell of a row, for tickets with and without tags, assignee and customer name, a
    subject with markup in it, in the agent's language and zone."""
    from flask import render_template_string

    from helpdesk.services.queue import QueueFilter, queue_page, queue_rows

    update_profile(session, agent, name="Alex <Agent>", language=language, timezone=zone)
    make_ticket(sender="nobody@example.com", subject='<b>Bold</b> & "quoted"')
    plain = make_ticket(sender="ann@example.com", subject="Where is my order?").ticket
    tags.set_tags(session, plain, ["vip", "billing"], agent)
    tickets.assign_ticket(session, plain, agent, agent)
    tickets.set_priority(session, plain, Priority.URGENT, agent)
    make_ticket(sender="chat@example.com", channel="chat")
    session.commit()
    with app.test_request_context("/agent/queue"):
        login_user(agent)
        text = RowText()
        flt = QueueFilter(view="all")
        orm = queue_page(session, flt, agent=agent).tickets
        rows = queue_rows(session, flt, agent=agent).rows
        assert len(rows) == 3
        want = render_template_string(JINJA_ROWS, tickets=orm, text=text)
        assert _markup(str(text.rows(rows))) == _markup(want)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &#34;quoted&#34;" in want


@pytest.mark.usefixtures("busy_desk")
def test_a_queue_page_builds_no_ticket_objects(agent_client: AgentClient) -> None:
    """The rows are plain values from one query: the ORM builds no ticket, customer or tag
    object for them (only the signed-in agent and the sidebar's views and teams), which was a
    fifth of a page's CPU."""
    from helpdesk.db import Base
    from helpdesk.models import Customer, Tag, Ticket

    built: list[type] = []

    def loaded(target: Any, _context: Any) -> None:
        built.append(type(target))

    event.listen(Base, "load", loaded, propagate=True)
    try:
        for url in ("/agent/queue?view=all", "/agent/queue?view=all&partial=1"):
            agent_client.get(url)
            db.session.close()
            built.clear()
            response = agent_client.get(url)
            assert response.status_code == 200
            assert response.get_data(as_text=True).count("data-ticket-id=") == 13
            assert Agent in built  # the listener sees what the ORM builds
            assert not set(built) & {Ticket, Customer, Tag}, built
    finally:
        event.remove(Base, "load", loaded)


def test_the_team_and_assignee_lists_come_in_name_order(
    agent_client: AgentClient, session: Session, agent: Agent
) -> None:
    """Teams (all of them in the filter, the agent's own in "share with") and the active agents,
    each by name, from the one statement that reads both."""
    from helpdesk.models import AgentRole
    from helpdesk.services.agents import set_agent_active

    admin = create_agent(session, "root@example.com", "Root Admin", "password123", AgentRole.ADMIN)
    zed = create_agent(session, "zed@example.com", "Zed Agent", "password123")
    gone = create_agent(session, "gone@example.com", "Ann Gone", "password123")
    create_team(session, "Shipping", [zed])
    create_team(session, "Accounts", [agent])
    create_team(session, "Billing", [agent, zed])
    session.flush()
    set_agent_active(session, admin, gone, False)
    session.commit()
    html = agent_client.get("/agent/queue").get_data(as_text=True)
    filters = html.split('<form class="filters"', 1)[1].split("</form>", 1)[0]
    team_filter = filters.split('name="team"', 1)[1].split("</select>", 1)[0]
    assignees = filters.split('name="assignee"', 1)[1].split("</select>", 1)[0]
    share = html.split('name="team"', 1)[1].split("</select>", 1)[0]
    option = re.compile(r'<option value="\d+"\s*>([^<]+)</option>')
    assert option.findall(team_filter) == ["Accounts", "Billing", "Shipping"]
    assert option.findall(share) == ["Accounts", "Billing"]
    assert option.findall(assignees) == ["Alex Agent", "Root Admin", "Zed Agent"]
