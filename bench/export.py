"""CSV export of the queue's tickets (and the customers) from the cached million-ticket
database, through the app's own test client, streamed to /dev/null: peak RSS of the process
against the 250 MB target (issue 15), rows/s and the time to the first row.

    .venv/bin/python bench/export.py [--tickets 1000000] [--copy]

The cache (``bench/_seed.py``, ``bench/results/queue-<N>.sqlite3``) is opened read-only
(SQLite ``mode=ro``): the export writes nothing and the agent is signed in by a session cookie
made here, not by the sign-in form (which records the sign-in). ``--copy`` works on a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as `python bench/export.py`, Python puts bench/ first on sys.path, where bench/queue.py
# would shadow the standard library's `queue`: the repository's root takes its place.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from sqlalchemy import select

from bench import _seed
from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.models import Agent

TARGET_MB = 250


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(client: Any, path: str) -> dict[str, Any]:
    started = time.perf_counter()
    response = client.get(path, buffered=False)
    assert response.status_code == 200, response.status_code
    first_row_s: float | None = None
    rows = -1  # the header
    size = 0
    peak_now = 0.0
    with open(os.devnull, "wb") as sink:
        for n, chunk in enumerate(response.iter_encoded()):
            if n == 1 and first_row_s is None:
                first_row_s = time.perf_counter() - started
            rows += chunk.count(b"\r\n")
            size += len(chunk)
            sink.write(chunk)
            if n % 50 == 0:
                peak_now = max(peak_now, rss_mb())
    response.close()
    seconds = time.perf_counter() - started
    return {
        "path": path,
        "rows": rows,
        "mb_written": round(size / 2**20, 1),
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "first_row_s": round(first_row_s or 0.0, 3),
        "rss_sampled_peak_mb": round(max(peak_now, rss_mb()), 1),
        "ru_maxrss_mb": round(peak_rss_mb(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--copy", action="store_true", help="Export from a copy of the cache.")
    args = parser.parse_args(argv)
    path = _seed.db_path(args.tickets, "queue")
    if not path.exists():
        _seed.seed_database(args.tickets)
    with tempfile.TemporaryDirectory() as instance:
        if args.copy:
            target = Path(instance) / path.name
            shutil.copyfile(path, target)
            url = f"sqlite:///{target}"
        else:
            url = f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"
        app = create_app(
            {
                "DATABASE_URL": url,
                "INSTANCE_PATH": instance,
                "SECRET_KEY": "bench",
                "WTF_CSRF_ENABLED": False,
                "WORKER_ENABLED": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        client = app.test_client()
        with app.app_context():
            agent = db.session.scalar(select(Agent).where(Agent.email == _seed.BENCH_AGENT_EMAIL))
            assert agent is not None, "the cache has no bench agent"
            user_id = agent.get_id()
            db.session.rollback()
        # Flask-Login's session as the sign-in form leaves it; its "strong" protection (a hash
        # of address and user agent) is off for this client, which made no sign-in request.
        app.login_manager.session_protection = None  # type: ignore[attr-defined]
        with client.session_transaction() as sess:
            sess["_user_id"] = user_id
            sess["_fresh"] = True
        probe = client.get("/agent/queue/export.csv?view=all&status=nonsense")
        if probe.status_code != 400:
            raise SystemExit(f"not signed in (HTTP {probe.status_code})")
        baseline = rss_mb()
        print(f"app ready, signed in: RSS {baseline:.0f} MB", flush=True)
        results = {
            "tickets": args.tickets,
            "baseline_rss_mb": round(baseline, 1),
            "target_rss_mb": TARGET_MB,
            "runs": [
                run(client, "/agent/queue/export.csv?view=all"),
                run(client, "/agent/customers/export.csv"),
            ],
            "cores": os.cpu_count(),
            "load_1min_at_end": round(os.getloadavg()[0], 2),
        }
    for r in results["runs"]:
        verdict = "OK" if r["ru_maxrss_mb"] < TARGET_MB else "OVER"
        print(
            f"{r['path']}: {r['rows']:,} rows in {r['seconds']} s ({r['rows_per_s']:,} rows/s), "
            f"first row after {r['first_row_s']} s, {r['mb_written']} MB; peak RSS "
            f"{r['ru_maxrss_mb']} MB (target < {TARGET_MB} MB: {verdict})"
        )
    out = _seed.RESULTS / f"export-{args.tickets}.results.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
