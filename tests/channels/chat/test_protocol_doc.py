"""docs/chat-protocol.md, walked against a real `helpdesk serve` process with plain Socket.IO
clients set up as the page says: the Origin rules, how an agent authenticates, the offer's
shape, how an agent joins a chat's room, a visitor's own lines coming back, the error shape."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import socketio

from tests.channels.chat.conftest import WIDGET_ORIGIN
from tests.channels.chat.servers import PASSWORD, TIMEOUT, ChatSite, Recorder, ServerProcess, new_id


def _client(events: Recorder, namespace: str, origin: str | None) -> socketio.Client:
    options: dict[str, Any] = {"origin": origin} if origin else {"suppress_origin": True}
    sio = socketio.Client(reconnection=False, websocket_extra_options=options)
    sio.on("*", lambda event, data=None: events(event, data), namespace=namespace)
    return sio


def _sign_in(url: str, email: str) -> requests.Session:
    """Steps 1 and 2 of "Agents: /agent"."""
    http = requests.Session()
    page = http.get(url + "/login", timeout=TIMEOUT)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert token, page.text[:300]
    form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    signed = http.post(url + "/login", data=form, allow_redirects=False, timeout=TIMEOUT)
    assert signed.status_code == 302 and "session" in http.cookies
    return http


def _agent(
    url: str, http: requests.Session, events: Recorder, origin: str | None, agent: str | None = None
) -> socketio.Client:
    """Step 3: the cookie, the same User-Agent, an allowed Origin."""
    sio = _client(events, "/agent", origin)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    sio.connect(
        url,
        namespaces=["/agent"],
        transports=["websocket"],
        headers={"Cookie": cookie, "User-Agent": agent or str(http.headers["User-Agent"])},
        wait_timeout=TIMEOUT,
    )
    return sio


def test_origins_and_agent_authentication(site: ChatSite, server: ServerProcess) -> None:
    email = site.agent("Doc Agent").email
    http = _sign_in(server.url, email)
    # The helpdesk's own origin, or none: accepted.
    for origin in (server.url, None):
        sio = _agent(server.url, http, Recorder(), origin)
        beat = sio.call("presence.heartbeat", {}, namespace="/agent", timeout=TIMEOUT)
        assert beat == {"ok": True}
        sio.disconnect()
    # Another origin (even the widget's site), another User-Agent, no cookie: refused.
    for origin, agent in ((WIDGET_ORIGIN, None), ("https://evil.example", None),
                          (server.url, "another browser")):  # fmt: skip
        with pytest.raises(socketio.exceptions.ConnectionError):
            _agent(server.url, http, Recorder(), origin, agent)
    with pytest.raises(socketio.exceptions.ConnectionError):
        _agent(server.url, requests.Session(), Recorder(), server.url)
    # Visitors: the helpdesk's own origin, an allowed site or none; nothing else.
    for origin in (server.url, WIDGET_ORIGIN, None):
        v = _client(Recorder(), "/chat", origin)
        v.connect(server.url, namespaces=["/chat"], transports=["websocket"],
                  auth={"token": None, "language": "en"}, wait_timeout=TIMEOUT)  # fmt: skip
        v.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        _client(Recorder(), "/chat", "https://evil.example").connect(
            server.url, namespaces=["/chat"], transports=["websocket"], wait_timeout=TIMEOUT
        )


def test_the_documented_chat_flow(site: ChatSite, server: ServerProcess) -> None:
    team = site.team()
    email = site.agent("Doc Alex", team).email
    agent_events = Recorder()
    agent = _agent(server.url, _sign_in(server.url, email), agent_events, server.url)

    def agent_call(event: str, data: Any) -> Any:
        return agent.call(event, data, namespace="/agent", timeout=TIMEOUT)

    assert agent_call("presence.set", {"status": "online"}) == {"ok": True, "status": "online"}

    visitor_events = Recorder()
    visitor = _client(visitor_events, "/chat", WIDGET_ORIGIN)
    visitor.connect(server.url, namespaces=["/chat"], transports=["websocket"],
                    auth={"token": None, "language": "en"}, wait_timeout=TIMEOUT)  # fmt: skip

    def visitor_call(event: str, data: Any) -> Any:
        return visitor.call(event, data, namespace="/chat", timeout=TIMEOUT)

    hello = visitor_call("chat.hello", {"team": team.id})
    assert hello["ok"] and hello["token"] and hello["available"] is True
    assert hello["settings"]["max_text"] == 5000
    started = visitor_call("chat.start", {"client_id": new_id(), "text": "Hello?",
                                          "name": "Rina", "team": team.id})  # fmt: skip
    assert started["ok"], started
    ticket_id = started["chat"]["ticket_id"]

    # The offer: a string for the customer.
    offer = agent_events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id)
    assert set(offer) == {"ticket_id", "number", "subject", "customer"}
    assert offer["customer"] == "Rina" and offer["number"] == started["chat"]["number"]

    # Joining the chat's room with chat.history: the visitor's typing reaches the agent.
    history = agent_call("chat.history", {"ticket_id": ticket_id})
    assert history["ok"] and [m["text"] for m in history["messages"]] == ["Hello?"]
    visitor.emit("chat.typing", {"typing": True}, namespace="/chat")
    assert agent_events.wait("chat.typing", lambda d: d["ticket_id"] == ticket_id)["typing"]

    # A visitor's own line comes back on the same connection: same id as the acknowledgement.
    ack = visitor_call("chat.message", {"client_id": new_id(), "text": "Still there?"})
    assert ack["ok"]
    echo = visitor_events.wait("chat.message", lambda d: d["client_id"] == ack["line"]["client_id"])
    assert echo["id"] == ack["line"]["id"]

    # The agent's line: acknowledged, heard back in the room, delivered to the visitor.
    sent = agent_call("chat.send", {"ticket_id": ticket_id, "client_id": new_id(), "text": "Yes!"})
    assert sent["ok"]
    assert agent_events.wait("chat.message", lambda d: d["id"] == sent["line"]["id"])
    assert visitor_events.wait("chat.message", lambda d: d["from"] == "agent")["text"] == "Yes!"

    # The error shape.
    refused = agent_call("chat.send", {"ticket_id": ticket_id, "client_id": new_id()})
    assert refused == {
        "ok": False, "code": "missing", "field": "text", "error": "text is required."
    }  # fmt: skip
    nobody = agent_call("chat.accept", {"ticket_id": 2**31 - 1})
    assert (nobody["ok"], nobody["code"]) == (False, "not_found") and nobody["error"]
    visitor.disconnect()
    agent.disconnect()
