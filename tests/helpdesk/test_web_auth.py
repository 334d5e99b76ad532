"""Sign-in, sessions, CSRF, and that every agent page and API needs an agent session."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from helpdesk.models import Agent, Ticket
from tests.conftest import PASSWORD, AgentClient, csrf_token, login


def test_sign_in_and_out(client: FlaskClient, agent: Agent) -> None:
    assert client.get("/agent/queue").status_code == 302
    response = login(client, agent.email)
    assert response.status_code == 302 and response.headers["Location"] == "/agent/queue"
    assert "Alex Agent" in client.get("/agent/queue").get_data(as_text=True)
    token = csrf_token(client, "/agent/queue")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/agent/queue").status_code == 302


def test_wrong_password_is_refused_without_saying_which_part(
    client: FlaskClient, agent: Agent
) -> None:
    bad_password = login(client, agent.email, "wrong password")
    unknown_user = login(client, "nobody@example.com", PASSWORD)
    for response in (bad_password, unknown_user):
        assert response.status_code == 200
        assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/agent/queue").status_code == 302


def test_deactivated_agent_cannot_sign_in(
    client: FlaskClient, agent: Agent, session: object
) -> None:
    agent.active = False
    session.commit()  # type: ignore[attr-defined]
    login(client, agent.email)
    assert client.get("/agent/queue").status_code == 302


def test_login_is_rate_limited(client: FlaskClient, agent: Agent) -> None:
    codes = [login(client, agent.email, "nope").status_code for _ in range(11)]
    assert codes[:10] == [200] * 10
    assert codes[10] == 429


def test_next_parameter_cannot_redirect_off_site(client: FlaskClient, agent: Agent) -> None:
    token = csrf_token(client)
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post(
            "/login",
            data={"email": agent.email, "password": PASSWORD, "next": target, "csrf_token": token},
        )
        assert response.headers["Location"] == "/agent/queue"
        client.post("/logout", data={"csrf_token": csrf_token(client, "/agent/queue")})
        token = csrf_token(client)


def test_posts_without_csrf_token_are_refused(agent_client: AgentClient, ticket: Ticket) -> None:
    response = agent_client.client.post(
        f"/agent/tickets/{ticket.number}/note", data={"note-body": "sneaky"}
    )
    assert response.status_code == 400
    assert "form was tampered with" in response.get_data(
        as_text=True
    ) or "session expired" in response.get_data(as_text=True)
    assert ticket.message_count == 1


def test_login_form_needs_csrf_too(client: FlaskClient, agent: Agent) -> None:
    response = client.post("/login", data={"email": agent.email, "password": PASSWORD})
    assert response.status_code == 400


def _agent_rules(app: Flask) -> list[tuple[str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if (
            rule.endpoint.startswith(("agent.", "api."))
            or rule.endpoint == "attachments.raw_message"
        ):
            url = rule.rule
            for arg in rule.arguments:
                url = url.replace(f"<{arg}>", "1").replace(f"<int:{arg}>", "1")
            method = "POST" if "POST" in (rule.methods or ()) else "GET"
            out.append((method, url))
    return out


def test_every_agent_page_and_api_requires_an_agent_session(
    app: Flask, client: FlaskClient, ticket: Ticket
) -> None:
    app.config["WTF_CSRF_ENABLED"] = False  # reach the auth check, not the CSRF check
    rules = _agent_rules(app)
    assert len(rules) >= 12
    for method, url in rules:
        response = client.open(url, method=method)
        assert response.status_code in (302, 401, 404), (method, url, response.status_code)
        if url.startswith("/api/"):
            assert response.status_code == 401 and response.is_json
        assert "customer@example.com" not in response.get_data(as_text=True)


def test_session_cookie_is_httponly(client: FlaskClient, agent: Agent) -> None:
    login(client, agent.email)
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only


@pytest.mark.parametrize("lang,label", [("bn", "সাইন ইন"), ("en", "Sign in")])
def test_login_page_in_both_languages(client: FlaskClient, lang: str, label: str) -> None:
    page = client.get("/login", headers={"Accept-Language": lang}).get_data(as_text=True)
    assert f"<h1>{label}</h1>" in page
    assert f'<html lang="{lang}">' in page


@pytest.mark.parametrize("app_config", [{"SESSION_COOKIE_SECURE": True}])
def test_remember_me_cookie_is_as_protected_as_the_session_cookie(
    client: FlaskClient, agent: Agent
) -> None:
    """Behind HTTPS (SESSION_COOKIE_SECURE) the long-lived remember-me cookie is Secure too, and
    HttpOnly and SameSite=Lax like the session's."""
    response = client.post(
        "/login",
        data={
            "email": agent.email,
            "password": PASSWORD,
            "remember": "y",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 302
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token=")]
    assert len(headers) == 1
    attrs = {part.strip().split("=")[0].lower() for part in headers[0].split(";")}
    assert {"secure", "httponly", "samesite"} <= attrs
    assert "SameSite=Lax" in headers[0]


def test_numbers_no_database_id_can_hold_are_404_not_500(
    client: FlaskClient, agent_client: AgentClient
) -> None:
    for huge in (2**31, 2**63, 10**30):
        for url in (
            f"/attachments/{huge}/x.pdf",  # no sign-in needed to ask
            f"/chat/api/attachments/{huge}",
            f"/agent/tickets/{huge}",
        ):
            assert client.get(url).status_code == 404, url
            assert agent_client.get(url).status_code == 404, url
    assert agent_client.get(f"/agent/tickets/{2**31 - 1}").status_code == 404  # a real lookup


def test_every_page_carries_strict_security_headers(
    client: FlaskClient, agent_client: AgentClient, ticket: Ticket
) -> None:
    pages = [
        (client, "/login"),
        (client, "/portal/"),
        (agent_client, "/agent/queue"),
        (agent_client, f"/agent/tickets/{ticket.number}"),
    ]
    for who, url in pages:
        response = who.get(url)
        assert response.status_code == 200, url
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, url
        assert "frame-ancestors 'none'" in csp and response.headers["X-Frame-Options"] == "DENY"
        assert "object-src 'none'" in csp and "base-uri 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        # No inline script or style attribute the policy would block.
        page = response.get_data(as_text=True)
        assert " style=" not in page and " onclick=" not in page, url
        assert "<script>" not in page, url
    api = agent_client.get("/api/ui/tickets")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
