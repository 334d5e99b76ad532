"""Automatic assignment: cost of one assignment and of a 100-ticket bulk move into a team.

Targets: a bulk update of 100 tickets <= 1 s (issue: agent workspace) with the team assigning
automatically; one ticket moved into an auto-assigning team and committed <= 20 ms p95 (ours:
assignment must not be noticeable next to receiving a mail). A team of 10 available agents; load
comes from ``ticket_counts``, so the figures do not grow with the number of tickets.

    .venv/bin/python bench/assignment.py [--rounds 10] [--db sqlite:///... | postgresql://...]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import statistics
import tempfile
import time

from helpdesk import create_app
from helpdesk.db import Base
from helpdesk.extensions import db
from helpdesk.inbound import InboundMessage
from helpdesk.models import Ticket
from helpdesk.services import assignment, tickets
from helpdesk.services.agents import create_agent, create_team
from helpdesk.services.bulk import BulkChange, bulk_update
from helpdesk.services.inbound import receive
from helpdesk.services.presence import agent_connected, set_presence


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--db", default=None, help="Database URL (default: a fresh SQLite file).")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as instance:
        url = args.db or f"sqlite:///{instance}/bench.sqlite3"
        app = create_app(
            {"DATABASE_URL": url, "INSTANCE_PATH": instance, "SECRET_KEY": "bench",
             "WORKER_ENABLED": False, "PASSWORD_HASH_PROFILE": "cheapest"}
        )  # fmt: skip
        failures = 0
        with app.app_context(), app.test_request_context():
            Base.metadata.create_all(db.engine(app))
            s = db.session
            agents = [create_agent(s, f"a{i}@bench.test", f"Agent {i}", None) for i in range(10)]
            for i, a in enumerate(agents):
                agent_connected(s, a, f"sid-{i}")
                set_presence(s, a, "online")
            s.commit()
            n_tickets = 100 * args.rounds * 3 + 200
            ids = []
            for i in range(n_tickets):
                msg = InboundMessage(
                    channel_kind="email", identity_kind="email",
                    sender_address=f"c{i % 500}@bench.test", subject=f"Order {i}", text="Hello",
                )  # fmt: skip
                ids.append(receive(s, msg).ticket.id)
                if i % 200 == 199:
                    s.commit()
            s.commit()
            pool = iter(ids)
            for mode in ("round_robin", "least_open"):
                team = create_team(s, f"Team {mode}", agents)
                assignment.set_assignment(s, team, mode, 10_000, None)
                s.commit()
                single: list[float] = []
                for _ in range(100):
                    t = s.get(Ticket, next(pool))
                    assert t is not None
                    start = time.perf_counter()
                    tickets.set_team(s, t, team, None)
                    s.commit()
                    single.append((time.perf_counter() - start) * 1000)
                    assert t.assignee_id is not None
                bulk: list[float] = []
                for _ in range(args.rounds):
                    batch = [next(pool) for _ in range(100)]
                    start = time.perf_counter()
                    bulk_update(s, batch, BulkChange(team_id=team.id), None)
                    s.commit()
                    bulk.append((time.perf_counter() - start) * 1000)
                one_p95, bulk_p95 = _p95(single), _p95(bulk)
                ok1, ok2 = one_p95 <= 20, bulk_p95 <= 1000
                failures += (not ok1) + (not ok2)
                print(f"{mode:<12} one assignment p95 {one_p95:7.1f} ms   target <= 20 ms "
                      f"{'OK' if ok1 else 'MISS'}")  # fmt: skip
                print(f"{mode:<12} bulk move of 100 p95 {bulk_p95:7.1f} ms   target <= 1000 ms "
                      f"{'OK' if ok2 else 'MISS'}")  # fmt: skip
            # Baseline: the same bulk move into a team with assignment off.
            off = create_team(s, "Team off", agents)
            s.commit()
            base: list[float] = []
            for _ in range(args.rounds):
                batch = [next(pool) for _ in range(100)]
                start = time.perf_counter()
                bulk_update(s, batch, BulkChange(team_id=off.id), None)
                s.commit()
                base.append((time.perf_counter() - start) * 1000)
            print(f"{'off':<12} bulk move of 100 p95 {_p95(base):7.1f} ms   (baseline)")
        db.engine(app).dispose()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
