"""The rate limit: per token, 429 in the error shape with Retry-After."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from helpdesk.models import Agent
from tests.api.conftest import ApiClient, MakeToken, error_of


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"API_RATE_LIMIT": "5 per minute"}


def test_rate_limit_per_token_answers_429_with_retry_after(
    app: Flask, api: ApiClient, agent: Agent, make_token: MakeToken
) -> None:
    for _ in range(5):
        assert api.get("/api/v1/tickets").status_code == 200
    limited = api.get("/api/v1/tickets")
    assert error_of(limited, 429)["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another token has its own allowance.
    assert ApiClient(app, make_token(agent, name="b")).get("/api/v1/tickets").status_code == 200
