"""The load generator of bench/chat.py: visitors and agents as python-socketio ``AsyncClient``s
on one asyncio loop, in a process of its own.

One loop instead of a thread per client keeps the generator's own CPU small (it shares the two
cores with the server under test), so the bare server's figures are a meaningful floor.

Reads one JSON object on stdin (see :class:`Plan`), prints ``PHASE <name>`` lines as it goes
(bench/chat.py samples the server's CPU time and memory at each) and ends with
``RESULT <json>``.

    {"url": ..., "visitors": 1000, "rate": 100, "seconds": 20, "chat": true,
     "agents": [{"headers": {"Cookie": ..., "User-Agent": ...}}, ...]}

With ``chat`` the visitors do what the widget does before talking (``chat.hello``, then
``chat.start`` with a first line, routed to an agent); without it (the bare server) they only
connect. Latency is visitor emit -> the agent's ``chat.message`` carrying the line's client id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import socketio

CONNECT_AT_ONCE = 50  # handshakes in flight; more only queues them in the server's accept loop


@dataclass
class Plan:
    url: str
    visitors: int
    rate: float
    seconds: float
    chat: bool
    agents: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    connected: int = 0
    connect_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    achieved_rate: float = 0.0
    load_cpu_seconds: float = 0.0


def phase(name: str) -> None:
    print(f"PHASE {name}", flush=True)


class Load:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.out = Outcome()
        self.sent_at: dict[str, float] = {}
        self.visitors: list[socketio.AsyncClient] = []
        self.agents: list[socketio.AsyncClient] = []
        self.all_delivered = asyncio.Event()
        self.expected = 0

    async def on_agent_line(self, data: Any) -> None:
        now = time.perf_counter()
        cid = data.get("client_id") if isinstance(data, dict) else None
        t0 = self.sent_at.pop(cid, None) if isinstance(cid, str) else None
        if t0 is None:
            return  # the chat's first line, or a second agent hearing the same line
        self.out.latencies_ms.append((now - t0) * 1000)
        self.out.delivered += 1
        self._check_done()

    def _check_done(self) -> None:
        if self.out.delivered >= self.expected and self.out.acked >= self.expected:
            self.all_delivered.set()

    async def connect_agent(self, headers: dict[str, str]) -> None:
        client = socketio.AsyncClient(reconnection=False)
        client.on("chat.message", self.on_agent_line, namespace="/agent")
        await client.connect(
            self.plan.url, namespaces=["/agent"], transports=["websocket"], headers=headers,
            wait_timeout=30,
        )  # fmt: skip
        if self.plan.chat:
            ack = await client.call(
                "presence.set", {"status": "online"}, namespace="/agent", timeout=60
            )
            assert ack.get("ok"), ack
        self.agents.append(client)

    async def connect_visitor(self, gate: asyncio.Semaphore) -> None:
        async with gate:
            client = socketio.AsyncClient(reconnection=False)
            try:
                await client.connect(
                    self.plan.url, namespaces=["/chat"], transports=["websocket"],
                    wait_timeout=60,
                )  # fmt: skip
                if self.plan.chat:
                    hello = await client.call("chat.hello", {}, namespace="/chat", timeout=120)
                    assert hello.get("ok"), hello
                    start = await client.call(
                        "chat.start",
                        {"client_id": uuid.uuid4().hex, "text": "bench question"},
                        namespace="/chat",
                        timeout=120,
                    )
                    if not start.get("ok"):
                        raise RuntimeError(f"start refused: {start}")
            except Exception as exc:  # counted and reported: a failed visitor is a figure
                self.out.failures.append(repr(exc)[:200])
                await client.disconnect()
                return
            self.visitors.append(client)

    async def bounded(self, connecting: Any) -> None:
        # A server at its connection cap leaves the handshake unanswered: count, don't hang.
        try:
            await asyncio.wait_for(connecting, timeout=180)
        except TimeoutError:
            self.out.failures.append("connect timed out")

    async def send(self) -> None:
        total = int(self.plan.rate * self.plan.seconds)
        self.expected = total
        if not self.visitors:
            return
        began = time.perf_counter()
        for i in range(total):
            delay = began + i / self.plan.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the offered load
            client = self.visitors[i % len(self.visitors)]
            cid = uuid.uuid4().hex
            t0 = time.perf_counter()
            self.sent_at[cid] = t0

            def acked(*_ack: Any, t0: float = t0) -> None:
                self.out.acked += 1
                self.out.ack_ms.append((time.perf_counter() - t0) * 1000)
                self._check_done()

            await client.emit(
                "chat.message", {"client_id": cid, "text": f"line {i} about my router"},
                namespace="/chat", callback=acked,
            )  # fmt: skip
            self.out.sent += 1
        self.out.achieved_rate = total / (time.perf_counter() - began)
        # Lines undelivered (or unacknowledged) by then are reported as such.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_delivered.wait(), timeout=60)

    async def run(self) -> Outcome:
        for agent in self.plan.agents:
            await self.connect_agent(agent.get("headers", {}))
        phase("connecting")
        began = time.perf_counter()
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        await asyncio.gather(*(self.bounded(self.connect_visitor(gate))
                               for _ in range(self.plan.visitors)))  # fmt: skip
        self.out.connected = len(self.visitors)
        self.out.connect_seconds = time.perf_counter() - began
        phase("connected")
        cpu0 = _cpu()
        await self.send()
        self.out.load_cpu_seconds = _cpu() - cpu0
        phase("sent")
        await asyncio.gather(*(c.disconnect() for c in [*self.visitors, *self.agents]))
        return self.out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_fd_limit() -> None:
    """One socket per client: lift the soft limit on open files to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    raise_fd_limit()
    plan = Plan(**json.loads(sys.stdin.read()))
    outcome = asyncio.run(Load(plan).run())
    print("RESULT " + json.dumps(outcome.__dict__), flush=True)


if __name__ == "__main__":
    main()
