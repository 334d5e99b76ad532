"""One customer timeline (issue #15): a customer with 10,000 messages renders its first page in
<= 200 ms (p95).

Seeds a fresh database (a temporary SQLite file; on PostgreSQL a throwaway cluster): one
customer with ``--messages`` messages (default 10,000) over five years on ``--messages / 10``
tickets across channels: email (the customer's mail, an agent's reply with Cc's, an internal
note), portal, chat (a chat session with the page the visitor was on, its lines); two status
changes per ticket in the audit log, a few tasks; and ``--noise`` messages of other customers
(default 20,000) so the queries meet other rows. Rows are written in bulk with Core inserts of
the model tables (the shape the services write; the bench is about reading).

Then times, through the app's test client after a warm-up, ``--requests`` requests each of:
the customer page (the agent signed in: the whole page, tickets list and Tasks box included),
its timeline filtered to notes, an "Older" page further down, and
``GET /api/v1/customers/<id>/timeline`` (bearer token). Prints p50/p95 next to the target and
the SELECTs of one first page.

    .venv/bin/python bench/timeline.py                          # SQLite
    .venv/bin/python bench/timeline.py --database postgresql
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import event, func, insert, select, text

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.models import (
    AgentRole,
    AuditEvent,
    Customer,
    Message,
    Task,
    Ticket,
)
from helpdesk.services import api_tokens
from helpdesk.services.agents import create_agent
from helpdesk.services.customers import create_customer

TARGET_MS = 200.0
PASSWORD = "bench timeline password"
START = datetime(2021, 1, 4, 8, 0, tzinfo=UTC)
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
PAGES = [
    "https://shop.example/pricing",
    "https://shop.example/checkout?step=2",
    "https://shop.example/bn/help/returns",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'timeline.sqlite3'}"
        return
    from tests.servers import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster.create_database("bench_timeline")


def make_app(url: str, instance: Path) -> Flask:
    return create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "WORKER_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "API_RATE_LIMIT": "100000000 per minute",
            "PASSWORD_HASH_PROFILE": "cheapest",
        }
    )


def seed(app: Flask, messages: int, noise: int) -> tuple[int, str]:
    """The customer's id and an API token of the agent."""
    rng = random.Random(15)
    with app.app_context():
        s = db.session
        agent = create_agent(s, "bench@example.com", "Bench Agent", PASSWORD, AgentRole.AGENT)
        customer = create_customer(s, "rina@example.com", name="রিনা আক্তার")
        others = [create_customer(s, f"other{i}@example.com") for i in range(50)]
        s.flush()
        token = api_tokens.create_token(s, agent, "bench", "read").secret
        s.commit()
        number = 1001
        next_ids = {"ticket": 1, "message": 1, "audit": 1, "chat": 1}

        def tickets_of(
            customer_id: int, count: int, span_days: int
        ) -> tuple[list[dict[str, Any]], ...]:
            nonlocal number
            t_rows: list[dict[str, Any]] = []
            m_rows: list[dict[str, Any]] = []
            a_rows: list[dict[str, Any]] = []
            c_rows: list[dict[str, Any]] = []
            for _ in range(count):
                tid = next_ids["ticket"]
                next_ids["ticket"] += 1
                at = START + timedelta(minutes=rng.randrange(span_days * 24 * 60))
                channel = rng.choices(["email", "portal", "chat"], [5, 2, 3])[0]
                when = at
                lines: list[dict[str, Any]] = []
                for k in range(10):
                    when += timedelta(seconds=20 if channel == "chat" else rng.randrange(60, 86400))
                    note = channel != "chat" and k == 2
                    outbound = not note and k % 2 == 1
                    lines.append(
                        {
                            "id": next_ids["message"],
                            "ticket_id": tid,
                            "direction": "outbound" if outbound else "inbound",
                            "kind": "note" if note else channel,
                            "internal": note,
                            "author_customer_id": None if outbound or note else customer_id,
                            "author_agent_id": agent.id if outbound or note else None,
                            "body_text": f"Line {k} about order {rng.randrange(10**6)}. " * 4,
                            "recipients": ["rina@example.com", "accounts@shop.example"]
                            if outbound and channel == "email"
                            else [],
                            "delivery_status": "sent" if outbound else None,
                            "created_at": when,
                        }
                    )
                    next_ids["message"] += 1
                m_rows.extend(lines)
                t_rows.append(
                    {
                        "id": tid,
                        "number": number,
                        "subject": f"Order question {number}",
                        "status": "resolved",
                        "active": False,
                        "channel": channel,
                        "customer_id": customer_id,
                        "created_at": at,
                        "updated_at": when,
                        "last_message_at": when,
                        "message_count": len(lines),
                    }
                )
                number += 1
                for old, new, t in (("new", "open", at), ("open", "resolved", when)):
                    a_rows.append(
                        {
                            "id": next_ids["audit"],
                            "ticket_id": tid,
                            "actor_agent_id": agent.id,
                            "action": "ticket.status",
                            "data": {"from": old, "to": new},
                            "created_at": t + timedelta(seconds=1),
                        }
                    )
                    next_ids["audit"] += 1
                if channel == "chat":
                    c_rows.append(
                        {
                            "id": next_ids["chat"],
                            "ticket_id": tid,
                            "visitor_id": f"v-{customer_id}",
                            "customer_id": customer_id,
                            "status": "ended",
                            "agent_id": agent.id,
                            "declined": [],
                            "page_url": rng.choice(PAGES),
                            "created_at": at,
                            "ended_at": when,
                        }
                    )
                    next_ids["chat"] += 1
            return t_rows, m_rows, a_rows, c_rows

        from channels.chat.models import ChatSession

        plan = [(customer.id, messages // 10)] + [
            (o.id, noise // 10 // len(others)) for o in others
        ]
        for customer_id, count in plan:
            for chunk in range(0, count, 200):
                t_rows, m_rows, a_rows, c_rows = tickets_of(
                    customer_id, min(200, count - chunk), 5 * 365
                )
                s.execute(insert(Ticket), t_rows)
                s.execute(insert(Message), m_rows)
                s.execute(insert(AuditEvent), a_rows)
                if c_rows:
                    s.execute(insert(ChatSession), c_rows)
        for i in range(5):
            s.add(
                Task(
                    title=f"Call back {i}",
                    due_at=START + timedelta(days=300 * i),
                    assignee_id=agent.id,
                    customer_id=customer.id,
                    created_at=START + timedelta(days=300 * i - 3),
                    updated_at=START + timedelta(days=300 * i - 3),
                )
            )
        s.execute(text("UPDATE ticket_counter SET value = :n"), {"n": number})
        s.commit()
        if db.engine(app).dialect.name == "postgresql":
            with db.engine(app).connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        else:
            s.execute(text("ANALYZE"))
            s.commit()
        assert s.scalar(select(Customer.id).where(Customer.id == customer.id))
        total = s.scalar(
            select(func.count())
            .select_from(Message)
            .join(Ticket)
            .where(Ticket.customer_id == customer.id)
        )
        print(f"seeded: customer {customer.id} with {total:,} messages; {noise:,} of others")
        return customer.id, token


def signed_in(app: Flask) -> Any:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    match = _CSRF.search(page)
    assert match
    answer = client.post(
        "/login",
        data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": match.group(1)},
    )
    assert answer.status_code == 302, answer.status_code
    return client


def timed(call: Callable[[], Any], n: int) -> list[float]:
    for _ in range(3):
        call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def selects(app: Flask, call: Callable[[], Any]) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", before)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return seen


def run(kind: str, args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as tmp:
        folder = Path(tmp)
        with database(kind, folder) as url:
            from helpdesk.migrate import upgrade

            app = make_app(url, folder / "instance")
            upgrade(app)
            customer_id, token = seed(app, args.messages, args.noise)
            client = signed_in(app)
            page_url = f"/agent/customers/{customer_id}"

            def get(url: str, **kw: Any) -> Callable[[], Any]:
                def call() -> None:
                    response = client.get(url, **kw)
                    assert response.status_code == 200, response.status_code

                return call

            first = client.get(page_url).get_data(as_text=True)
            older = re.search(r'class="timeline-older" rel="next" href="([^"]+)"', first)
            assert older, "no Older link on the first page"
            link = older.group(1).replace("&amp;", "&")
            for _ in range(20):  # twenty pages down
                nxt = re.search(
                    r'class="timeline-older" rel="next" href="([^"]+)"',
                    client.get(link).get_data(as_text=True),
                )
                assert nxt
                link = nxt.group(1).replace("&amp;", "&")
            api_headers = {"Authorization": f"Bearer {token}"}
            cases = [
                ("customer page, first page", get(page_url)),
                ("customer page, notes only", get(f"{page_url}?tl_kind=note")),
                ("customer page, 21st page", get(link)),
                (
                    "API timeline, first page",
                    get(f"/api/v1/customers/{customer_id}/timeline", headers=api_headers),
                ),
            ]
            statements = selects(app, get(page_url))
            timeline_statements = [
                s
                for s in statements
                if any(
                    t in s
                    for t in (
                        "FROM messages",
                        "FROM audit_events",
                        "FROM chat_sessions",
                        "FROM tasks",
                    )
                )
            ]
            print(
                f"\n{kind}: one customer, {args.messages:,} messages "
                f"({args.requests} requests per case; target p95 <= {TARGET_MS:.0f} ms)"
            )
            print(
                f"  the customer page sends {len(statements)} SELECTs, "
                f"{len(timeline_statements)} of them the timeline's"
            )
            ok = True
            for name, call in cases:
                times = timed(call, args.requests)
                p95 = pct(times, 0.95)
                ok = ok and p95 <= TARGET_MS
                print(
                    f"  {name:30} p50 {statistics.median(times):6.1f} ms   "
                    f"p95 {p95:6.1f} ms   {'ok' if p95 <= TARGET_MS else 'OVER'}"
                )
            if args.plans:
                explain(app, customer_id)
            db.engine(app).dispose()
            return ok


def explain(app: Flask, customer_id: int) -> None:
    """The plans of the timeline's queries for a first page."""
    from helpdesk.services import timeline

    captured: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((statement, parameters))

    with app.app_context():
        engine = db.engine(app)
        event.listen(engine, "before_cursor_execute", before)
        try:
            timeline.customer_timeline(db.session, customer_id)
        finally:
            event.remove(engine, "before_cursor_execute", before)
        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
        conn = db.session.connection()
        for statement, parameters in captured:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            print("\n" + statement.split("FROM", 1)[1].split("\n", 1)[0][:100])
            for row in conn.exec_driver_sql(prefix + statement, parameters).all():
                print("   ", " ".join(str(c) for c in row))
        db.session.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--noise", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--plans", action="store_true", help="print the queries' plans")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    ok = all([run(kind, args) for kind in kinds])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
