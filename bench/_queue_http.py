"""The agent queue through a real server (``bench/queue.py --http``).

Starts `helpdesk serve` as a process (gunicorn's gevent worker, the worker loop in it: what an
installation runs) on a copy of the seeded database (SQLite) or on a throwaway PostgreSQL
cluster loaded with the same rows, signs ``--clients`` agents' browsers in, and has them ask
for queue pages in a realistic mix (the busy views' first pages and live refreshes most, deeper
pages, filters, tags and sorts less) as fast as the server answers, each client waiting for its
answer before asking again. Prints p50/p95/p99 next to the target and the server's CPU per
request.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, insert, inspect, select, text

from bench import _seed

TARGET_MS = 50.0
IDLE_SECONDS = 5.0

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@dataclass(frozen=True)
class Ask:
    """One kind of page an agent asks for, and how often (relative weight)."""

    group: str
    weight: int
    params: dict[str, str]
    deep: str | None = None  # as bench/queue.py's Case.deep


def mix(agent_ids: list[int], team_ids: list[int]) -> list[Ask]:
    """What agents ask for, by weight: the queue they watch (first pages and the live refresh
    its socket triggers), their own and the unassigned tickets, then filters, tags, sorts and
    deeper pages."""
    busy, mid, team = agent_ids[0], agent_ids[len(agent_ids) // 2], team_ids[1]
    return [
        Ask("first page", 14, {}),
        Ask("live refresh", 14, {"partial": "1"}),
        Ask("first page", 8, {"view": "mine"}),
        Ask("live refresh", 4, {"view": "mine", "partial": "1"}),
        Ask("first page", 6, {"view": "unassigned"}),
        Ask("first page", 2, {"view": "pending"}),
        Ask("first page", 2, {"view": "resolved"}),
        Ask("first page", 1, {"view": "all"}),
        Ask("deeper page", 4, {}, "follow"),
        Ask("deeper page", 2, {}, "middle"),
        Ask("deeper page", 1, {"view": "mine"}, "middle"),
        Ask("deeper page", 1, {"view": "all"}, "middle"),
        Ask("filter", 3, {"team": str(team)}),
        Ask("filter", 2, {"assignee": str(mid)}),
        Ask("filter", 1, {"view": "all", "assignee": str(busy)}),
        Ask("filter", 2, {"status": "new"}),
        Ask("filter", 2, {"channel": "chat"}),
        Ask("filter", 2, {"priority": "4"}),
        Ask("filter", 1, {"team": str(team), "channel": "email", "priority": "3"}),
        Ask("tag", 2, {"tag": _seed.POPULAR_TAG}),
        Ask("tag", 1, {"tag": _seed.MEDIUM_TAG}),
        Ask("tag", 1, {"tag": _seed.UNCOMMON_TAG}),
        Ask("tag", 1, {"tag": _seed.RARE_TAG}),
        Ask("sort", 2, {"sort": "priority"}),
        Ask("sort", 1, {"sort": "oldest"}),
        Ask("sort", 1, {"sort": "created"}),
    ]


@dataclass
class Sample:
    group: str
    ms: float


@dataclass
class Run:
    database: str
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0
    database_cpu: float = 0.0  # PostgreSQL's processes over the timed part (0 for SQLite)
    idle_cpu_per_second: float = 0.0  # the server's own background work, nobody asking
    errors: list[str] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float = 0.0
    nice: int | None = None

    def times(self, group: str | None = None) -> list[float]:
        return [s.ms for s in self.samples if group is None or s.group == group]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- the database ------------------------------------------------------------------------------


def sqlite_copy(info: _seed.SeedInfo, folder: Path) -> str:
    """A copy of the seeded file for the server (its worker may write; the cache stays as is)."""
    target = folder / "helpdesk.sqlite3"
    shutil.copyfile(info.path, target)
    return f"sqlite:///{target}"


def load_postgres(info: _seed.SeedInfo, url: str, instance: Path) -> None:
    """The seeded rows in a migrated PostgreSQL database: ``helpdesk init``'s schema, every
    table copied from the SQLite file through SQLAlchemy Core (so values pass the same column
    types), sequences moved past the copied ids, then ANALYZE."""
    import helpdesk.models  # noqa: F401  (every table on Base.metadata)
    from helpdesk import create_app
    from helpdesk.db import Base
    from helpdesk.migrate import upgrade
    from helpdesk.models.search import is_search_table

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "WORKER_ENABLED": False})
    upgrade(app)
    source = create_engine(f"sqlite:///{info.path}")
    target = create_engine(url)
    present = set(inspect(source).get_table_names())
    tables = [
        t
        for t in Base.metadata.sorted_tables
        if t.name in present and not is_search_table(t.name) and t.name != "alembic_version"
    ]
    started = time.perf_counter()
    with target.begin() as dst:
        names = ", ".join(f'"{t.name}"' for t in tables)
        dst.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        with source.connect() as src:
            for table in tables:
                result = src.execution_options(yield_per=20_000).execute(select(table))
                rows = 0
                for chunk in result.mappings().partitions():
                    dst.execute(insert(table), [dict(r) for r in chunk])
                    rows += len(chunk)
                pk = list(table.primary_key.columns)
                serial = (
                    len(pk) == 1
                    and pk[0].autoincrement in (True, "auto")
                    and str(pk[0].type).upper().startswith(("INTEGER", "BIGINT"))
                )
                if rows and serial:
                    column = pk[0].name
                    dst.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'),"
                            f" (SELECT max({column}) FROM {table.name}))"
                        )
                    )
    with target.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    source.dispose()
    target.dispose()
    print(f"postgresql: copied {len(tables)} tables in {time.perf_counter() - started:.0f} s")


@contextlib.contextmanager
def database(kind: str, info: _seed.SeedInfo, folder: Path) -> Iterator[tuple[str, int | None]]:
    """The database's URL, and for PostgreSQL the pid its processes descend from (their CPU is
    the page's too, and not in the server's)."""
    if kind == "sqlite":
        yield sqlite_copy(info, folder), None
        return
    from tests.servers import PostgresCluster

    with PostgresCluster() as cluster:
        url = cluster.create_database("bench_queue")
        load_postgres(info, url, folder / "load-instance")
        yield url, cluster.proc.pid if cluster.proc is not None else None


# --- the clients -------------------------------------------------------------------------------


def sign_in(base: str, info: _seed.SeedInfo) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=30)
    match = _CSRF.search(page.text)
    if match is None:
        raise SystemExit("no CSRF token on /login")
    token = match.group(1) or match.group(2)
    resp = http.post(
        f"{base}/login",
        data={"email": info.agent_email, "password": info.password, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    if resp.status_code != 302:
        raise SystemExit(f"sign-in over HTTP failed: HTTP {resp.status_code}")
    return http


def client_loop(
    http: requests.Session,
    base: str,
    urls: list[tuple[Ask, str]],
    count: int,
    seed: int,
    start: threading.Barrier,
    run: Run,
    lock: threading.Lock,
) -> None:
    rng = random.Random(seed)
    weights = [a.weight for a, _ in urls]
    start.wait()
    for _ in range(count):
        ask, url = rng.choices(urls, weights=weights)[0]
        began = time.perf_counter()
        resp = http.get(base + url, timeout=60)
        body = resp.content
        elapsed = (time.perf_counter() - began) * 1000
        with lock:
            if resp.status_code != 200 or b"<table" not in body:
                run.errors.append(f"HTTP {resp.status_code} for {url}")
            run.samples.append(Sample(ask.group, elapsed))


def family(pid: int) -> set[int]:
    """A process and its descendants (the arbiter, its web worker, the mail worker)."""
    pids, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == parent and int(entry) not in pids:
                    pids.add(int(entry))
                    frontier.append(int(entry))
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants."""
    ticks = 0
    for p in family(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_http(
    kind: str,
    info: _seed.SeedInfo,
    urls: list[tuple[Ask, str]],
    *,
    clients: int,
    requests_per_client: int,
    statements: Any,
    py_spy: str | None = None,
    nice: int | None = None,
) -> Run:
    """One measured run against `helpdesk serve` on ``kind`` (sqlite or postgresql)."""
    from tests.servers import free_port, helpdesk_serve

    run = Run(kind, nice=nice)
    with tempfile.TemporaryDirectory(prefix=f"bench-queue-http-{kind}-") as tmp:
        folder = Path(tmp)
        with database(kind, info, folder) as (url, db_pid):
            if statements is not None:
                statements(url, folder / "count-instance")
            instance = folder / "instance"
            instance.mkdir()
            port = free_port()
            env = {
                **os.environ,
                "HELPDESK_DATABASE_URL": url,
                "HELPDESK_INSTANCE_PATH": str(instance),
                "HELPDESK_SECRET_KEY": "bench-queue-http",
                "HELPDESK_RATELIMIT_LOGIN": "1000 per minute",
                "HELPDESK_BASE_URL": f"http://127.0.0.1:{port}",
            }
            env.pop("HELPDESK_ASYNC_MODE", None)  # the default server: gevent
            base = f"http://127.0.0.1:{port}"
            with helpdesk_serve(env, port, folder / "serve.log") as proc:
                sessions = [sign_in(base, info) for _ in range(clients)]
                for http in sessions:  # every kind of page once per connection, untimed
                    for _ask, path in urls:
                        http.get(base + path, timeout=60)
                lock = threading.Lock()
                barrier = threading.Barrier(clients + 1)
                threads = [
                    threading.Thread(
                        target=client_loop,
                        args=(http, base, urls, requests_per_client, i, barrier, run, lock),
                    )
                    for i, http in enumerate(sessions)
                ]
                for t in threads:
                    t.start()
                if nice is not None:
                    # A busy shared machine: give the server (arbiter, web worker, mail
                    # worker), its PostgreSQL and these clients a dedicated machine's share.
                    for pid in family(os.getpid()):
                        os.setpriority(os.PRIO_PROCESS, pid, nice)
                # What the server spends with nobody asking (its worker loop's periodic tasks,
                # the mail worker process): charged per second, not per page, below.
                idle0, idle_began = cpu_seconds(proc.pid), time.perf_counter()
                time.sleep(IDLE_SECONDS)
                run.idle_cpu_per_second = (cpu_seconds(proc.pid) - idle0) / (
                    time.perf_counter() - idle_began
                )
                spy = start_py_spy(proc.pid, py_spy, kind) if py_spy else None
                run.load_before = os.getloadavg()[0]
                cpu0 = cpu_seconds(proc.pid)
                db_cpu0 = cpu_seconds(db_pid) if db_pid else 0.0
                began = time.perf_counter()
                barrier.wait()
                for t in threads:
                    t.join()
                run.seconds = time.perf_counter() - began
                run.server_cpu = cpu_seconds(proc.pid) - cpu0
                run.database_cpu = cpu_seconds(db_pid) - db_cpu0 if db_pid else 0.0
                run.load_after = os.getloadavg()[0]
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
                for http in sessions:  # open keep-alive connections hold up a graceful stop
                    http.close()
    return run


def start_py_spy(server_pid: int, prefix: str, kind: str) -> subprocess.Popen[bytes]:
    """py-spy sampling gunicorn's web worker (the server's child) for the timed part, written
    as collapsed stacks to ``<prefix>-<database>.txt``."""
    children = [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit()
        and Path(f"/proc/{entry}/stat").exists()
        and int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == server_pid
    ]
    if not children:
        raise SystemExit("py-spy: no web worker process found")
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = f"{prefix}-{kind}.txt"
    print(f"py-spy: sampling pid {min(children)} into {out}")
    return subprocess.Popen(
        [exe, "record", "-p", str(min(children)), "-r", "250", "-f", "raw", "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def print_run(run: Run, clients: int) -> bool:
    times = run.times()
    n = len(times)
    p95 = pct(times, 95)
    ok = p95 <= TARGET_MS and not run.errors
    print(
        f"\n{run.database}: {n} requests from {clients} concurrent clients in {run.seconds:.1f} s"
        f" ({n / run.seconds:.0f}/s); load average {run.load_before:.2f} -> {run.load_after:.2f}"
    )
    print(
        f"  p50 {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms   p99 {pct(times, 99):6.1f}"
        f" ms   max {max(times):6.1f} ms   target p95 <= {TARGET_MS:.0f} ms"
        f"   {'PASS' if ok else 'FAIL'}"
    )
    print(f"  server CPU per request {run.server_cpu / n * 1000:.1f} ms (all its processes)")
    background = run.idle_cpu_per_second * run.seconds
    print(
        f"  of which pages {(run.server_cpu - background) / n * 1000:.1f} ms (less its idle"
        f" background work: {run.idle_cpu_per_second * 1000:.0f} ms of CPU per second)"
    )
    if run.database_cpu:
        print(f"  PostgreSQL's CPU per request {run.database_cpu / n * 1000:.1f} ms (its backends)")
    cores = os.cpu_count() or 1
    if run.nice is not None:
        print(f"  (server and clients at nice {run.nice}, load average {run.load_before:.1f})")
    elif run.load_before > cores / 2:
        print(
            f"  (other work was running: load average {run.load_before:.1f} on {cores} cores;"
            " latency then measures the queue for a core, not the page. Re-run quiet.)"
        )
    for group in dict.fromkeys(s.group for s in run.samples):
        g = run.times(group)
        print(
            f"    {group:<13} n={len(g):<5} p50 {statistics.median(g):6.1f}"
            f"  p95 {pct(g, 95):6.1f}  max {max(g):6.1f}"
        )
    if run.errors:
        print(f"  {len(run.errors)} errors, first: {run.errors[0]}")
    return ok
