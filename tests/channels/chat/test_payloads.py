"""Every Socket.IO event, on both namespaces, over a real `helpdesk serve` process: a payload of
another shape is answered with an error acknowledgement carrying a machine-readable ``code``,
no handler traceback is logged, and the connection goes on working (issue 13, items 19, 21).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from channels.chat.lines import MAX_TEXT
from channels.chat.namespace import ChatNamespace
from helpdesk import realtime
from helpdesk.socket_payloads import Bool, Field, Ids, Int, Shape, Str, shape_of
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess, Visitor, new_id

VISITOR_EVENTS = [
    "chat.hello", "chat.suggest", "chat.start", "chat.message", "chat.history", "chat.typing",
    "chat.read", "chat.end", "chat.rate", "chat.transcript", "chat.offline",
]  # fmt: skip
AGENT_EVENTS = [
    "presence.set", "presence.heartbeat", "join_ticket", "leave_ticket", "ticket.heartbeat",
    "ticket.typing", "chat.accept", "chat.decline", "chat.transfer", "chat.end", "chat.send",
    "chat.typing", "chat.read", "chat.history",
]  # fmt: skip


def _handler(namespace: str, event: str) -> Any:
    attr = "on_" + event.replace(".", "_")
    if namespace == "/chat":
        return getattr(ChatNamespace, attr)
    return getattr(realtime.AgentNamespace, attr, None) or realtime._agent_events[attr]


def _shape(namespace: str, event: str) -> Shape:
    shape = shape_of(_handler(namespace, event))
    assert shape is not None, event
    return shape


def test_the_lists_above_are_every_handler(site: ChatSite) -> None:
    """A handler added later is tested here too (or this fails)."""
    chat = {a for a in dir(ChatNamespace) if a.startswith("on_chat_")}
    assert chat == {"on_" + e.replace(".", "_") for e in VISITOR_EVENTS}
    agent = {
        a for a in [*dir(realtime.AgentNamespace), *realtime._agent_events]
        if a.startswith("on_") and a not in ("on_connect", "on_disconnect")
    }  # fmt: skip
    assert agent == {"on_" + e.replace(".", "_") for e in AGENT_EVENTS}


def _valid(field: Field) -> Any:
    if isinstance(field, Str):
        return field.choices[0] if field.choices else "x"
    if isinstance(field, Bool):
        return True
    if isinstance(field, Ids):
        return []
    assert isinstance(field, Int)
    return max(field.min, 1)


def _wrong(field: Field) -> Any:
    if isinstance(field, Str):
        return ["not", "text"]
    if isinstance(field, Bool):
        return "yes"
    if isinstance(field, Ids):
        return "1,2"
    return "1; drop table tickets"


def _bad_payloads(shape: Shape) -> Iterator[tuple[str, Any, str, str | None]]:
    """(what, arguments to send, expected code, expected field)."""
    yield "no data", None, "bad_payload", None
    yield "null", (None,), "bad_payload", None
    yield "a string", "hello", "bad_payload", None
    yield "a list", [1, 2], "bad_payload", None
    yield "a number", 7, "bad_payload", None
    yield "two arguments", ({}, {}), "bad_payload", None
    valid = {k: _valid(f) for k, f in shape.fields.items() if f.required}
    for key, field in shape.fields.items():
        yield f"{key} of a wrong type", {**valid, key: _wrong(field)}, "invalid", key
        if isinstance(field, Int):
            yield f"{key} too large for a column", {**valid, key: 2**63}, "invalid", key
        if field.required:
            rest = {k: v for k, v in valid.items() if k != key}
            yield f"{key} missing", rest, "missing", key
        if isinstance(field, Str) and not field.clip and not field.choices:
            yield f"{key} with a NUL", {**valid, key: "a\x00b"}, "nul_character", key


@pytest.fixture(scope="module")
def visitor(server: ServerProcess) -> Iterator[Visitor]:
    v = Visitor()
    v.connect(server.url)
    yield v
    v.disconnect()


@pytest.fixture(scope="module")
def agent(site: ChatSite, server: ServerProcess) -> Iterator[AgentSocket]:
    a = AgentSocket(site.agent("Payload Checker").email)
    a.connect(server.url, online=False)
    yield a
    a.disconnect()


def _check(sock: Any, namespace: str, event: str, server: ServerProcess) -> None:
    assert sock.sio is not None
    log_before = server.log.read_text(errors="replace")
    for what, args, code, field in _bad_payloads(_shape(namespace, event)):
        ack = sock.sio.call(event, args, namespace=namespace, timeout=10)
        assert isinstance(ack, dict), (event, what, ack)
        assert ack["ok"] is False and ack["code"] == code, (event, what, ack)
        assert ack.get("field") == field, (event, what, ack)
        assert isinstance(ack["error"], str) and ack["error"], (event, what, ack)
    logged = server.log.read_text(errors="replace")[len(log_before) :]
    assert "Traceback" not in logged and "error" not in logged.lower(), logged
    # Still connected and answering.
    if namespace == "/chat":
        assert sock.call("chat.hello", {})["ok"] is True
    else:
        assert sock.call("presence.heartbeat", {}) == {"ok": True}


@pytest.mark.parametrize("event", VISITOR_EVENTS)
def test_a_visitor_event_of_another_shape_is_refused_with_a_code(
    event: str, visitor: Visitor, server: ServerProcess
) -> None:
    _check(visitor, "/chat", event, server)


@pytest.mark.parametrize("event", AGENT_EVENTS)
def test_an_agent_event_of_another_shape_is_refused_with_a_code(
    event: str, agent: AgentSocket, server: ServerProcess
) -> None:
    _check(agent, "/agent", event, server)


def test_an_unknown_event_is_answered(visitor: Visitor, agent: AgentSocket) -> None:
    for sock, ns in ((visitor, "/chat"), (agent, "/agent")):
        assert sock.sio is not None
        ack = sock.sio.call("chat.teleport", {}, namespace=ns, timeout=10)
        assert (ack["ok"], ack["code"]) == (False, "unknown_event")


def test_errors_are_in_the_visitors_language(server: ServerProcess) -> None:
    from tests.conftest import bn

    v = Visitor(language="bn")
    v.connect(server.url)
    ack = v.call("chat.start", {"client_id": new_id(), "text": "x" * (MAX_TEXT + 1)})
    assert (ack["ok"], ack["code"], ack["field"]) == (False, "too_long", "text")
    before, _n, after = bn("A message can have at most %(n)d characters.").partition("%(n)d")
    assert ack["error"].startswith(before) and ack["error"].endswith(after), ack
    missing = v.call("chat.message", {"text": "hi"})
    assert missing["error"] == bn("%(field)s is required.").replace("%(field)s", "client_id")
    v.disconnect()


def test_a_megabyte_line_is_refused_and_the_connection_stays(
    site: ChatSite, server: ServerProcess
) -> None:
    """Item 21: a ~1 MB line closed the visitor's connection (Engine.IO's frame limit was 1 MB)
    and the widget, keeping the unacknowledged line, sent it again after every reconnect."""
    team = site.team()
    alex = AgentSocket(site.agent("Alex Long", team).email)
    alex.connect(server.url)
    v = Visitor()
    v.connect(server.url)
    started = v.start("hello", team=team.id)
    assert started["ok"], started
    ticket_id = started["chat"]["ticket_id"]
    assert alex.call("chat.accept", {"ticket_id": ticket_id})["ok"]

    megabyte = "x" * 1_000_000
    bengali = "ঋ" * 300_000  # 900 kB of UTF-8 (this client sends it \u-escaped: 1.8 MB)
    for sock, event, payload in (
        (v, "chat.message", {"client_id": new_id(), "text": megabyte}),
        (v, "chat.message", {"client_id": new_id(), "text": bengali}),
        (alex, "chat.send", {"ticket_id": ticket_id, "client_id": new_id(), "text": megabyte}),
    ):
        ack = sock.call(event, payload)
        assert (ack["ok"], ack["code"], ack["field"]) == (False, "too_long", "text"), event
        assert not ack.get("retry"), ack  # sending it again cannot help
        assert sock.sio is not None and sock.sio.connected
    # The longest line allowed goes through, on the same connections.
    said = v.say("y" * MAX_TEXT)
    assert said["ok"], said
    assert alex.send(ticket_id, "z" * MAX_TEXT)["ok"]
    assert v.events.wait("chat.message", lambda d: d["from"] == "agent")["text"] == "z" * MAX_TEXT
    v.disconnect()
    alex.disconnect()
