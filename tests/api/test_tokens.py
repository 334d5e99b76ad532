"""API tokens: the CLI, the profile page, what a token may do (401s, scopes)."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, ApiToken
from helpdesk.services import agents, api_tokens
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import AgentClient, MakeTicket, bn


def test_cli_creates_lists_and_revokes_tokens(app: Flask, session: Session, agent: Agent) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=[
            "token",
            "create",
            "--agent",
            agent.email,
            "--name",
            "CRM sync",
            "--scope",
            "write",
            "--json",
        ]
    )
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert set(created) == {"token", "id", "scope"} and created["scope"] == "write"
    secret = created["token"]

    client = ApiClient(app, secret)
    assert client.get("/api/v1/tickets").status_code == 200

    session.rollback()  # the CLI shares the test's session; a real one starts afresh
    listed = runner.invoke(args=["token", "list", "--agent", agent.email, "--json"])
    [row] = json.loads(listed.output)
    assert row["id"] == created["id"] and row["name"] == "CRM sync" and row["scope"] == "write"
    assert row["last_used_at"] is not None and row["revoked_at"] is None
    assert secret not in listed.output and secret.startswith(row["prefix"])

    revoked = runner.invoke(args=["token", "revoke", str(created["id"])])
    assert revoked.exit_code == 0, revoked.output
    error_of(client.get("/api/v1/tickets"), 401)
    session.rollback()
    [row] = json.loads(runner.invoke(args=["token", "list", "--json"]).output)
    assert row["revoked_at"] is not None


def test_cli_refuses_an_admin_scope_for_an_agent(app: Flask, agent: Agent) -> None:
    result = app.test_cli_runner().invoke(
        args=["token", "create", "--agent", agent.email, "--name", "x", "--scope", "admin"]
    )
    assert result.exit_code != 0
    assert "admin" in result.output


def test_the_secret_is_stored_hashed(session: Session, agent: Agent, make_token: MakeToken) -> None:
    secret = make_token(agent)
    row = session.scalars(select(ApiToken)).one()
    assert row.token_hash == api_tokens.hash_secret(secret) and secret not in row.token_hash


def test_profile_page_creates_shows_once_lists_and_revokes(
    app: Flask, agent_client: AgentClient, session: Session
) -> None:
    made = agent_client.post(
        "/agent/profile/tokens", {"token-name": "Zapier", "token-scope": "read"}
    )
    assert made.status_code == 201
    page = made.get_data(as_text=True)
    row = session.scalars(select(ApiToken)).one()
    secret_start = page.index("data-token-secret>") + len("data-token-secret>")
    secret = page[secret_start : page.index("</code>", secret_start)]
    assert api_tokens.hash_secret(secret) == row.token_hash
    assert made.headers["Cache-Control"] == "no-store"

    client = ApiClient(app, secret)
    assert client.get("/api/v1/tickets").status_code == 200
    # Listed with its last use, never with its secret again.
    again = agent_client.get("/agent/profile").get_data(as_text=True)
    assert "Zapier" in again and secret not in again and row.prefix in again
    assert "Never" not in again.split("data-token-list", 1)[1].split("</table>")[0]

    revoked = agent_client.post(f"/agent/profile/tokens/{row.id}/revoke")
    assert revoked.status_code == 302
    error_of(client.get("/api/v1/tickets"), 401)
    assert "Revoked" in agent_client.get("/agent/profile").get_data(as_text=True)


def test_an_agent_cannot_revoke_someone_elses_token(
    agent_client: AgentClient, admin: Agent, make_token: MakeToken, session: Session
) -> None:
    make_token(admin, "admin")
    row = session.scalars(select(ApiToken)).one()
    assert agent_client.post(f"/agent/profile/tokens/{row.id}/revoke").status_code == 404
    session.refresh(row)
    assert row.revoked_at is None


def test_no_token_a_wrong_one_or_a_cookie_is_401(
    app: Flask, agent_client: AgentClient, make_ticket: MakeTicket
) -> None:
    make_ticket()
    error = error_of(ApiClient(app, None).get("/api/v1/tickets"), 401)
    assert error["code"] == "unauthorized"
    error_of(ApiClient(app, "hd_not-a-token").get("/api/v1/tickets/1001"), 401)
    # A signed-in browser is no API client: its session cookie opens nothing here.
    error_of(agent_client.client.get("/api/v1/tickets/1001"), 401)


def test_a_deactivated_agents_token_is_401(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_token: MakeToken
) -> None:
    client = ApiClient(app, make_token(agent))
    assert client.get("/api/v1/tickets").status_code == 200
    agents.set_agent_active(session, admin, agent, False)
    session.commit()
    error_of(client.get("/api/v1/tickets"), 401)


def test_scope_matrix(
    app: Flask, agent: Agent, admin: Agent, make_token: MakeToken, make_ticket: MakeTicket
) -> None:
    number = make_ticket().ticket.number
    read = ApiClient(app, make_token(agent, "read"))
    write = ApiClient(app, make_token(agent, "write"))
    admin_token = ApiClient(app, make_token(admin, "admin"))
    for client in (read, write, admin_token):
        assert client.get(f"/api/v1/tickets/{number}").status_code == 200
    error = error_of(read.patch(f"/api/v1/tickets/{number}", json={"priority": 3}), 403)
    assert error["code"] == "forbidden"
    error_of(read.post(f"/api/v1/tickets/{number}/messages", json={"body": "hi"}), 403)
    assert write.patch(f"/api/v1/tickets/{number}", json={"priority": 3}).status_code == 200
    assert admin_token.patch(f"/api/v1/tickets/{number}", json={"priority": 4}).status_code == 200


def test_an_admin_token_of_a_demoted_admin_acts_as_write(
    session: Session, admin: Agent, make_token: MakeToken
) -> None:
    make_token(admin, "admin")
    token = session.scalars(select(ApiToken)).one()
    assert api_tokens.effective_scope(token) == "admin"
    admin.role = type(admin.role)("agent")
    assert api_tokens.effective_scope(token) == "write"
    session.rollback()


def test_last_use_is_written_at_most_once_a_minute(
    session: Session, agent: Agent, make_token: MakeToken
) -> None:
    secret = make_token(agent)
    token = api_tokens.authenticate(session, secret)
    assert token is not None
    start = utcnow()
    assert api_tokens.needs_touch(token, start)
    api_tokens.touch_token(session, token.id, start)
    session.commit()
    session.refresh(token)
    assert not api_tokens.needs_touch(token, start + timedelta(seconds=59))
    assert api_tokens.needs_touch(token, start + timedelta(seconds=60))


def test_the_tokens_section_in_bengali(app: Flask, session: Session, agent: Agent) -> None:
    from tests.conftest import login

    agent.language = "bn"
    session.commit()
    client = app.test_client()
    login(client, agent.email)
    page = client.get("/agent/profile").get_data(as_text=True)
    assert bn("API tokens") in page and bn("Create token") in page


def test_an_expired_idempotency_key_is_forgotten(
    session: Session, agent: Agent, make_token: MakeToken
) -> None:
    make_token(agent)
    token = session.scalars(select(ApiToken)).one()
    day_ago = utcnow() - timedelta(hours=24, seconds=1)
    fp = api_tokens.request_fingerprint("POST", "/api/v1/tickets", b"{}")
    api_tokens.remember_response(session, token, "k", fp, 201, {"number": 1}, now=day_ago)
    session.commit()
    assert api_tokens.find_idempotent(session, token, "k", fp) is None
    # Reusing the key a day later is a new request; the old record makes way.
    api_tokens.remember_response(session, token, "k", fp, 201, {"number": 2})
    session.commit()
    stored = api_tokens.find_idempotent(session, token, "k", fp)
    assert stored is not None and stored.body == {"number": 2}
