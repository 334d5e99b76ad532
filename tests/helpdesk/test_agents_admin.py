"""Agents managed from the browser (issue 13, item 5): the admin's Agents page (invite with a
set-password mail, role and KB editor, deactivate/reactivate) and each agent's profile (name,
language, time zone, password)."""

from __future__ import annotations

import email
import time
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.auth import verify_password
from helpdesk.models import Agent, AgentRole, OutboundMail, Team
from helpdesk.services import agents, outbox
from helpdesk.services.agents import create_agent
from helpdesk.services.assignment import choose_agent, set_assignment
from helpdesk.services.errors import Forbidden, ServiceError
from helpdesk.services.presence import agent_connected, set_presence
from tests.conftest import PASSWORD, AgentClient, bn, login

NEW_PASSWORD = "a brand new secret"


@pytest.fixture
def admin_client(app: Flask, admin: Agent) -> AgentClient:
    client = app.test_client()
    assert login(client, admin.email).status_code == 302
    return AgentClient(client)


def _sent_mails(app: Flask) -> list[EmailMessage]:
    folder = Path(app.config["MAIL_OUTBOX_DIR"])
    return [
        email.message_from_bytes(p.read_bytes(), policy=default)  # type: ignore[misc]
        for p in sorted(folder.glob("*.eml"))
    ]


