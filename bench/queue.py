"""Agent queue at a million tickets: first page, deep keyset pages and every filter.

Seeds N tickets (default 1,000,000, about 2.1M messages) into a cached SQLite file under
bench/results/, then times ``GET /agent/queue?...`` through the real Flask view (test client,
signed-in agent, app from ``helpdesk.create_app``) and prints p50/p95 per case against the
target, with the SQL statements each request runs. ``--explain`` prints SQLite's query plan of
each case's main query, to check it is an index walk and not a sort of a big range.

    .venv/bin/python bench/queue.py --n 50000          # quick iteration
    .venv/bin/python bench/queue.py                    # the 1M figure in docs/performance.md
    .venv/bin/python bench/queue.py --explain --only tag

``--http`` measures the same page through a real server instead: `helpdesk serve` (gunicorn,
gevent) on a 100,000-ticket database (SQLite, then PostgreSQL loaded with the same rows),
``--clients`` signed-in agents asking for a mix of views, filters, sorts and pages at once
(bench/_queue_http.py); it prints p50/p95/p99 against the same target and the statements one
page sends on each database.

    .venv/bin/python bench/queue.py --http                      # both databases, 2 clients
    .venv/bin/python bench/queue.py --http --database sqlite --requests 300
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/queue.py`, Python puts bench/ first on sys.path, where this file would
# shadow the standard library's `queue` module for every library imported below (logging,
# engineio ...). Put the project root there instead; `python -m bench.queue` works the same.
if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import json
import re
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from bench import _seed
from helpdesk import create_app
from helpdesk.db import Base
from helpdesk.extensions import db
from helpdesk.models import Agent, Team
from helpdesk.services.queue import (
    QueueFilter,
    _apply_sort,
    _base_query,
    _cursor_for,
    queue_page,
)
from helpdesk.web import agent as agent_views

TARGET_MS = 50.0
FOLLOW_PAGES = 200


@dataclass
class Case:
    name: str
    params: dict[str, str]
    # None: first page; "follow": the page after following the cursor FOLLOW_PAGES times;
    # "middle": the page after the ticket halfway down this view's order.
    deep: str | None = None


@dataclass
class Result:
    case: Case
    url: str
    times_ms: list[float]
    cpu_ms: list[float]
    service_ms: list[float]
    statements: list[tuple[str, Any]]
    rows: int
    plan: list[str] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        return _pct(self.times_ms, 19)

    @property
    def selects(self) -> int:
        return sum(1 for s, _ in self.statements if s.lstrip().upper().startswith("SELECT"))

    @property
    def passed(self) -> bool:
        return self.p95 <= TARGET_MS

    @property
    def plan_summary(self) -> str:
        used = []
        for line in self.plan:
            m = re.search(r"(?:SCAN|SEARCH) (\w+).*?(?:INDEX (\w+)|PRIMARY KEY)", line)
            if m and m.group(1) == "tickets":
                used.append(m.group(2) or "pk")
            elif re.match(r"\s*SCAN tickets\s*$", line):
                used.append("rowid walk")
        sort = any("TEMP B-TREE FOR ORDER BY" in line for line in self.plan)
        return ",".join(used) + (" +SORT" if sort else "")


def cases(agent_ids: list[int], team_ids: list[int]) -> list[Case]:
    busy, mid = agent_ids[0], agent_ids[len(agent_ids) // 2]
    team = team_ids[1]
    return [
        Case("open: first page", {}),
        Case(f"open: page {FOLLOW_PAGES + 1} (cursor followed)", {}, "follow"),
        Case("open: middle cursor", {}, "middle"),
        Case("open: partial rows (live refresh)", {"partial": "1"}),
        Case("all: first page", {"view": "all"}),
        Case("all: middle cursor", {"view": "all"}, "middle"),
        Case("mine (busiest agent)", {"view": "mine"}),
        Case("mine: middle cursor", {"view": "mine"}, "middle"),
        Case("unassigned", {"view": "unassigned"}),
        Case("unassigned: middle cursor", {"view": "unassigned"}, "middle"),
        Case("assignee (open)", {"assignee": str(mid)}),
        Case("assignee (all views)", {"view": "all", "assignee": str(busy)}),
        Case("status=pending (all)", {"view": "all", "status": "pending"}),
        Case("status=new (open)", {"status": "new"}),
        Case("view=pending", {"view": "pending"}),
        Case("view=resolved", {"view": "resolved"}),
        Case("view=resolved: middle cursor", {"view": "resolved"}, "middle"),
        Case("channel=chat (open)", {"channel": "chat"}),
        Case("channel=chat (all)", {"view": "all", "channel": "chat"}),
        Case("team (open)", {"team": str(team)}),
        Case("priority=urgent (open)", {"priority": "4"}),
        Case(f"tag={_seed.POPULAR_TAG} (popular, open)", {"tag": _seed.POPULAR_TAG}),
        Case(f"tag={_seed.POPULAR_TAG}: middle cursor", {"tag": _seed.POPULAR_TAG}, "middle"),
        Case(f"tag={_seed.MEDIUM_TAG} (medium, open)", {"tag": _seed.MEDIUM_TAG}),
        Case(f"tag={_seed.UNCOMMON_TAG} (uncommon, open)", {"tag": _seed.UNCOMMON_TAG}),
        Case(f"tag={_seed.RARE_TAG} (rare, open)", {"tag": _seed.RARE_TAG}),
        Case("sort=priority (open)", {"sort": "priority"}),
        Case("sort=priority: middle cursor", {"sort": "priority"}, "middle"),
        Case("sort=oldest (open)", {"sort": "oldest"}),
        Case("sort=oldest: middle cursor", {"sort": "oldest"}, "middle"),
        Case("sort=created (open)", {"sort": "created"}),
        Case(
            "team+channel+priority (open)",
            {"team": str(team), "channel": "email", "priority": "3"},
        ),
    ]


class SQLRecorder:
    """Every statement the engine sends during a request (SQLAlchemy's cursor event)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def attach(self, engine: Any) -> None:
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        self.statements.append((statement, params))


class ServiceTimer:
    """Time spent in ``queue_page`` (query + ORM loading) inside the view; the rest of a request
    is Flask, Flask-Login and rendering the template."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self) -> None:
        inner = agent_views.queue_rows

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        agent_views.queue_rows = timed


def make_app(info: _seed.SeedInfo, instance: str) -> Flask:
    return create_app(
        {
            "DATABASE_URL": f"sqlite:///{info.path}",
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "WORKER_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )


def sign_in(client: FlaskClient, info: _seed.SeedInfo) -> None:
    resp = client.post("/login", data={"email": info.agent_email, "password": info.password})
    if resp.status_code != 302:
        raise SystemExit(f"sign-in failed: HTTP {resp.status_code}")


def deep_cursor(app: Flask, case: Case) -> str | None:
    """The cursor for a deep page of this case, computed with the queue's own helpers."""
    with app.app_context():
        session = db.session
        agent = session.scalar(select(Agent).where(Agent.email == _seed.BENCH_AGENT_EMAIL))
        flt = QueueFilter.from_args(case.params)
        if case.deep == "follow":
            after: str | None = None
            for _ in range(FOLLOW_PAGES):
                after = queue_page(session, flt, agent=agent, after=after, limit=50).next_cursor
                session.expunge_all()
                if after is None:
                    raise SystemExit(f"{case.name}: fewer than {FOLLOW_PAGES} pages")
            return after
        base = _base_query(flt, agent)
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
        ticket = session.scalars(
            _apply_sort(base, flt.sort, None).offset(total // 2).limit(1)
        ).first()
        return _cursor_for(ticket, flt.sort) if ticket else None


def explain(path: Path, statement: str, params: Any) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
    finally:
        conn.close()
    depth: dict[int, int] = {0: -1}
    out = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        out.append("  " * depth[node] + detail)
    return out


def main_statement(statements: list[tuple[str, Any]]) -> tuple[str, Any]:
    for statement, params in statements:
        if "FROM tickets" in statement and "LIMIT" in statement:
            return statement, params
    raise LookupError("no queue query among the request's statements")


def run_case(
    app: Flask,
    client: FlaskClient,
    rec: SQLRecorder,
    timer: ServiceTimer,
    case: Case,
    runs: int,
    warmup: int,
) -> Result:
    params = dict(case.params)
    if case.deep:
        cursor = deep_cursor(app, case)
        if cursor is None:
            raise SystemExit(f"{case.name}: no deep page")
        params["after"] = cursor
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = "/agent/queue" + (f"?{query}" if query else "")
    times: list[float] = []
    cpu: list[float] = []
    service: list[float] = []
    body = b""
    for i in range(warmup + runs):
        rec.statements = []
        timer.seconds = 0.0
        started, cpu_started = time.perf_counter(), time.process_time()
        resp = client.get(url)
        elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
        if resp.status_code != 200:
            raise SystemExit(f"{case.name}: HTTP {resp.status_code} for {url}")
        if i >= warmup:
            times.append(elapsed * 1000)
            cpu.append(cpu_used * 1000)
            service.append(timer.seconds * 1000)
        body = resp.data
    rows = body.count(b"data-ticket-id=")
    return Result(case, url, times, cpu, service, list(rec.statements), rows)


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[q - 1]


def print_table(results: list[Result], show_explain: bool) -> None:
    width = max(len(r.case.name) for r in results)
    head = (
        f"{'case':<{width}}  {'p50':>6}  {'p95':>6}  target  result  {'cpu p95':>7}"
        f"  {'query':>6}  SQL/req  rows  plan (tickets index; +SORT = temp b-tree)"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.case.name:<{width}}  {r.p50:6.1f}  {r.p95:6.1f}  {TARGET_MS:4.0f}ms  "
            f"{'PASS' if r.passed else 'FAIL':<6}  {_pct(r.cpu_ms, 19):7.1f}"
            f"  {statistics.median(r.service_ms):6.1f}  {len(r.statements):>3} ({r.selects}S)"
            f"  {r.rows:>4}  {r.plan_summary}"
        )
        if show_explain:
            print(f"    GET {r.url}")
            for line in r.plan:
                print(f"      {line}")
    print(
        "(ms; p50/p95: wall time of GET through the Flask view; cpu p95: this process's CPU time;"
        " query: p50 inside queue_page, i.e. SQL + ORM loading; SQL/req: statements sent,"
        " S = SELECTs, the rest is the BEGIN every session transaction starts with)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, help="tickets to seed (default 1,000,000; 100,000 with --http)")
    p.add_argument("--reseed", action="store_true", help="rebuild the cached database")
    p.add_argument("--runs", type=int, default=60, help="timed requests per case (default 60)")
    p.add_argument("--warmup", type=int, default=5, help="untimed requests first (default 5)")
    p.add_argument("--explain", action="store_true", help="print each main query's plan")
    p.add_argument("--only", help="run the cases whose name contains this text")
    p.add_argument(
        "--sql",
        action="append",
        default=[],
        metavar="STATEMENT",
        help="run on a copy of the seeded DB with this extra SQL applied (e.g. CREATE INDEX ...)",
    )
    p.add_argument("--http", action="store_true", help="through `helpdesk serve` (see above)")
    p.add_argument(
        "--database",
        choices=["sqlite", "postgresql", "both"],
        default="both",
        help="with --http: which database the server runs on (default both)",
    )
    p.add_argument("--clients", type=int, default=2, help="with --http: concurrent agents")
    p.add_argument(
        "--nice",
        type=int,
        help="with --http: run server and clients at this niceness (e.g. -10 on a machine"
        " others share; printed with the figures)",
    )
    p.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="with --http: sample the server with py-spy into PREFIX-<database>.txt",
    )
    p.add_argument(
        "--requests", type=int, default=400, help="with --http: timed requests per client"
    )
    args = p.parse_args(argv)
    if args.n is None:
        args.n = 100_000 if args.http else 1_000_000
    return args


def with_extra_sql(info: _seed.SeedInfo, statements: list[str]) -> _seed.SeedInfo:
    """A copy of the seeded database with experimental DDL applied (and ANALYZE re-run)."""
    copy = info.path.with_name(info.path.stem + "-variant.sqlite3")
    copy.unlink(missing_ok=True)
    src = sqlite3.connect(info.path)
    dst = sqlite3.connect(copy)
    with dst:
        src.backup(dst)
    src.close()
    for statement in statements:
        print(f"variant: {statement}")
        dst.execute(statement)
    dst.execute("ANALYZE")
    dst.commit()
    dst.close()
    return _seed.SeedInfo(copy, info.n)


def seeded(n: int, reseed: bool) -> _seed.SeedInfo:
    """The cached database, seeded again when the models have columns it lacks (a cache made
    before a migration added them would fail every request)."""
    info = _seed.seed_database(n, reseed=reseed)
    conn = sqlite3.connect(info.path)
    try:
        missing = [
            f"{table.name}.{column.name}"
            for table in Base.metadata.sorted_tables
            for column in table.columns
            if (have := {r[1] for r in conn.execute(f'PRAGMA table_info("{table.name}")')})
            and column.name not in have
        ]
    finally:
        conn.close()
    if missing:
        print(f"the cached database lacks {', '.join(missing)}: seeding it again")
        info = _seed.seed_database(n, reseed=True)
    return info


def count_statements(url: str, instance: Path) -> None:
    """The statements one queue page sends on this database (the server runs the same code):
    printed per case kind, with the queue's documented figure (QUEUE_PAGE_STATEMENTS)."""
    app = create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "WORKER_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    rec = SQLRecorder()
    rec.attach(db.engine(app))
    client = app.test_client()
    resp = client.post(
        "/login", data={"email": _seed.BENCH_AGENT_EMAIL, "password": _seed.BENCH_PASSWORD}
    )
    if resp.status_code != 302:
        raise SystemExit(f"sign-in failed: HTTP {resp.status_code}")
    shown = []
    for label, query in (
        ("open", "?view=open"),
        ("live refresh", "?view=open&partial=1"),
        (f"tag={_seed.POPULAR_TAG}", f"?view=open&tag={_seed.POPULAR_TAG}"),
        ("no arguments (the remembered view is looked up)", ""),
    ):
        client.get("/agent/queue" + query)
        rec.statements = []
        client.get("/agent/queue" + query)
        selects = sum(1 for s, _ in rec.statements if s.lstrip().upper().startswith("SELECT"))
        shown.append(f"{label}: {len(rec.statements)} ({selects} SELECT)")
    print(f"{db.engine(app).dialect.name}: statements per request: {'; '.join(shown)}")
    db.engine(app).dispose()


def http_main(args: argparse.Namespace, info: _seed.SeedInfo) -> int:
    from bench import _queue_http as h

    with tempfile.TemporaryDirectory(prefix="bench-queue-") as instance:
        app = make_app(info, instance)
        with app.app_context():
            agent_ids = list(db.session.scalars(select(Agent.id).order_by(Agent.id)))
            team_ids = list(db.session.scalars(select(Team.id).order_by(Team.id)))
        urls: list[tuple[h.Ask, str]] = []
        for ask in h.mix(agent_ids, team_ids):
            params = dict(ask.params)
            if ask.deep:
                cursor = deep_cursor(app, Case(ask.group, ask.params, ask.deep))
                if cursor is None:
                    raise SystemExit(f"{ask}: no deep page")
                params["after"] = cursor
            query = "&".join(f"{k}={v}" for k, v in params.items())
            urls.append((ask, "/agent/queue" + (f"?{query}" if query else "")))
        db.engine(app).dispose()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print(
        f"{info.n:,} tickets; `helpdesk serve` (gevent); {args.clients} clients x "
        f"{args.requests} requests, {len(urls)} kinds of page; target p95 <= {h.TARGET_MS:.0f} ms"
    )
    ok = True
    for kind in kinds:
        run = h.run_http(
            kind,
            info,
            urls,
            clients=args.clients,
            requests_per_client=args.requests,
            py_spy=args.py_spy,
            nice=args.nice,
            statements=count_statements,
        )
        ok = h.print_run(run, args.clients) and ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = seeded(args.n, args.reseed)
    if args.http:
        return http_main(args, info)
    if args.sql:
        info = with_extra_sql(info, args.sql)
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as instance:
        app = make_app(info, instance)
        rec = SQLRecorder()
        rec.attach(db.engine(app))
        timer = ServiceTimer()
        timer.wrap()
        with app.app_context():
            agent_ids = list(db.session.scalars(select(Agent.id).order_by(Agent.id)))
            team_ids = list(db.session.scalars(select(Team.id).order_by(Team.id)))
        client = app.test_client()
        sign_in(client, info)
        chosen = [c for c in cases(agent_ids, team_ids) if not args.only or args.only in c.name]
        print(
            f"{info.n:,} tickets, {args.runs} timed requests per case after {args.warmup} "
            f"warm-up; target p95 <= {TARGET_MS:.0f} ms per GET /agent/queue"
        )
        results: list[Result] = []
        for case in chosen:
            result = run_case(app, client, rec, timer, case, args.runs, args.warmup)
            result.plan = explain(info.path, *main_statement(result.statements))
            results.append(result)
            print(f"  {case.name}: p95 {result.p95:.1f} ms", file=sys.stderr, flush=True)
        print_table(results, args.explain)
        failed = [r for r in results if not r.passed]
        print(f"\n{len(results) - len(failed)}/{len(results)} cases within {TARGET_MS:.0f} ms p95")
        out = info.path.with_name(info.path.stem + ".results.json")
        out.write_text(
            json.dumps(
                [
                    {
                        "case": r.case.name,
                        "url": r.url,
                        "p50_ms": round(r.p50, 2),
                        "p95_ms": round(r.p95, 2),
                        "cpu_p95_ms": round(_pct(r.cpu_ms, 19), 2),
                        "queue_page_p50_ms": round(statistics.median(r.service_ms), 2),
                        "statements": len(r.statements),
                        "selects": r.selects,
                        "rows": r.rows,
                        "plan": r.plan,
                        "pass": r.passed,
                    }
                    for r in results
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        print(f"results: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
