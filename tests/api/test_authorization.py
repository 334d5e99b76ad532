"""The authorization matrix over every operation of the document: no token and a revoked one
are 401; a read token may only GET; a write token of an agent (or an admin token of an agent
no longer admin) gets 403 on the admin resources; an admin's admin token reaches them. A new
operation must be classified here (the test compares with the document)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Agent, AgentRole
from helpdesk.services import api_tokens
from tests.api.conftest import ApiClient, MakeToken, error_of

# (method, path) of the admin resources: an admin token of an admin only.
ADMIN = {
    ("POST", "/api/v1/agents"),
    ("PATCH", "/api/v1/agents/{agent_id}"),
    ("POST", "/api/v1/agents/{agent_id}/deactivate"),
    ("POST", "/api/v1/teams"),
    ("PATCH", "/api/v1/teams/{team_id}"),
    ("POST", "/api/v1/teams/{team_id}/members"),
    ("DELETE", "/api/v1/teams/{team_id}/members/{agent_id}"),
    ("POST", "/api/v1/imports/tickets"),
    ("GET", "/api/v1/customers/{customer_id}/export"),
    ("POST", "/api/v1/customers/{customer_id}/erase"),
    ("POST", "/api/v1/custom-fields"),
    ("PATCH", "/api/v1/custom-fields/{field_id}"),
    ("DELETE", "/api/v1/custom-fields/{field_id}"),
    ("POST", "/api/v1/calendars"),
    ("PATCH", "/api/v1/calendars/{calendar_id}"),
    ("DELETE", "/api/v1/calendars/{calendar_id}"),
    ("POST", "/api/v1/calendars/{calendar_id}/public-holidays"),
    ("POST", "/api/v1/triggers"),
    ("PATCH", "/api/v1/triggers/{rule_id}"),
    ("DELETE", "/api/v1/triggers/{rule_id}"),
    ("POST", "/api/v1/triggers/preview"),
    ("POST", "/api/v1/time-rules"),
    ("PATCH", "/api/v1/time-rules/{rule_id}"),
    ("DELETE", "/api/v1/time-rules/{rule_id}"),
    ("POST", "/api/v1/sla-policies"),
    ("PATCH", "/api/v1/sla-policies/{policy_id}"),
    ("DELETE", "/api/v1/sla-policies/{policy_id}"),
}
ADMIN_PREFIXES = ("/api/v1/webhooks",)  # every operation, GET included
# Operations that kb/ and channels/ add through helpdesk.api.register_resource: agent
# resources (the KB's publishing rules are the editor's permissions, checked by its services).
REGISTERED = {
    ("GET", "/api/v1/kb/articles"),
    ("POST", "/api/v1/kb/articles"),
    ("GET", "/api/v1/kb/articles/{article_id}"),
    ("PATCH", "/api/v1/kb/articles/{article_id}"),
    ("DELETE", "/api/v1/kb/articles/{article_id}"),
    ("GET", "/api/v1/kb/categories"),
    ("POST", "/api/v1/kb/categories"),
    ("GET", "/api/v1/kb/categories/{category_id}"),
    ("PATCH", "/api/v1/kb/categories/{category_id}"),
    ("DELETE", "/api/v1/kb/categories/{category_id}"),
    ("GET", "/api/v1/chats"),
    ("GET", "/api/v1/chats/{chat_id}"),
}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"API_RATE_LIMIT": "100000 per minute"}


def _operations(app: Flask) -> list[tuple[str, str]]:
    doc = ApiClient(app, None).get("/api/v1/openapi.json").get_json()
    return sorted(
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "put", "delete")
    )


def _is_admin(method: str, path: str) -> bool:
    return (method, path) in ADMIN or path.startswith(ADMIN_PREFIXES)


def _call(client: ApiClient, method: str, path: str) -> Any:
    url = re.sub(r"\{[^}]+\}", "999999", path)
    return client.open(method, url, json={} if method != "GET" else None)


def test_every_operation_is_classified(app: Flask) -> None:
    operations = _operations(app)
    assert len(operations) >= 20
    paths = {p for _m, p in operations}
    for method, path in ADMIN:
        assert path in paths, (method, path)
    # The extension point's resources are in the document, so the matrix covers them too.
    kb_and_chats = {(m, p) for m, p in operations if p.startswith(("/api/v1/kb/", "/api/v1/chats"))}
    assert kb_and_chats == REGISTERED


def test_the_matrix(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_token: MakeToken
) -> None:
    nobody = ApiClient(app, None)
    read = ApiClient(app, make_token(agent, "read"))
    write = ApiClient(app, make_token(agent, "write"))
    admins_read = ApiClient(app, make_token(admin, "read"))
    admins_write = ApiClient(app, make_token(admin, "write"))
    admins_admin = ApiClient(app, make_token(admin, "admin"))
    revoked_secret = make_token(admin, "admin", name="old")
    token = api_tokens.authenticate(session, revoked_secret)
    assert token is not None
    api_tokens.revoke_token(session, token.id, None)
    session.commit()
    revoked = ApiClient(app, revoked_secret)

    for method, path in _operations(app):
        where = f"{method} {path}"
        for client in (nobody, revoked):
            assert error_of(_call(client, method, path), 401)["code"] == "unauthorized", where
        admin_only = _is_admin(method, path)
        reading = method == "GET"
        # A read token may only read (and an admin's read token no more than that).
        for client in (read, admins_read):
            response = _call(client, method, path)
            if reading and not admin_only:
                assert response.status_code not in (401, 403), where
            else:
                assert error_of(response, 403)["code"] == "forbidden", where
        # An agent's write token (and an admin's write token) never reaches admin resources.
        for client in (write, admins_write):
            response = _call(client, method, path)
            if admin_only:
                assert error_of(response, 403)["code"] == "forbidden", where
            else:
                assert response.status_code not in (401, 403), (where, response.status_code)
        # An admin's admin token reaches everything.
        assert _call(admins_admin, method, path).status_code not in (401, 403), where


def test_an_admin_token_of_a_demoted_admin_gets_403_on_admin_resources(
    app: Flask, session: Session, admin: Agent, make_token: MakeToken
) -> None:
    from helpdesk.services import agents

    other = agents.create_agent(session, "boss@example.com", "Boss", None, AgentRole.ADMIN)
    session.commit()
    client = ApiClient(app, make_token(admin, "admin"))
    assert client.get("/api/v1/agents").status_code == 200
    agents.change_role(session, other, admin, AgentRole.AGENT, False)
    session.commit()
    for method, path in _operations(app):
        if _is_admin(method, path):
            assert error_of(_call(client, method, path), 403)["code"] == "forbidden"
    assert client.get("/api/v1/agents").status_code == 200


def test_the_reference_groups_operations_by_readable_tags(app: Flask) -> None:
    doc = ApiClient(app, None).get("/api/v1/openapi.json").get_json()
    names = [t["name"] for t in doc["tags"]]
    assert {"Tickets", "Customers", "Organizations", "Agents", "Teams", "Webhooks"} <= set(names)
    used = {t for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)
            for t in op.get("tags", [])}  # fmt: skip
    assert used <= set(names) and not any(t.startswith("api_") for t in used | set(names))
