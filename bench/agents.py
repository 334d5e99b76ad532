"""Agent workspace at 1M tickets: view counts and a 100-ticket bulk update.

Targets (issue: agent workspace): view counts <= 50 ms, bulk update of 100 tickets <= 1 s.
Uses the cached seeded database of bench/queue.py (bench/results/queue-<n>.sqlite3).

    .venv/bin/python bench/agents.py [--n 1000000] [--rounds 20]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ would come first on sys.path (bench/queue.py shadows `queue`).
if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import random
import statistics
import tempfile
import time

from sqlalchemy import func, select

from bench import _seed
from helpdesk import create_app
from helpdesk.db import Base
from helpdesk.extensions import db
from helpdesk.models import Agent, Ticket
from helpdesk.models.views import TicketCount
from helpdesk.services import bulk, counts
from helpdesk.services.queue import VIEWS, QueueFilter
from helpdesk.services.views import count_view


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    info = _seed.seed_database(args.n)
    with tempfile.TemporaryDirectory() as instance:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{info.path}",
                "INSTANCE_PATH": instance,
                "SECRET_KEY": "bench",
                "WORKER_ENABLED": False,
            }
        )
        failures = 0
        with app.app_context():
            # A database seeded before the counters existed gets them (like migration 0006).
            Base.metadata.create_all(db.engine(app))
            session = db.session
            if not session.scalar(select(func.count()).select_from(TicketCount)):
                t0 = time.perf_counter()
                counts.recount(session)
                session.commit()
                print(f"built view counters in {time.perf_counter() - t0:.1f} s")
            agent = session.scalar(select(Agent).where(Agent.email == info.agent_email))
            assert agent is not None
            print(f"{args.n:,} tickets; {args.rounds} rounds per case")
            print(f"{'view count':<28}{'p50 ms':>9}{'p95 ms':>9}  target")
            for view in VIEWS:
                flt = QueueFilter(view=view)
                count_view(session, flt, agent)  # warm
                times = []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    n = count_view(session, flt, agent)
                    times.append((time.perf_counter() - t0) * 1000)
                    session.rollback()
                p95 = _p95(times)
                ok = p95 <= 50
                failures += not ok
                print(
                    f"{view + f' ({n:,})':<28}{statistics.median(times):>9.1f}{p95:>9.1f}"
                    f"  <= 50 ms {'PASS' if ok else 'FAIL'}"
                )

            active = list(
                session.scalars(select(Ticket.id).where(Ticket.active.is_(True)).limit(20_000))
            )
            session.rollback()
            rng = random.Random(7)
            agents = list(session.scalars(select(Agent.id).limit(50)))
            times = []
            for i in range(max(5, args.rounds // 2)):
                ids = rng.sample(active, 100)
                change = bulk.BulkChange(
                    assignee_id=rng.choice(agents), priority=1 + i % 4, add_tags=(f"bulk-{i}",)
                )
                t0 = time.perf_counter()
                bulk.bulk_update(session, ids, change, agent)
                session.commit()
                times.append((time.perf_counter() - t0) * 1000)
            p95 = _p95(times)
            ok = p95 <= 1000
            failures += not ok
            print(
                f"{'bulk update, 100 tickets':<28}{statistics.median(times):>9.1f}{p95:>9.1f}"
                f"  <= 1000 ms {'PASS' if ok else 'FAIL'}"
            )
        db.engine(app).dispose()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
