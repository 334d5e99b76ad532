"""Saved views (personal and team), the remembered last view, and view counts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from helpdesk.models import Agent, TicketStatus
from helpdesk.services import tags, tickets, views
from helpdesk.services.agents import create_agent, create_team
from helpdesk.services.errors import ServiceError
from tests.conftest import PASSWORD, AgentClient, MakeTicket, login


def test_counts_match_the_views(session: Session, make_ticket: MakeTicket, agent: Agent) -> None:
    ts = [make_ticket(sender=f"c{i}@example.com").ticket for i in range(7)]
    tickets.assign_ticket(session, ts[0], agent, agent)
    tickets.assign_ticket(session, ts[1], agent, agent)
    tickets.set_status(session, ts[2], TicketStatus.PENDING, agent)
    tickets.set_status(session, ts[3], TicketStatus.RESOLVED, agent)
    tags.set_tags(session, ts[4], ["vip"], agent)
    session.commit()
    saved = views.save_view(session, agent, "VIPs", {"view": "all", "tag": "vip"})
    session.commit()
    counts = views.view_counts(session, agent)
    assert counts == {
        "mine": 2,
        "unassigned": 4,
        "open": 6,
        "pending": 1,
        "resolved": 1,
        "all": 7,
        f"saved:{saved.id}": 1,
    }


def test_team_views_are_shared_and_personal_ones_are_not(session: Session, agent: Agent) -> None:
    bea = create_agent(session, "bea@example.com", "Bea", "password123")
    cat = create_agent(session, "cat@example.com", "Cat", "password123")
    team = create_team(session, "Billing", [agent, bea])
    views.save_view(
        session, agent, "Billing urgent", {"view": "open", "priority": "4"}, team_id=team.id
    )
    views.save_view(session, agent, "Mine only", {"view": "mine"})
    session.commit()
    assert [v.name for v in views.visible_views(session, bea)] == ["Billing urgent"]
    assert views.visible_views(session, cat) == []
    try:
        views.save_view(session, cat, "sneak", {"view": "all"}, team_id=team.id)
    except ServiceError:
        pass
    else:
        raise AssertionError("a non-member shared a view with the team")


def test_queue_remembers_the_last_view_and_saves_views(
    app: object, agent_client: AgentClient, make_ticket: MakeTicket
) -> None:
    make_ticket(channel="chat", sender="visitor-9", text="hi")
    assert agent_client.post(
        "/agent/queue/remember", {"args": "view=all&channel=chat"}
    ).get_json() == {"ok": True}
    response = agent_client.get("/agent/queue")
    assert response.status_code == 302 and "channel=chat" in response.headers["Location"]
    # On another device (a new sign-in) too.
    other = app.test_client()  # type: ignore[attr-defined]
    login(other, "agent@example.com", PASSWORD)
    assert "channel=chat" in other.get("/agent/queue").headers["Location"]

    saved = agent_client.post("/agent/views", {"name": "Chats", "args": "view=all&channel=chat"})
    assert saved.status_code == 302
    page = agent_client.get("/agent/queue?view=all&channel=chat").get_data(as_text=True)
    assert "Chats" in page and 'aria-current="page" class="active">Chats' in page
    counts = agent_client.get("/agent/queue/counts").get_json()
    assert counts["all"] == 1 and any(k.startswith("saved:") and v == 1 for k, v in counts.items())
    bad = agent_client.post("/agent/views", {"name": "Bad", "args": "view=nope"})
    assert bad.status_code == 400
