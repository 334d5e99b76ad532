"""Scaled out: two `helpdesk serve --no-worker` processes and a separate `helpdesk worker`,
sharing Socket.IO events through a real redis-server. The visitor is on one process, the agent on
the other, and the agent's reply is delivered by the worker process (outbox) to the visitor."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels.chat.servers import AgentSocket, ChatSite, Visitor
from tests.servers import RedisServer


@pytest.fixture(scope="module")
def redis_site(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[ChatSite]:
    env = {"HELPDESK_MESSAGE_QUEUE": redis_server.url}
    with ChatSite.on(request, db_backend, tmp_path_factory.mktemp("chat-redis"), env) as site:
        yield site


def test_two_processes_and_a_worker_share_events_through_redis(redis_site: ChatSite) -> None:
    web_a = redis_site.serve("--no-worker")
    web_b = redis_site.serve("--no-worker")
    exe = Path(sys.executable).with_name("helpdesk")
    log = (redis_site.instance / "worker.log").open("ab")
    worker = subprocess.Popen(
        [str(exe), "worker"], env=redis_site.env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        agent = redis_site.agent("Jo")
        jo = AgentSocket(agent.email)
        jo.connect(web_b.url)  # the agent on process B
        visitor = Visitor()
        visitor.connect(web_a.url)  # the visitor on process A

        ack = visitor.start("Hello from process A")
        assert ack["ok"], ack
        ticket_id = ack["chat"]["ticket_id"]
        # Routing ran on A; the offer reaches the agent connected to B.
        jo.events.wait("chat.offer", lambda d: d["ticket_id"] == ticket_id)
        assert jo.call("chat.accept", {"ticket_id": ticket_id})["ok"]
        visitor.events.wait("chat.state", lambda d: d["status"] == "active")

        line = visitor.say("a line through Redis")["line"]
        assert jo.events.wait("chat.message", lambda d: d["id"] == line["id"])["from"] == "visitor"
        visitor.emit("chat.typing", {"typing": True})
        jo.events.wait("chat.typing", lambda d: d["ticket_id"] == ticket_id and d["typing"])

        # B stores the reply; the worker process delivers it; A's visitor receives it.
        reply = jo.send(ticket_id, "answered from process B")
        assert reply["ok"]
        got = visitor.events.wait("chat.message", lambda d: d["from"] == "agent")
        assert got["text"] == "answered from process B"
        # And the worker's delivery event reaches the agent on B.
        delivery = jo.events.wait(
            "message.delivery", lambda d: d["message_id"] == reply["line"]["id"]
        )
        assert delivery["status"] == "sent"
        visitor.disconnect()
        jo.disconnect()
    finally:
        worker.terminate()
        worker.wait(timeout=10)
        log.close()
