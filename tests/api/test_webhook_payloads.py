"""What a delivery's ``data`` holds for the objects of kb/ and channels/chat: a KB article, a KB
category and a chat, each exactly as the API's ``GET`` returns it at that moment (a deleted
category: the event's own data). Webhooks registered through the API, a real HTTP receiver
checking the signature with its own HMAC code, and the fan-out run as the worker runs it: in a
thread of its own, with an app context and no request."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from channels.chat.lifecycle import end_chat, start_chat
from channels.chat.lines import agent_message
from channels.chat.routing import accept
from channels.chat.tokens import new_visitor
from helpdesk.models import Agent
from helpdesk.services.presence import agent_connected, set_presence
from tests.api.conftest import ApiClient, MakeToken
from tests.helpdesk.webhook_receiver import Received, Receiver, signature_ok
from tests.helpdesk.webhook_receiver import pump as shared_pump


@pytest.fixture
def app_config(receiver: Receiver) -> dict[str, Any]:
    # The worker builds the portal's article URL from BASE_URL; the test client's requests
    # come to http://localhost, so GET's URL and the delivery's agree.
    return {"WEBHOOK_ALLOWED_HOSTS": receiver.host, "BASE_URL": "http://localhost"}


def pump(app: Flask) -> int:
    return shared_pump(app, own_thread=True)


def _hook(api: ApiClient, receiver: Receiver, events: list[str]) -> str:
    made = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": events})
    assert made.status_code == 201, made.get_data(as_text=True)
    return str(made.get_json()["secret"])


def _delivered(app: Flask, receiver: Receiver, secret: str, count: int) -> list[Received]:
    """Pump, and the ``count`` requests the receiver got since the last call (signed)."""
    before = len(receiver.requests)
    assert pump(app) == count
    got = receiver.wait_for(before + count)[before:]
    assert all(signature_ok(secret, r.headers, r.body) for r in got)
    return got


def test_an_article_is_delivered_as_get_returns_it(
    app: Flask, admin: Agent, make_token: MakeToken, receiver: Receiver
) -> None:
    api = ApiClient(app, make_token(admin, "admin"))
    secret = _hook(api, receiver, ["article.created", "article.updated"])
    category = api.post("/api/v1/kb/categories", json={"name": "Billing", "names": {"bn": "বিল"}})
    created = api.post(
        "/api/v1/kb/articles",
        json={
            "title": "বিকাশে টাকা ফেরত",
            "body": "**ফেরত** আসতে ৩ দিন লাগে।",
            "language": "bn",
            "category": category.get_json()["id"],
            "tags": ["ফেরত"],
            "status": "published",
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    article_id = created.get_json()["id"]
    (request,) = _delivered(app, receiver, secret, 1)
    body = request.json
    assert body["event"] == "article.created"
    get = api.get(f"/api/v1/kb/articles/{article_id}").get_json()
    assert body["data"] == get
    # Published and public: the portal's address, built by the worker from BASE_URL.
    assert get["url"].startswith("http://localhost/") and get["author"]["id"] == admin.id
    assert body["details"]["title"] == "বিকাশে টাকা ফেরত"

    changed = api.patch(f"/api/v1/kb/articles/{article_id}", json={"tags": ["ফেরত", "বিকাশ"]})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    (request,) = _delivered(app, receiver, secret, 1)
    assert request.json["event"] == "article.updated"
    assert request.json["data"] == api.get(f"/api/v1/kb/articles/{article_id}").get_json()
    assert request.json["data"]["tags"] == ["ফেরত", "বিকাশ"]
    assert request.json["details"] == {"fields": ["tags"]}


def test_a_category_is_delivered_as_get_returns_it_and_its_deletion_as_the_event_says(
    app: Flask, admin: Agent, make_token: MakeToken, receiver: Receiver
) -> None:
    api = ApiClient(app, make_token(admin, "admin"))
    secret = _hook(api, receiver, ["category.created", "category.updated", "category.deleted"])
    returns = api.post("/api/v1/kb/categories", json={"name": "Returns", "names": {"bn": "ফেরত"}})
    assert returns.status_code == 201, returns.get_data(as_text=True)
    returns_id = returns.get_json()["id"]
    (request,) = _delivered(app, receiver, secret, 1)
    assert request.json["event"] == "category.created"
    assert request.json["data"] == api.get(f"/api/v1/kb/categories/{returns_id}").get_json()
    assert request.json["data"]["names"] == {"bn": "ফেরত"}

    api.post("/api/v1/kb/articles", json={"title": "Send it back", "category": returns_id})
    renamed = api.patch(f"/api/v1/kb/categories/{returns_id}", json={"name": "Returns & refunds"})
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    (request,) = _delivered(app, receiver, secret, 1)
    assert request.json["event"] == "category.updated"
    get = api.get(f"/api/v1/kb/categories/{returns_id}").get_json()
    assert request.json["data"] == get and get["article_count"] == 1
    assert request.json["details"] == {
        "changes": {"name": {"from": "Returns", "to": "Returns & refunds"}}
    }

    other = api.post("/api/v1/kb/categories", json={"name": "Orders"}).get_json()["id"]
    _delivered(app, receiver, secret, 1)  # its category.created
    gone = api.delete(f"/api/v1/kb/categories/{returns_id}?move_to={other}")
    assert gone.status_code == 204
    assert api.get(f"/api/v1/kb/categories/{returns_id}").status_code == 404
    (request,) = _delivered(app, receiver, secret, 1)
    body = request.json
    assert body["event"] == "category.deleted"
    details = {
        "name": "Returns & refunds",
        "names": {"bn": "ফেরত"},
        "slug": "returns",
        "moved_to_id": other,
        "articles": 1,
    }
    assert body["details"] == details
    assert body["data"] == {"type": "category", "id": returns_id, **details}


def test_a_chat_is_delivered_as_get_returns_it(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_token: MakeToken,
    receiver: Receiver,
) -> None:  # fmt: skip
    api = ApiClient(app, make_token(admin, "admin"))
    secret = _hook(api, receiver, ["chat.accepted", "chat.ended"])
    agent_connected(session, agent, "sid-agent")
    set_presence(session, agent, "online")
    visitor, _token = new_visitor()
    chat = start_chat(
        session, visitor_id=visitor, text="আমার অর্ডার কোথায়?", client_id=uuid.uuid4().hex,
        name="রহিম", email="rahim@example.com", page_url="https://shop.example/orders/42",
    )  # fmt: skip
    session.commit()
    accept(session, chat, agent)
    session.commit()
    (request,) = _delivered(app, receiver, secret, 1)
    body = request.json
    assert body["event"] == "chat.accepted" and body["actor"] == {"type": "agent", "id": agent.id}
    get = api.get(f"/api/v1/chats/{chat.id}").get_json()
    assert body["data"] == get
    assert (get["status"], get["agent"]["id"], get["number"]) == (
        "active", agent.id, chat.ticket.number
    )  # fmt: skip

    agent_message(session, chat, agent, text="দেখছি।", client_id=uuid.uuid4().hex)
    end_chat(session, chat, agent)
    session.commit()
    (request,) = _delivered(app, receiver, secret, 1)
    assert request.json["event"] == "chat.ended"
    get = api.get(f"/api/v1/chats/{chat.id}").get_json()
    assert request.json["data"] == get
    assert [line["text"] for line in get["lines"]] == ["আমার অর্ডার কোথায়?", "দেখছি।"]
