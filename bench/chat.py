"""Live chat under load: concurrent visitor connections to one `helpdesk serve` process, a
sustained message rate, visitor -> agent delivery latency and server RSS; then the same for a
bare python-socketio server (bench/_echo_server.py) as the floor.

Targets (issue 5): 1,000 concurrent visitor connections in one process on 2 cores; 100
messages/s sustained with p99 visitor -> agent delivery <= 100 ms; within 2x of the bare server.

    .venv/bin/python bench/chat.py                      # 1000 visitors, 100 msg/s for 20 s
    .venv/bin/python bench/chat.py --visitors 200 --seconds 5    # quick iteration

Everything runs on 127.0.0.1 and stops when done; the load generator (python-socketio clients,
threads) runs on the same machine as the server, so figures include its CPU contention.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import os
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import socketio

from helpdesk.services.chat import configure_chat_channel
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess, _wait_http
from tests.servers import free_port

TARGET_CONNECTIONS = 1000
TARGET_RATE = 100
TARGET_P99_MS = 100.0


@dataclass
class Result:
    name: str
    connected: int = 0
    connect_seconds: float = 0.0
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    achieved_rate: float = 0.0
    rss_mb: float = 0.0

    def pct(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        values = sorted(values)
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn's arbiter + worker)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                pids.append(int(entry))
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Load:
    def __init__(self, url: str, result: Result) -> None:
        self.url = url
        self.result = result
        self.sent_at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.visitors: list[socketio.Client] = []
        self.done = threading.Event()
        self.expected = 0

    def on_agent_line(self, data: Any) -> None:
        now = time.perf_counter()
        cid = data.get("client_id") if isinstance(data, dict) else None
        with self.lock:
            t0 = self.sent_at.pop(cid, None) if cid else None
            if t0 is None:
                return
            self.result.latencies_ms.append((now - t0) * 1000)
            self.result.delivered += 1
            if self.result.delivered >= self.expected:
                self.done.set()

    def connect_visitor(self, hello: bool) -> socketio.Client | None:
        c = socketio.Client(reconnection=False)
        try:
            c.connect(self.url, namespaces=["/chat"], transports=["websocket"], wait_timeout=30)
            if hello:
                ack = c.call("chat.hello", {}, namespace="/chat", timeout=60)
                assert ack["ok"]
                start = c.call(
                    "chat.start",
                    {"client_id": uuid.uuid4().hex, "text": "bench question"},
                    namespace="/chat",
                    timeout=60,
                )
                if not start.get("ok"):
                    print("start refused:", start, file=sys.stderr)
                    c.disconnect()
                    return None
        except Exception as exc:
            print("visitor failed:", exc, file=sys.stderr)
            return None
        return c

    def connect_all(self, n: int, hello: bool) -> None:
        began = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            for c in pool.map(lambda _i: self.connect_visitor(hello), range(n)):
                if c is not None:
                    self.visitors.append(c)
        self.result.connected = len(self.visitors)
        self.result.connect_seconds = time.perf_counter() - began

    def run(self, rate: float, seconds: float) -> None:
        total = int(rate * seconds)
        self.expected = total
        if not self.visitors:
            return
        began = time.perf_counter()
        for i in range(total):
            due = began + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # pacing the offered load, not waiting for a result
            client = self.visitors[i % len(self.visitors)]
            cid = uuid.uuid4().hex
            t0 = time.perf_counter()
            with self.lock:
                self.sent_at[cid] = t0

            def acked(ack: Any = None, t0: float = t0) -> None:
                with self.lock:
                    self.result.acked += 1
                    self.result.ack_ms.append((time.perf_counter() - t0) * 1000)

            client.emit(
                "chat.message", {"client_id": cid, "text": f"line {i}"}, namespace="/chat",
                callback=acked,
            )  # fmt: skip
            self.result.sent += 1
        self.result.achieved_rate = total / (time.perf_counter() - began)
        self.done.wait(timeout=30)

    def close(self) -> None:
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda c: c.disconnect(), self.visitors))


def bench_helpdesk(args: argparse.Namespace) -> Result:
    result = Result("helpdesk serve")
    instance = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    site = ChatSite(
        instance=instance,
        database_url=f"sqlite:///{instance / 'helpdesk.sqlite3'}",
        extra_env={
            "HELPDESK_CHAT_RATE_LIMIT": "1000",
            "HELPDESK_RATELIMIT_LOGIN": "10000 per minute",
        },
    )
    site.setup()
    capacity = args.visitors // args.agents + 5
    site.run(lambda s: configure_chat_channel(s, capacity=capacity))
    server: ServerProcess = site.serve("--threads", str(args.threads))
    agents: list[AgentSocket] = []
    load = Load(server.url, result)
    try:
        for i in range(args.agents):
            agent = site.agent(f"Bench Agent {i}")
            sock = AgentSocket(agent.email)
            sock.connect(server.url)
            assert sock.sio is not None
            sock.sio.on("chat.message", load.on_agent_line, namespace="/agent")
            agents.append(sock)
        load.connect_all(args.visitors, hello=True)
        load.run(args.rate, args.seconds)
        result.rss_mb = rss_mb(server.pid())
    finally:
        load.close()
        for a in agents:
            a.disconnect()
        site.close()
    return result


def bench_echo(args: argparse.Namespace) -> Result:
    result = Result("bare python-socketio")
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-echo-")) / "echo.log"
    exe = Path(sys.executable).with_name("gunicorn")
    cmd = [str(exe), "-k", "gthread", "--threads", str(args.threads), "-w", "1",
           "--timeout", "0", "-b", f"127.0.0.1:{port}", "bench._echo_server:app"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT,
            cwd=str(Path(__file__).resolve().parent.parent),
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    agents: list[socketio.Client] = []
    load = Load(url, result)
    try:
        _wait_http(url + "/socket.io/?EIO=4&transport=polling", proc, log)
        for _i in range(args.agents):
            a = socketio.Client(reconnection=False)
            a.on("chat.message", load.on_agent_line, namespace="/agent")
            a.connect(url, namespaces=["/agent"], transports=["websocket"])
            agents.append(a)
        load.connect_all(args.visitors, hello=False)
        # Every agent hears every line here (one room); latency counts the first arrival.
        load.run(args.rate, args.seconds)
        result.rss_mb = rss_mb(proc.pid)
    finally:
        load.close()
        for a in agents:
            a.disconnect()
        proc.terminate()
        proc.wait(timeout=10)
    return result


def report(r: Result, floor: Result | None = None) -> None:
    p50, p95, p99 = (r.pct(r.latencies_ms, p) for p in (50, 95, 99))
    print(f"\n== {r.name}")
    print(f"connections   {r.connected:>8}   target >= {TARGET_CONNECTIONS}  "
          f"({r.connect_seconds:.1f}s to connect{' and start chats' if floor else ''})")
    print(f"offered rate  {r.achieved_rate:>8.1f}/s target >= {TARGET_RATE}/s")
    print(f"delivered     {r.delivered:>8}   of {r.sent} sent, {r.acked} acknowledged")
    print(f"p50 / p95     {p50:>8.1f} / {p95:.1f} ms  (visitor -> agent)")
    print(f"p99           {p99:>8.1f} ms  target <= {TARGET_P99_MS:.0f} ms")
    print(f"ack p99       {r.pct(r.ack_ms, 99):>8.1f} ms  (after commit)")
    print(f"server RSS    {r.rss_mb:>8.1f} MB")
    if floor is not None and floor.latencies_ms:
        ratio = p99 / max(floor.pct(floor.latencies_ms, 99), 0.001)
        print(f"p99 vs floor  {ratio:>8.1f}x   target <= 2x")
        print(f"RSS vs floor  {r.rss_mb / max(floor.rss_mb, 0.001):>8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1200)
    parser.add_argument("--only", choices=["helpdesk", "echo"])
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.visitors} visitors, {args.agents} agents, {args.rate:.0f} msg/s for "
          f"{args.seconds:.0f}s")  # fmt: skip
    floor = bench_echo(args) if args.only != "helpdesk" else None
    mine = bench_helpdesk(args) if args.only != "echo" else None
    if floor:
        report(floor)
    if mine:
        report(mine, floor)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