def _body(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def _invite(admin_client: AgentClient, **fields: Any) -> Any:
    data = {
        "invite-name": "Nadia Noor",
        "invite-email": "nadia@example.com",
        "invite-role": "agent",
        "invite-language": "en",
        **fields,
    }
    return admin_client.post("/admin/agents/invite", data)


def test_invite_mail_set_password_then_sign_in(
    app: Flask, session: Session, admin_client: AgentClient
) -> None:
    team = agents.create_team(session, "Billing")
    session.commit()
    response = _invite(admin_client, **{"invite-kb_editor": "y", "invite-teams": str(team.id)})
    assert response.status_code == 302, response.get_data(as_text=True)
    nadia = session.scalar(select(Agent).where(Agent.email == "nadia@example.com"))
    assert nadia is not None and nadia.password_hash is None
    assert nadia.kb_editor and [t.name for t in nadia.teams] == ["Billing"]
    page = admin_client.get("/admin/agents").get_data(as_text=True)
    assert 'data-agent="nadia@example.com"' in page and "Invited" in page

    session.commit()  # the test's own transaction ends before the worker's
    assert outbox.drain(app) == 1  # the outbox sends it (written to the mail-outbox folder)
    (mail,) = _sent_mails(app)
    assert mail["To"] == "Nadia Noor <nadia@example.com>"
    body = _body(mail)
    link = next(line for line in body.splitlines() if "/welcome/" in line)
    path = link.removeprefix(str(app.config["BASE_URL"]))
    assert "expires in 72 hours" in body

    browser = app.test_client()
    assert login(browser, "nadia@example.com", NEW_PASSWORD).status_code == 200  # no password
    form = browser.get(path)
    assert form.status_code == 200 and "Nadia Noor" in form.get_data(as_text=True)
    token = _csrf(form.get_data(as_text=True))
    short = browser.post(path, data={"csrf_token": token, "new": "short", "confirm": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(as_text=True)
    done = browser.post(
        path, data={"csrf_token": token, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert login(browser, "nadia@example.com", NEW_PASSWORD).status_code == 302
    assert browser.get("/agent/queue").status_code == 200
    # The link worked once.
    assert app.test_client().get(path).status_code == 404


def _csrf(page: str) -> str:
    import re

    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    return match.group(1)


def test_an_invitation_link_expires(
    app: Flask, session: Session, admin: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    nadia = agents.invite_agent(
        session, admin, email="nadia@example.com", name="Nadia", role="agent"
    )
    session.commit()
    four_days_ago = time.time() - 4 * 24 * 3600
    with monkeypatch.context() as clock:
        clock.setattr("itsdangerous.timed.time.time", lambda: four_days_ago)
        old_token = agents.invite_token(nadia)
    page = app.test_client().get(f"/welcome/{old_token}")
    assert page.status_code == 410
    assert "This link has expired" in page.get_data(as_text=True)
    assert app.test_client().get("/welcome/not-a-token").status_code == 404


def test_invite_errors_are_shown_translated(
    session: Session, admin: Agent, admin_client: AgentClient
) -> None:
    admin_client.post("/language", {"lang": "bn", "next": "/admin/agents"})
    response = _invite(admin_client, **{"invite-email": admin.email})
    assert response.status_code == 400
    expected = bn("An agent with the email %(email)s already exists.") % {"email": admin.email}
    assert expected in response.get_data(as_text=True)


def test_only_admins_manage_agents(
    session: Session, agent: Agent, agent_client: AgentClient, admin: Agent
) -> None:
    assert agent_client.get("/admin/agents").status_code == 404
    assert agent_client.post(f"/admin/agents/{admin.id}/active", {"active": "0"}).status_code == 404
    with pytest.raises(Forbidden):
        agents.set_agent_active(session, agent, admin, False)
    with pytest.raises(Forbidden):
        agents.invite_agent(session, agent, email="x@example.com", name="X")
    with pytest.raises(Forbidden):  # the same rule for teams, whoever calls the service
        agents.save_team(
            session, agent, name="Mine", member_ids=[agent.id], mode="round_robin", max_open=None
        )


def test_forms_need_csrf(app: Flask, admin: Agent, agent: Agent, admin_client: AgentClient) -> None:
    raw = admin_client.client
    assert raw.post(f"/admin/agents/{agent.id}/active", data={"active": "0"}).status_code in (
        400,
        302,
    )
    assert agent.active  # nothing happened without the token
    response = raw.post("/admin/agents/invite", data={"invite-name": "X", "invite-email": "x@x.x"})
    assert response.status_code == 400


def test_deactivated_agent_is_signed_out_cannot_sign_in_and_gets_no_tickets(
    app: Flask, session: Session, admin_client: AgentClient, agent: Agent, agent_client: AgentClient
) -> None:
    team = agents.create_team(session, "Support", [agent])
    set_assignment(session, team, "round_robin", None, None)
    agent_connected(session, agent, "sid-1")
    set_presence(session, agent, "online")
    session.commit()
    assert choose_agent(session, team) == agent
    assert agent_client.get("/agent/queue").status_code == 200

    response = admin_client.post(f"/admin/agents/{agent.id}/active", {"active": "0"})
    assert response.status_code == 302
    session.refresh(agent)
    assert not agent.active
    assert agent_client.get("/agent/queue").status_code == 302  # the open session is over
    assert login(app.test_client(), agent.email).status_code == 200  # "wrong email or password"
    assert choose_agent(session, team) is None

    admin_client.post(f"/admin/agents/{agent.id}/active", {"active": "1"})
    assert login(app.test_client(), agent.email).status_code == 302
    assert agent_client.get("/agent/queue").status_code == 302  # old sessions stay ended


def test_the_remember_me_cookie_dies_with_deactivation(
    app: Flask, session: Session, admin: Agent, agent: Agent
) -> None:
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    client.post(
        "/login",
        data={"email": agent.email, "password": PASSWORD, "remember": "y", "csrf_token": token},
    )
    agents.set_agent_active(session, admin, agent, False)
    agents.set_agent_active(session, admin, agent, True)
    session.commit()
    with client.session_transaction() as s:  # the session cookie lost; remember-me kept
        s.clear()
    assert client.get("/agent/queue").status_code == 302


def test_admins_cannot_demote_or_deactivate_themselves_or_the_last_admin(
    session: Session, admin: Agent, admin_client: AgentClient
) -> None:
    response = admin_client.post(f"/admin/agents/{admin.id}/role", {"role": "agent"})
    assert response.status_code == 302
    page = admin_client.get("/admin/agents").get_data(as_text=True)
    assert "You cannot demote or deactivate yourself." in page
    admin_client.post(f"/admin/agents/{admin.id}/active", {"active": "0"})
    session.refresh(admin)
    assert admin.is_admin and admin.active
    with pytest.raises(ServiceError, match="at least one active admin"):
        agents.change_role(session, None, admin, "agent", False)  # e.g. from the command line
    second = create_agent(session, "boss@example.com", "Second Admin", PASSWORD, AgentRole.ADMIN)
    session.commit()
    admin_client.post(f"/admin/agents/{second.id}/role", {"role": "agent", "kb_editor": "y"})
    session.refresh(second)
    assert second.role == AgentRole.AGENT and second.kb_editor


def test_profile_sets_name_language_and_time_zone(
    session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    page = agent_client.get("/agent/queue").get_data(as_text=True)
    assert 'href="/agent/profile"' in page  # the name in the top bar
    form = agent_client.get("/agent/profile").get_data(as_text=True)
    assert '<option value="Asia/Dhaka">Asia/Dhaka</option>' in form
    bad = agent_client.post(
        "/agent/profile",
        {"profile-name": "Alex", "profile-language": "en", "profile-timezone": "Mars/Olympus"},
    )
    assert bad.status_code == 400
    response = agent_client.post(
        "/agent/profile",
        {"profile-name": "Alex Rahman", "profile-language": "bn", "profile-timezone": "Asia/Dhaka"},
    )
    assert response.status_code == 302
    session.refresh(agent)
    assert (agent.name, agent.language, agent.timezone) == ("Alex Rahman", "bn", "Asia/Dhaka")
    page = agent_client.get("/agent/profile").get_data(as_text=True)
    assert bn("Your profile is saved.") in page and '<html lang="bn">' in page


def test_password_change_needs_the_current_one_and_signs_out_other_sessions(
    app: Flask, session: Session, agent: Agent, agent_client: AgentClient
) -> None:
    other = app.test_client()
    login(other, agent.email)
    assert other.get("/agent/queue").status_code == 200
    agent_client.post("/language", {"lang": "bn", "next": "/agent/profile"})
    wrong = agent_client.post(
        "/agent/profile/password",
        {
            "password-current": "nope",
            "password-new": NEW_PASSWORD,
            "password-confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 400
    assert bn("Your current password is not correct.") in wrong.get_data(as_text=True)
    weak = agent_client.post(
        "/agent/profile/password",
        {"password-current": PASSWORD, "password-new": "aaaaaaaa", "password-confirm": "aaaaaaaa"},
    )
    assert weak.status_code == 400
    ok = agent_client.post(
        "/agent/profile/password",
        {
            "password-current": PASSWORD,
            "password-new": NEW_PASSWORD,
            "password-confirm": NEW_PASSWORD,
        },
    )
    assert ok.status_code == 302
    session.refresh(agent)
    assert verify_password(agent.password_hash, NEW_PASSWORD)
    assert agent_client.get("/agent/queue").status_code == 200  # this session goes on
    assert other.get("/agent/queue").status_code == 302  # the other one is signed out


def test_invitation_mail_is_in_the_agents_language(
    app: Flask, session: Session, admin: Agent
) -> None:
    agents.invite_agent(
        session, admin, email="rumi@example.com", name="রুমি", role="agent", language="bn"
    )
    session.commit()
    assert outbox.drain(app) == 1
    (mail,) = _sent_mails(app)
    assert str(mail["Subject"]) == bn("Your invitation to the helpdesk")
    assert "৭২" in _body(mail)  # hours in Bengali digits
    row = session.scalar(select(OutboundMail))
    assert row is not None and row.purpose == "agent.invite"
    assert session.scalar(select(Team).limit(1)) is None


def test_a_session_from_before_session_versions_survives_the_upgrade(
    app: Flask, session: Session, agent: Agent, admin: Agent
) -> None:
    client = app.test_client()
    login(client, agent.email)
    with client.session_transaction() as s:
        s["_user_id"] = f"agent:{agent.id}"  # what a signed-in browser held before the upgrade
    assert client.get("/agent/queue").status_code == 200
    agents.set_agent_active(session, admin, agent, False)
    agents.set_agent_active(session, admin, agent, True)
    session.commit()
    assert client.get("/agent/queue").status_code == 302


def test_the_command_line_adds_kb_editors_with_a_time_zone(app: Flask, session: Session) -> None:
    import json

    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "agent", "add", "ed@example.com", "--password", NEW_PASSWORD,
            "--kb-editor", "--timezone", "Asia/Dhaka",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bad = runner.invoke(
        args=["agent", "add", "x@example.com", "--password", NEW_PASSWORD, "--timezone", "Mars/X"]
    )
    assert bad.exit_code != 0 and "Mars/X" in bad.output
    rows = json.loads(runner.invoke(args=["agent", "list", "--json"]).output)
    (ed,) = [r for r in rows if r["email"] == "ed@example.com"]
    assert ed["kb_editor"] and ed["timezone"] == "Asia/Dhaka" and not ed["invited"]


def test_the_invite_form_makes_an_agent_unless_told_otherwise(
    admin: Agent, admin_client: AgentClient
) -> None:
    """Found on a walk through the README's tour: the role select opened on "Admin"."""
    page = admin_client.get("/admin/agents").get_data(as_text=True)
    form = page[page.index('name="invite-role"') :]
    selected = form[: form.index("</select>")]
    assert 'value="agent" selected' in selected or 'selected value="agent"' in selected
    assert 'value="admin" selected' not in selected
