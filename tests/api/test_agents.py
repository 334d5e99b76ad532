"""The agents and teams resources: read by every token, managed with an admin's admin token,
through the admin pages' verbs (invitation mail, events, audit)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AuditEvent
from helpdesk.services import agents, stream
from tests.api.conftest import ApiClient, MakeToken, error_of


def test_every_token_reads_agents_and_teams(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_token: MakeToken
) -> None:
    team = agents.create_team(session, "Billing", [agent])
    session.commit()
    read = ApiClient(app, make_token(agent, "read"))
    page = read.get("/api/v1/agents").get_json()
    assert [a["email"] for a in page["agents"]] == ["admin@example.com", "agent@example.com"]
    assert page["next_cursor"] is None
    one = read.get(f"/api/v1/agents/{agent.id}").get_json()
    assert one["role"] == "agent" and one["teams"] == [{"id": team.id, "name": "Billing"}]
    assert one["active"] and not one["invited"]
    members = read.get(f"/api/v1/agents?team={team.id}").get_json()["agents"]
    assert [a["id"] for a in members] == [agent.id]
    teams = read.get("/api/v1/teams").get_json()["teams"]
    assert [t["name"] for t in teams] == ["Billing"]
    body = read.get(f"/api/v1/teams/{team.id}").get_json()
    assert body["members"][0]["id"] == agent.id and body["assignment_mode"] == "off"
    error_of(read.get("/api/v1/agents/999999"), 404)
    error_of(read.get("/api/v1/teams/999999"), 404)


def test_an_admin_invites_changes_and_deactivates(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_token: MakeToken
) -> None:
    api = ApiClient(app, make_token(admin, "admin"))
    start = stream.last_id(session)
    invited = api.post(
        "/api/v1/agents",
        json={"email": "New@Example.com", "name": "নতুন এজেন্ট", "language": "bn"},
    )
    assert invited.status_code == 201, invited.get_data(as_text=True)
    body = invited.get_json()
    assert body["email"] == "new@example.com" and body["invited"] and body["role"] == "agent"
    assert [e.name for e in stream.read(session, after=start)] == ["agent.invited"]
    again = api.post("/api/v1/agents", json={"email": "new@example.com", "name": "X"})
    assert error_of(again, 400)["code"] == "invalid"
    bad = api.post("/api/v1/agents", json={"email": "x@example.com", "name": "X", "language": "fr"})
    assert set(error_of(bad, 422)["fields"]) == {"language"}

    url = f"/api/v1/agents/{agent.id}"
    changed = api.patch(url, json={"role": "admin", "kb_editor": True}).get_json()
    assert changed["role"] == "admin" and changed["kb_editor"]
    # An admin cannot demote themselves.
    error_of(api.patch(f"/api/v1/agents/{admin.id}", json={"role": "agent"}), 400)

    agent_token = ApiClient(app, make_token(agent, "read"))
    assert agent_token.get("/api/v1/tickets").status_code == 200
    gone = api.post(f"{url}/deactivate")
    assert gone.status_code == 200 and gone.get_json()["active"] is False
    error_of(agent_token.get("/api/v1/tickets"), 401)
    assert api.patch(url, json={"active": True}).get_json()["active"] is True
    assert agent_token.get("/api/v1/tickets").status_code == 200


def test_an_admin_manages_teams(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_token: MakeToken
) -> None:
    api = ApiClient(app, make_token(admin, "admin"))
    made = api.post(
        "/api/v1/teams",
        json={"name": "Support", "members": [agent.id], "assignment_mode": "round_robin"},
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    team = made.get_json()
    assert [m["id"] for m in team["members"]] == [agent.id]
    assert team["assignment_mode"] == "round_robin"
    url = f"/api/v1/teams/{team['id']}"
    body = api.patch(url, json={"name": "Support L1", "assignment_max_open": 5}).get_json()
    assert body["name"] == "Support L1" and body["assignment_max_open"] == 5
    assert [m["id"] for m in body["members"]] == [agent.id]
    body = api.post(f"{url}/members", json={"agent": admin.id}).get_json()
    assert [m["id"] for m in body["members"]] == sorted([agent.id, admin.id])
    body = api.delete(f"{url}/members/{agent.id}").get_json()
    assert [m["id"] for m in body["members"]] == [admin.id]
    error_of(api.delete(f"{url}/members/{agent.id}"), 404)
    unknown = api.post(f"{url}/members", json={"agent": 999999})
    assert error_of(unknown, 422)["fields"] == {"agent": "Unknown agent."}
    taken = api.post("/api/v1/teams", json={"name": "Support L1"})
    assert error_of(taken, 400)["code"] == "invalid"
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions.count("team.members") == 3 and "team.assignment" in actions
    # Its business hours: a calendar (SLA due times of its tickets follow it), or the default.
    from helpdesk.services import business_hours

    calendar = business_hours.create_calendar(session, admin, name="Weekend desk")
    session.commit()
    assert api.get(url).get_json()["calendar_id"] is None
    assert (
        api.patch(url, json={"calendar_id": calendar.id}).get_json()["calendar_id"] == calendar.id
    )
    assert api.patch(url, json={"name": "Support L2"}).get_json()["calendar_id"] == calendar.id
    assert api.patch(url, json={"calendar_id": None}).get_json()["calendar_id"] is None
    assert api.patch(url, json={"calendar_id": 99999}).status_code in (400, 422)


def test_an_agents_write_token_changes_no_admin_resource(
    app: Flask, session: Session, agent: Agent, make_token: MakeToken
) -> None:
    """An agent's write token is refused on the admin resources (403, nothing changes)."""
    write = ApiClient(app, make_token(agent, "write"))
    error_of(write.post("/api/v1/teams", json={"name": "Mine"}), 403)
    error_of(write.patch(f"/api/v1/agents/{agent.id}", json={"role": "admin"}), 403)
    session.refresh(agent)
    assert agent.role.value == "agent"
