"""REST API v1 at a million tickets (issue #14): ``GET /api/v1/tickets`` first page and a
middle cursor, p95 <= 50 ms; ``POST /api/v1/tickets`` sustained >= 200/s in one process.

GETs run on bench/queue.py's cached database (``--n`` tickets, default 1,000,000, seeded by
bench/_seed.py the first time, reused after): on SQLite the cached file itself (read only), on
PostgreSQL a throwaway cluster loaded with the same rows (bench/_queue_http.py; minutes at 1M).
Each case is ``--requests`` requests through the real app (Flask test client, a bearer token of
the bench agent, the API's whole stack: token, rate limit, validation, serialization), after a
warm-up; the middle cursor is the cursor of the ticket halfway down the sort.

POSTs go to a fresh database (a temporary SQLite file; on PostgreSQL a database of its own in
the same cluster), ``--posts`` tickets one after another from one process, each a new
customer (the inbound path's most work), JSON body as docs/api.md shows; the rate is tickets per
second of wall time, with p50/p95 per request.

    .venv/bin/python bench/api.py --n 100000                     # quick
    .venv/bin/python bench/api.py                                # SQLite, 1M
    .venv/bin/python bench/api.py --database postgresql --n 100000
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from bench import _seed
from helpdesk import create_app
from helpdesk.api import pagination
from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole, ApiToken, Ticket
from helpdesk.services import api_tokens
from helpdesk.services.agents import create_agent

GET_TARGET_MS = 50.0
POST_TARGET_PER_S = 200.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_app(url: str, instance: str) -> Flask:
    return create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": instance,
            "SECRET_KEY": "bench",
            "WORKER_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "API_RATE_LIMIT": "100000000 per minute",
        }
    )


def _token(app: Flask, email: str) -> tuple[str, int]:
    with app.app_context():
        agent = db.session.scalar(select(Agent).where(Agent.email == email))
        if agent is None:
            agent = create_agent(db.session, email, "Bench", None, AgentRole.AGENT)
        new = api_tokens.create_token(db.session, agent, "bench", "write")
        db.session.commit()
        return new.secret, new.token.id


def _drop_token(app: Flask, token_id: int) -> None:
    with app.app_context():
        row = db.session.get(ApiToken, token_id)
        if row is not None:
            db.session.delete(row)
            db.session.commit()


def _middle_cursor(app: Flask, sort: str) -> str:
    with app.app_context():
        total = db.session.scalar(select(func.count(Ticket.id))) or 0
        q = select(Ticket).where(Ticket.merged_into_id.is_(None))
        q = pagination.apply_sort(q, sort, None).offset(total // 2).limit(1)
        ticket = db.session.scalars(q).first()
        assert ticket is not None
        return pagination.cursor_after(ticket, sort)


def time_gets(app: Flask, secret: str, requests: int) -> list[tuple[str, list[float]]]:
    client = app.test_client(use_cookies=False)
    headers = {"Authorization": f"Bearer {secret}"}
    cases = [
        ("first page (sort=created)", "/api/v1/tickets?limit=25"),
        ("middle cursor (sort=created)", None, "created"),
        ("first page (sort=updated)", "/api/v1/tickets?limit=25&sort=updated"),
        ("middle cursor (sort=updated)", None, "updated"),
        ("first page, status=open", "/api/v1/tickets?limit=25&status=open"),
    ]
    results = []
    for case in cases:
        name, url = case[0], case[1]
        if url is None:
            sort = case[2]  # type: ignore[misc]
            url = f"/api/v1/tickets?limit=25&sort={sort}&cursor={_middle_cursor(app, sort)}"
        for _ in range(5):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            assert len(response.get_json()["tickets"]) == 25
        results.append((name, times))
    return results


def time_posts(app: Flask, secret: str, posts: int) -> tuple[float, list[float]]:
    client = app.test_client(use_cookies=False)
    headers = {"Authorization": f"Bearer {secret}"}
    times = []
    started = time.perf_counter()
    for i in range(posts):
        body: dict[str, Any] = {
            "subject": f"Order {i} did not arrive",
            "body": "আমার অর্ডার এখনও আসেনি। Please check the courier.",
            "customer": {"email": f"bench-api-{i}@example.com", "name": f"Customer {i}"},
            "priority": 2 + i % 3,
            "tags": ["delivery"],
        }
        t0 = time.perf_counter()
        response = client.post("/api/v1/tickets", json=body, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 201, response.get_data(as_text=True)[:300]
    return posts / (time.perf_counter() - started), times


@contextlib.contextmanager
def get_database(
    kind: str, info: _seed.SeedInfo, folder: Path, *, empty: bool = False
) -> Iterator[str]:
    """The GET database; ``empty`` (POSTs only): just a PostgreSQL cluster to make the POST
    database in, without copying the million tickets (a quarter of an hour)."""
    if kind == "sqlite":
        yield f"sqlite:///{info.path}"
        return
    if empty:
        from tests.servers import PostgresCluster

        with PostgresCluster() as cluster:
            yield cluster.create_database("bench_api_empty")
        return
    from bench import _queue_http

    with _queue_http.database(kind, info, folder) as (url, _pid):
        yield url


@contextlib.contextmanager
def post_database(kind: str, folder: Path, get_url: str) -> Iterator[str]:
    from helpdesk.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{folder / 'posts.sqlite3'}"
    else:
        from sqlalchemy import create_engine, text

        engine = create_engine(get_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE bench_api_posts"))
        engine.dispose()
        url = get_url.rsplit("/", 1)[0] + "/bench_api_posts"
    upgrade(create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(folder / "migrate")}))
    yield url


def run(kind: str, info: _seed.SeedInfo, args: argparse.Namespace) -> bool:
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = Path(tmp)
        with get_database(kind, info, folder, empty=args.posts_only) as url:
            if not args.posts_only:
                app = make_app(url, str(folder / "get"))
                secret, token_id = _token(app, _seed.BENCH_AGENT_EMAIL)
                try:
                    results = time_gets(app, secret, args.requests)
                finally:
                    _drop_token(app, token_id)
                    db.engine(app).dispose()
                print(
                    f"\n{kind}: GET /api/v1/tickets at {info.n:,} tickets "
                    f"({args.requests} requests per case; target p95 <= {GET_TARGET_MS:.0f} ms)"
                )
                for name, times in results:
                    p95 = _pct(times, 0.95)
                    ok = ok and p95 <= GET_TARGET_MS
                    print(
                        f"  {name:32} p50 {statistics.median(times):6.1f} ms   "
                        f"p95 {p95:6.1f} ms   {'ok' if p95 <= GET_TARGET_MS else 'OVER'}"
                    )
            if args.posts:
                with post_database(kind, folder, url) as post_url:
                    app = make_app(post_url, str(folder / "post"))
                    secret, _token_id = _token(app, "bench-api@example.com")
                    rate, times = time_posts(app, secret, args.posts)
                    db.engine(app).dispose()
                good = rate >= POST_TARGET_PER_S
                ok = ok and good
                print(
                    f"{kind}: POST /api/v1/tickets x {args.posts} (fresh database, one process): "
                    f"{rate:6.0f}/s (target >= {POST_TARGET_PER_S:.0f}/s) "
                    f"{'ok' if good else 'UNDER'}; p50 {statistics.median(times):.1f} ms, "
                    f"p95 {_pct(times, 0.95):.1f} ms"
                )
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=1_000_000, help="tickets in the GET database")
    p.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    p.add_argument("--requests", type=int, default=100, help="GETs per case")
    p.add_argument("--posts", type=int, default=1000, help="POSTs (0: none)")
    p.add_argument("--posts-only", action="store_true", help="skip the GETs (no seeding)")
    args = p.parse_args(argv)
    info = (
        _seed.SeedInfo(_seed.db_path(args.n), args.n)
        if args.posts_only
        else _seed.seed_database(args.n)
    )
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    ok = True
    for kind in kinds:
        ok = run(kind, info, args) and ok
    print("\nfigures taken on a shared machine under other load: compare runs, not absolutes")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
