"""An integrator's view: the Flask test client sending ``Authorization: Bearer`` and no
cookie. Tokens are made through the real service (as the profile page and the CLI do)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from helpdesk.models import Agent
from helpdesk.services import api_tokens


class ApiClient:
    """A test client that sends one token with every request (and never a cookie)."""

    def __init__(self, app: Flask, secret: str | None) -> None:
        self.client: FlaskClient = app.test_client(use_cookies=False)
        self.secret = secret

    def _headers(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.secret is not None:
            headers.setdefault("Authorization", f"Bearer {self.secret}")
        return headers

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.open(path, method=method, headers=self._headers(kwargs), **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.open("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.open("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.open("DELETE", path, **kwargs)


MakeToken = Callable[..., str]


@pytest.fixture
def make_token(session: Session) -> MakeToken:
    def factory(agent: Agent, scope: str = "write", name: str = "script") -> str:
        new = api_tokens.create_token(session, agent, name, scope)
        session.commit()
        return new.secret

    return factory


@pytest.fixture
def api(app: Flask, agent: Agent, make_token: MakeToken) -> ApiClient:
    """The agent's write token."""
    return ApiClient(app, make_token(agent, "write"))


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The one error shape, checked: returns ``{"code", "message", ...}``."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "fields"}
    assert "Traceback" not in response.get_data(as_text=True)
    return dict(error)
