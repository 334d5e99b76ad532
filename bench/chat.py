"""Live chat under load: concurrent visitor connections to one `helpdesk serve` process, a
sustained message rate, visitor -> agent delivery latency, server CPU per line and RSS; then the
same for a bare python-socketio server (bench/_echo_server.py) as the floor, in the same server
model (``--mode gevent``, `helpdesk serve`'s default; ``--mode threading``: gunicorn gthread +
simple-websocket).

Targets (issue 5): 1,000 concurrent visitor connections in one process on 2 cores; 100
messages/s sustained with p99 visitor -> agent delivery <= 100 ms; within 2x of the bare server.

    .venv/bin/python bench/chat.py                      # 1000 visitors, 100 msg/s for 20 s
    .venv/bin/python bench/chat.py --visitors 200 --seconds 5    # quick iteration
    .venv/bin/python bench/chat.py --mode threading

Everything runs on 127.0.0.1 and stops when done. The load generator (bench/_chat_load.py:
asyncio clients on one loop, in its own process) shares the machine's cores with the server;
its CPU time is printed too.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import os
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from bench._chat_load import Outcome, raise_fd_limit
from channels.chat.settings import configure_chat_channel
from tests.channels.chat.servers import AgentSocket, ChatSite, ServerProcess
from tests.servers import free_port, wait_http

TARGET_CONNECTIONS = 1000
TARGET_RATE = 100
TARGET_P99_MS = 100.0
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result(Outcome):
    """What the load generator reports (its ``Outcome``) plus what this side measures."""

    name: str = ""
    server_cpu_seconds: float = 0.0  # while sending
    rss_mb: float = 0.0  # peak over the run

    def pct(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        values = sorted(values)
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _family(pid: int) -> list[int]:
    """A process and its children (gunicorn's arbiter and its worker)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                pids.append(int(entry))
    return pids


def rss_mb(pid: int) -> float:
    total = 0
    for p in _family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    ticks = 0
    for p in _family(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(stat[11]) + int(stat[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_load(result: Result, url: str, server_pid: int, args: argparse.Namespace,
             *, chat: bool, agents: list[dict[str, Any]]) -> None:  # fmt: skip
    """Drive the server from bench/_chat_load.py; sample its CPU and memory meanwhile."""
    plan = {"url": url, "visitors": args.visitors, "rate": args.rate, "seconds": args.seconds,
            "chat": chat, "agents": agents}  # fmt: skip
    proc = subprocess.Popen(
        # As a module: run as a script, bench/ would come first on sys.path and its queue.py
        # would shadow the standard library's.
        [sys.executable, "-m", "bench._chat_load"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT), text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(plan))
    proc.stdin.close()
    stop = threading.Event()

    def sample_rss() -> None:
        while True:
            result.rss_mb = max(result.rss_mb, rss_mb(server_pid))
            if stop.wait(0.5):
                return

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    cpu0 = 0.0
    spy: subprocess.Popen[bytes] | None = None
    try:
        for line in proc.stdout:
            if line.startswith("PHASE connected"):
                cpu0 = cpu_seconds(server_pid)
                print(f"  {result.name}: connected, sending", file=sys.stderr)
                if args.py_spy and chat:
                    spy = _py_spy(server_pid, args)
            elif line.startswith("PHASE sent"):
                result.server_cpu_seconds = cpu_seconds(server_pid) - cpu0
            elif line.startswith("RESULT "):
                for key, value in json.loads(line[7:]).items():
                    setattr(result, key, value)
    finally:
        stop.set()
        sampler.join()
        proc.wait(timeout=120)
        if spy is not None and spy.poll() is None:
            spy.terminate()
            spy.wait(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode}); see above")


def _py_spy(server_pid: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """Sample the server while it is under load (``--py-spy FILE``: collapsed stacks)."""
    pids = _family(server_pid)
    target = pids[-1]  # gunicorn's worker when there is one, else the server itself
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        raise SystemExit("--py-spy needs py-spy in the venv: .venv/bin/pip install py-spy")
    return subprocess.Popen(
        # --gil: only the thread running Python, i.e. where the CPU goes, not who waits.
        [str(exe), "record", "--pid", str(target), "-d", str(int(args.seconds)), "-r", "100",
         "--gil", "-f", "raw", "-o", args.py_spy, "--nonblocking"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def bench_helpdesk(args: argparse.Namespace) -> Result:
    result = Result(name=f"helpdesk serve ({args.mode})")
    instance = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    site = ChatSite(
        instance=instance,
        database_url=args.database_url or f"sqlite:///{instance / 'helpdesk.sqlite3'}",
        extra_env={
            "HELPDESK_CHAT_RATE_LIMIT": "1000",
            "HELPDESK_RATELIMIT_LOGIN": "10000 per minute",
            "HELPDESK_ASYNC_MODE": args.mode,
            **({"HELPDESK_PROFILE": str(Path(args.profile).resolve())} if args.profile else {}),
            **({"HELPDESK_PROFILE_CPU_ONLY": "1"} if args.profile_cpu_only else {}),
        },
    )
    site.setup()
    capacity = args.visitors // args.agents + 5
    # Bench agents never accept: offers must not time out and move around mid-measurement.
    site.run(lambda s: configure_chat_channel(s, capacity=capacity, offer_timeout=0))
    server: ServerProcess = site.serve("--threads", str(args.threads))
    try:
        agents = []
        for i in range(args.agents):
            sock = AgentSocket(site.agent(f"Bench Agent {i}").email)
            sock.login(server.url)
            cookie = "; ".join(f"{c.name}={c.value}" for c in sock.http.cookies)
            agents.append(
                {"headers": {"Cookie": cookie, "User-Agent": str(sock.http.headers["User-Agent"])}}
            )
        run_load(result, server.url, server.pid(), args, chat=True, agents=agents)
    finally:
        site.close()
    return result


def bench_echo(args: argparse.Namespace) -> Result:
    result = Result(name=f"bare python-socketio ({args.mode})")
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-echo-")) / "echo.log"
    exe = Path(sys.executable).with_name("gunicorn")
    worker = ["-k", "gevent", "--worker-connections", str(args.threads)] if args.mode == "gevent" \
        else ["-k", "gthread", "--threads", str(args.threads),
              "--worker-connections", str(args.threads)]  # fmt: skip
    cmd = [str(exe), *worker, "-w", "1", "--timeout", "0", "-b", f"127.0.0.1:{port}",
           "bench._echo_server:app"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT),
            env={**os.environ, "BENCH_ASYNC_MODE": args.mode},
            start_new_session=True,  # its own process group: stopped with its worker below
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/socket.io/?EIO=4&transport=polling", proc, log)
        # One agent: the bare server sends every line to every agent of its one room.
        run_load(result, url, proc.pid, args, chat=False, agents=[{"headers": {}}])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # gunicorn's graceful stop can hang with 1,000 websocket threads still open: the
            # figures are taken, so end the arbiter and its worker for good.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return result


def report(results: list[Result]) -> None:
    def row(label: str, values: list[str], target: str = "") -> None:
        print(f"{label:<22}" + "".join(f"{v:>28}" for v in values) + f"   {target}")

    def ms(v: float) -> str:
        return f"{v:.1f} ms"

    print()
    row("", [r.name for r in results], "target")
    row("connections", [f"{r.connected} ({r.connect_seconds:.0f} s)" for r in results],
        f">= {TARGET_CONNECTIONS}")  # fmt: skip
    row("offered rate", [f"{r.achieved_rate:.1f}/s" for r in results], f">= {TARGET_RATE}/s")
    row("delivered", [f"{r.delivered}/{r.sent} ({r.acked} acked)" for r in results], "all")
    row("p50 / p95", [f"{r.pct(r.latencies_ms, 50):.1f} / {r.pct(r.latencies_ms, 95):.1f} ms"
                      for r in results])  # fmt: skip
    row("p99 visitor->agent", [ms(r.pct(r.latencies_ms, 99)) for r in results],
        f"<= {TARGET_P99_MS:.0f} ms")  # fmt: skip
    row("max", [ms(max(r.latencies_ms, default=float("nan"))) for r in results])
    row("ack p99 (committed)", [ms(r.pct(r.ack_ms, 99)) for r in results])
    row("server CPU per line", [ms(1000 * r.server_cpu_seconds / max(r.sent, 1))
                                for r in results])  # fmt: skip
    row("server RSS (peak)", [f"{r.rss_mb:.0f} MB" for r in results])
    row("load generator CPU", [f"{r.load_cpu_seconds:.1f} s" for r in results])
    if len(results) == 2 and results[0].latencies_ms and results[1].latencies_ms:
        floor, mine = results
        ratio = mine.pct(mine.latencies_ms, 99) / max(floor.pct(floor.latencies_ms, 99), 0.001)
        print(f"\np99 vs floor: {ratio:.1f}x (target <= 2x)")
    for r in results:
        if r.failures:
            print(f"{r.name}: {len(r.failures)} visitors failed, e.g. {r.failures[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1200,
                        help="gthread threads / gevent connections of the servers")  # fmt: skip
    parser.add_argument("--mode", choices=["threading", "gevent"], default="gevent")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--only", choices=["helpdesk", "echo"])
    parser.add_argument(
        "--py-spy", metavar="FILE", help="profile the helpdesk server while sending (py-spy)"
    )
    parser.add_argument(
        "--profile", metavar="FILE",
        help="cProfile the helpdesk server's chat.message handlers: FILE (pstats) and FILE.txt"
        " (CPU per line inside and outside the handlers)",
    )  # fmt: skip
    parser.add_argument(
        "--profile-cpu-only", action="store_true",
        help="with --profile: only the CPU figures of FILE.txt, no cProfile overhead",
    )  # fmt: skip
    args = parser.parse_args()
    raise_fd_limit()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.visitors} visitors, {args.agents} agents, {args.rate:.0f} msg/s for "
          f"{args.seconds:.0f}s, mode {args.mode}")  # fmt: skip
    results = []
    if args.only != "helpdesk":
        results.append(bench_echo(args))
    if args.only != "echo":
        results.append(bench_helpdesk(args))
    report(results)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
