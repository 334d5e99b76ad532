"""What writing the event stream adds to a reply's commit (issue #12: <= 1 ms p95).

A migrated database (SQLite file, or a throwaway PostgreSQL cluster with ``--database
postgresql``), one agent, ``--tickets`` tickets opened through ``services.inbound.receive`` from
mixed English/Bengali mail-like texts; then ``--replies`` agent replies to random tickets, each
its own transaction as a web request makes it (the reply, a status change on some, a tag on
some, then the commit). Every other reply runs with the stream's commit step replaced by a
no-op, so both halves see the same database size and cache state.

Prints, per backend: the p50/p95 of the commit with and without the event write, their p95
difference, and the p95 of the event step itself (the counter UPDATE and the INSERT of the
transaction's events, timed inside the commit), next to the 1 ms target.

    .venv/bin/python bench/event_write.py [--database sqlite|postgresql|both] [--replies 1000]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.migrate import upgrade
from helpdesk.models import Agent, AgentRole, Ticket
from helpdesk.services import stream, tags, tickets
from helpdesk.services.agents import create_agent
from helpdesk.services.inbound import receive
from helpdesk.unit_of_work import add_commit_step

TARGET_MS = 1.0

SUBJECTS = [
    "Refund for order #{n}",
    "অর্ডার #{n} এখনও আসেনি",
    "Re: Invoice {n} charged twice",
    "Fwd: delivery address change for {n}",
    "বিকাশ পেমেন্ট ব্যর্থ হয়েছে ({n})",
    "App crashes on Android 14 when opening settings",
]
REPLIES = [
    "Thanks for writing in. I have checked order #{n}; it left our warehouse today.",
    "আপনার অর্ডারটি আজ পাঠানো হয়েছে। ট্র্যাকিং নম্বর শীঘ্রই পাবেন।",
    "We have refunded the second payment; it takes 3-5 working days to show.",
    "Could you send a screenshot of the error? That helps us find it faster.",
]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def timed_step(durations: list[float]) -> Iterator[None]:
    """Time the stream's commit step while the block runs."""
    write = stream._write_events

    def timed(session: Any, uow: Any) -> None:
        start = time.perf_counter()
        write(session, uow)
        durations.append((time.perf_counter() - start) * 1000)

    add_commit_step("stream.events", timed, order=90)
    try:
        yield
    finally:
        add_commit_step("stream.events", write, order=90)


@contextlib.contextmanager
def without_events() -> Iterator[None]:
    add_commit_step("stream.events", lambda _s, uow: uow.take("stream.event"), order=90)
    try:
        yield
    finally:
        add_commit_step("stream.events", stream._write_events, order=90)


def run(url: str, instance: Path, n_tickets: int, n_replies: int) -> dict[str, float]:
    app = create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "WORKER_ENABLED": False,
            "SECRET_KEY": "bench",
            "PASSWORD_HASH_PROFILE": "cheapest",
        }
    )
    upgrade(app)
    rng = random.Random(12)
    with app.app_context(), db.transaction(app) as s:
        agent_id = create_agent(s, "ann@bench.test", "Ann", None, AgentRole.AGENT).id
    ids: list[int] = []
    for start in range(0, n_tickets, 100):
        with app.app_context(), db.transaction(app) as s:
            for i in range(start, min(n_tickets, start + 100)):
                msg = InboundMessage(
                    "email",
                    f"customer{i % 150}@example.{rng.choice(['com', 'com.bd', 'org'])}",
                    rng.choice(REPLIES).format(n=4000 + i),
                    subject=rng.choice(SUBJECTS).format(n=4000 + i),
                    cc=[f"cc{i % 7}@example.com"] if i % 5 == 0 else [],
                )
                ids.append(receive(s, msg).ticket.id)
    with_event: list[float] = []
    without: list[float] = []
    step: list[float] = []
    for i in range(n_replies + 50):
        ticket_id = rng.choice(ids)
        measured = with_event if i % 2 == 0 else without
        context = timed_step(step) if i % 2 == 0 else without_events()
        with app.app_context(), context:
            s = db.session
            ticket = s.get(Ticket, ticket_id)
            agent = s.get(Agent, agent_id)
            assert ticket is not None and agent is not None
            tickets.reply_to_ticket(s, ticket, agent, rng.choice(REPLIES).format(n=ticket_id))
            if i % 3 == 0:
                tickets.set_status(s, ticket, rng.choice(["pending", "open", "resolved"]), agent)
            if i % 4 == 0:
                tags.add_tags(s, ticket, [rng.choice(["billing", "delivery", "app"])], agent)
            start = time.perf_counter()
            s.commit()
            elapsed = (time.perf_counter() - start) * 1000
        if i >= 50:  # warm-up
            measured.append(elapsed)
    step = step[25:]
    db.engine(app).dispose()
    return {
        "with_p50": statistics.median(with_event),
        "with_p95": _p(with_event, 0.95),
        "without_p50": statistics.median(without),
        "without_p95": _p(without, 0.95),
        "step_p50": statistics.median(step),
        "step_p95": _p(step, 0.95),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--tickets", type=int, default=2000)
    ap.add_argument("--replies", type=int, default=1000)
    args = ap.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    ok = True
    with contextlib.ExitStack() as stack:
        for backend in backends:
            instance = Path(tempfile.mkdtemp(prefix=f"bench-events-{backend}-"))
            if backend == "postgresql":
                from tests.servers import PostgresCluster

                cluster = stack.enter_context(PostgresCluster())
                url = cluster.create_database("bench_events")
            else:
                url = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
            r = run(url, instance, args.tickets, args.replies)
            added = r["with_p95"] - r["without_p95"]
            passed = r["step_p95"] <= TARGET_MS
            ok = ok and passed
            print(
                f"{backend:10s} reply commit p50/p95: with events {r['with_p50']:.2f}/"
                f"{r['with_p95']:.2f} ms, without {r['without_p50']:.2f}/{r['without_p95']:.2f} ms"
                f" (p95 difference {added:+.2f} ms)"
            )
            print(
                f"{backend:10s} event write inside the commit: p50 {r['step_p50']:.3f} ms, "
                f"p95 {r['step_p95']:.3f} ms   target <= {TARGET_MS:.1f} ms p95   "
                f"{'MET' if passed else 'MISSED'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
