"""Chats in the REST API (read-only): a chat made through the chat's real services (start,
offer, accept, lines both ways, end) reads back as the agent saw it, Bengali included; the
filters and pages; who may read it (as in the agent UI: every active agent)."""

from __future__ import annotations

import uuid

from flask import Flask
from sqlalchemy.orm import Session

from channels.chat.lifecycle import end_chat, start_chat
from channels.chat.lines import agent_message, check_upload, visitor_message
from channels.chat.models import ChatSession, ChatStatus
from channels.chat.routing import accept
from channels.chat.settings import chat_settings
from channels.chat.tokens import new_visitor
from helpdesk.models import Agent, AgentRole
from helpdesk.services.agents import create_agent, set_agent_active
from helpdesk.services.presence import agent_connected, set_presence
from tests.api.conftest import ApiClient, MakeToken, error_of
from tests.conftest import PASSWORD


def _online(session: Session, agent: Agent, status: str = "online") -> None:
    agent_connected(session, agent, f"sid-{agent.id}")
    set_presence(session, agent, status)
    session.commit()


def _start(session: Session, text: str, **kwargs: object) -> ChatSession:
    visitor, _token = new_visitor()
    chat = start_chat(
        session, visitor_id=visitor, text=text, client_id=uuid.uuid4().hex,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    session.commit()
    return chat


def _line(session: Session, chat: ChatSession, agent: Agent, text: str, **kw: object) -> None:
    agent_message(session, chat, agent, text=text, client_id=uuid.uuid4().hex, **kw)  # type: ignore[arg-type]
    session.commit()


def test_a_chat_reads_as_the_agent_saw_it(
    app: Flask, api: ApiClient, session: Session, agent: Agent
) -> None:
    _online(session, agent)
    chat = _start(
        session,
        "আমার অর্ডার কোথায়?",
        name="রহিম উদ্দিন",
        email="rahim@example.com",
        language="bn",
        page_url="https://shop.example/orders/42",
    )
    assert chat.status is ChatStatus.OFFERED and chat.agent_id == agent.id
    accept(session, chat, agent)
    session.commit()
    _line(session, chat, agent, "দেখছি, এক মিনিট।")
    receipt = check_upload(chat_settings(session), "রসিদ.txt", "text/plain", "টাকা: ৫০০".encode())
    _line(session, chat, agent, "", attachments=[receipt])
    visitor_message(session, chat, text="ধন্যবাদ", client_id=uuid.uuid4().hex)
    end_chat(session, chat, agent)
    session.commit()

    response = api.get(f"/api/v1/chats/{chat.id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["status"], body["open"]) == ("ended", False)
    assert body["number"] == chat.ticket.number and body["ticket_id"] == chat.ticket_id
    assert body["page_url"] == "https://shop.example/orders/42" and body["language"] == "bn"
    assert body["visitor"]["id"] == chat.visitor_id
    assert body["visitor"]["customer"]["name"] == "রহিম উদ্দিন"
    assert body["visitor"]["customer"]["email"] == "rahim@example.com"
    assert body["agent"] == {"id": agent.id, "name": agent.name, "email": agent.email}
    for moment in ("started_at", "offered_at", "accepted_at", "ended_at"):
        assert body[moment] is not None, moment
    lines = [(line["from"], line["text"]) for line in body["lines"]]
    assert lines == [
        ("visitor", "আমার অর্ডার কোথায়?"),
        ("agent", "দেখছি, এক মিনিট।"),
        ("agent", "রসিদ.txt"),
        ("visitor", "ধন্যবাদ"),
    ]
    assert body["lines"][1]["author"] == agent.name
    [attachment] = body["lines"][2]["attachments"]
    assert attachment["filename"] == "রসিদ.txt"
    download = api.get(attachment["url"])
    assert download.data == "টাকা: ৫০০".encode()
    download.close()
    # The same chat in the list, and the ticket it is.
    listed = api.get(f"/api/v1/chats?ticket={chat.ticket.number}").get_json()["chats"]
    assert [c["id"] for c in listed] == [chat.id] and "lines" not in listed[0]
    assert api.get(f"/api/v1/tickets/{body['number']}").get_json()["channel"] == "chat"


def test_filters_pages_and_errors(
    app: Flask, api: ApiClient, session: Session, agent: Agent
) -> None:
    _online(session, agent)
    done = _start(session, "first")
    accept(session, done, agent)
    end_chat(session, done, agent)
    session.commit()
    talking = _start(session, "second")
    accept(session, talking, agent)
    session.commit()
    set_presence(session, agent, "away")
    session.commit()
    waiting = _start(session, "third")
    assert waiting.status is ChatStatus.WAITING and waiting.agent_id is None

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/v1/chats{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return [c["id"] for c in response.get_json()["chats"]]

    assert ids("") == [waiting.id, talking.id, done.id]
    assert ids("?open=true") == [waiting.id, talking.id]
    assert ids("?open=false") == [done.id]
    assert ids("?status=active") == [talking.id]
    assert ids("?agent=me") == [talking.id, done.id]
    assert ids(f"?agent={agent.id}&open=true") == [talking.id]
    assert ids("?agent=none") == [waiting.id]
    assert ids(f"?customer={waiting.customer_id}") == [waiting.id]
    assert ids("?ticket=999999") == []
    seen: list[int] = []
    cursor = None
    while True:
        page = api.get("/api/v1/chats?limit=1" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [c["id"] for c in page["chats"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [waiting.id, talking.id, done.id]

    bad = error_of(api.get("/api/v1/chats?status=lost&agent=someone"), 422)
    assert set(bad["fields"]) == {"status", "agent"}
    assert error_of(api.get("/api/v1/chats?cursor=bogus"), 400)["code"] == "invalid_cursor"
    assert error_of(api.get("/api/v1/chats/999999"), 404)["code"] == "not_found"
    # Read-only: nothing to write.
    assert error_of(api.post("/api/v1/chats", json={}), 405)["code"] == "method_not_allowed"
    assert error_of(api.patch(f"/api/v1/chats/{talking.id}", json={}), 405)


def test_who_reads_chats_is_who_sees_them_in_the_agent_ui(
    app: Flask, session: Session, agent: Agent, admin: Agent, make_token: MakeToken
) -> None:
    _online(session, agent)
    chat = _start(session, "hello")
    other = create_agent(session, "other@example.com", "Olu Other", PASSWORD, AgentRole.AGENT)
    session.commit()
    # Any active agent opens any chat's ticket in the UI: so does their token, a read one too.
    reader = ApiClient(app, make_token(other, "read"))
    assert reader.get(f"/api/v1/chats/{chat.id}").get_json()["lines"][0]["text"] == "hello"
    assert [c["id"] for c in reader.get("/api/v1/chats").get_json()["chats"]] == [chat.id]
    # A deactivated agent sees nothing: their token is refused.
    set_agent_active(session, admin, other, False)
    session.commit()
    assert error_of(reader.get(f"/api/v1/chats/{chat.id}"), 401)["code"] == "unauthorized"
    assert error_of(reader.get("/api/v1/chats"), 401)
    assert error_of(ApiClient(app, None).get("/api/v1/chats"), 401)
