"""Ticket import through the REST API (issue #14): ``POST /api/v1/imports/tickets``,
target >= 1,000 tickets/s on SQLite in bulk.

A real `helpdesk serve` (gevent web worker, its worker process) on a fresh SQLite file or a
throwaway PostgreSQL cluster; an admin's admin token; ``--tickets`` realistic tickets (default
20,000: varied English and Bengali subjects and bodies, 1-8 messages each with agents' answers
and internal notes, Cc'd customers, addresses that come back, every status, tags, spanning
2016-2024 with the busy days around Eid, Pohela Boishakh, Victory Day, Christmas and the new
year) posted one request after another in requests of ``--batch`` tickets (500-1,000), each
body encoded before the clock starts. The rate is tickets per second of wall time from the
first request to the last answer; also p50/p95 per request and the server's CPU per 1,000
tickets (every process of `helpdesk serve`). Afterwards the import is checked where a user
would look: the count, a full-text search, the queue's first page.

    .venv/bin/python bench/api_import.py                          # SQLite, 20,000 tickets
    .venv/bin/python bench/api_import.py --database both --tickets 5000 --batch 500
    .venv/bin/python bench/api_import.py --in-process --profile /tmp/import.prof  # no server
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any

TARGET_PER_S = 1000.0
DHAKA = timezone(timedelta(hours=6))

SUBJECTS_EN = [
    "Order {n} has not arrived",
    "Refund for order {n}",
    "Cannot log in to my account",
    "Password reset link expired",
    "Charged twice for invoice {n}",
    "Wrong size delivered (order {n})",
    "How do I change my delivery address?",
    "App crashes when I open the cart",
    "Discount code EID{n} does not work",
    "Cancel my subscription please",
    "Invoice {n}: VAT number missing",
    "Courier says address not found",
]
SUBJECTS_BN = [
    "অর্ডার {n} এখনও পৌঁছায়নি",
    "বিকাশ পেমেন্ট ফেরত চাই",
    "পাসওয়ার্ড রিসেট হচ্ছে না",
    "ভুল পণ্য পাঠানো হয়েছে",
    "ঈদের অফার কোড কাজ করছে না",
    "ডেলিভারি ঠিকানা পরিবর্তন করতে চাই",
    "অ্যাপ খুললেই বন্ধ হয়ে যাচ্ছে",
    "দুবার টাকা কেটে নেওয়া হয়েছে",
]
CUSTOMER_LINES_EN = [
    "Hello, I ordered on {day} and nothing has arrived yet. The tracking page has not changed.",
    "I was charged twice, please refund one of the payments. Receipt attached in my account.",
    "The link in your email says it expired. I tried three times.",
    "Thanks, that worked! One more question: can I change the delivery slot?",
    "Still waiting. This is the third time I write about this.",
    "The courier called but could not find the address. It is House 12, Road 5, Dhanmondi.",
]
CUSTOMER_LINES_BN = [
    "আমি {day} তারিখে অর্ডার করেছিলাম, এখনও কিছু পাইনি।",
    "বিকাশে দুবার টাকা কেটে নেওয়া হয়েছে, একটি ফেরত দিন।",
    "পাসওয়ার্ড রিসেটের লিংক কাজ করছে না।",
    "ধন্যবাদ, সমস্যার সমাধান হয়েছে।",
    "কুরিয়ার ঠিকানা খুঁজে পায়নি। বাড়ি ১২, রোড ৫, ধানমন্ডি।",
]
AGENT_LINES_EN = [
    "Sorry for the wait. I have asked the courier and will write again tomorrow.",
    "The duplicate payment has been refunded; it takes 3-5 working days to show.",
    "I have sent you a new link, valid for 24 hours.",
    "Your order is out for delivery today.",
]
AGENT_LINES_BN = [
    "অপেক্ষার জন্য দুঃখিত। কুরিয়ারের সঙ্গে কথা বলেছি।",
    "আপনার টাকা ফেরত পাঠানো হয়েছে, ৩-৫ কর্মদিবস লাগবে।",
    "নতুন লিংক পাঠানো হয়েছে, ২৪ ঘণ্টা কাজ করবে।",
]
NOTES = [
    "Courier ticket CR-{n} opened.",
    "Finance confirmed the refund.",
    "Customer called the hotline as well.",
    "গ্রাহক আগেও একই অভিযোগ করেছেন।",
]
TAGS = ["delivery", "refund", "login", "billing", "bkash", "eid", "courier", "app", "vip"]
NAMES_EN = ["Ayesha Khan", "John Smith", "Maria Garcia", "Tanvir Ahmed", "Sarah Lee", "Omar Faruk"]
NAMES_BN = ["রহিম উদ্দিন", "করিম হোসেন", "ফাতেমা বেগম", "নুসরাত জাহান", "সাকিব হাসান"]
# Busy days: Eid al-Fitr / al-Adha (approximate), Pohela Boishakh, Victory Day, Christmas, new year.
HOLIDAYS = [
    (2016, 7, 7), (2016, 9, 13), (2017, 6, 26), (2017, 9, 2), (2018, 6, 16), (2018, 8, 22),
    (2019, 6, 5), (2019, 8, 12), (2020, 5, 25), (2020, 8, 1), (2021, 5, 14), (2021, 7, 21),
    (2022, 5, 3), (2022, 7, 10), (2023, 4, 22), (2023, 6, 29), (2024, 4, 11), (2024, 6, 17),
]  # fmt: skip
FIXED = [(4, 14), (12, 16), (12, 25), (1, 1)]
STATUSES = ["closed"] * 10 + ["resolved"] * 6 + ["open"] * 2 + ["pending"] + ["new"]


def _start(rng: random.Random) -> datetime:
    if rng.random() < 0.3:  # around a holiday
        if rng.random() < 0.6:
            y, m, d = rng.choice(HOLIDAYS)
        else:
            (m, d), y = rng.choice(FIXED), rng.randint(2016, 2024)
        day = datetime(y, m, d, tzinfo=DHAKA) + timedelta(days=rng.randint(-3, 3))
    else:
        day = datetime(2016, 1, 1, tzinfo=DHAKA) + timedelta(days=rng.randint(0, 9 * 365))
    return day + timedelta(
        seconds=rng.randint(8 * 3600, 23 * 3600), microseconds=rng.randint(0, 999_999)
    )


def make_tickets(count: int, agent_emails: list[str], seed: int = 14) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pool = max(10, int(count * 0.6))  # some customers come back
    tickets = []
    for n in range(count):
        bengali = rng.random() < 0.4
        c = rng.randrange(pool)
        name = rng.choice(NAMES_BN if bengali else NAMES_EN)
        created = _start(rng)
        when = created
        messages: list[dict[str, Any]] = []
        for i in range(rng.randint(1, 8)):
            if i:
                when += timedelta(minutes=rng.randint(3, 3 * 24 * 60))
            agent_turn = i % 2 == 1
            if agent_turn and rng.random() < 0.2:
                messages.append(
                    {
                        "body": rng.choice(NOTES).format(n=n),
                        "created_at": when.isoformat(),
                        "author": "agent",
                        "agent": rng.choice(agent_emails),
                        "internal": True,
                    }
                )
                continue
            lines = (
                (AGENT_LINES_BN if bengali else AGENT_LINES_EN)
                if agent_turn
                else (CUSTOMER_LINES_BN if bengali else CUSTOMER_LINES_EN)
            )
            body = "\n\n".join(rng.choice(lines) for _ in range(rng.randint(1, 3)))
            message: dict[str, Any] = {
                "body": body.format(day=created.date().isoformat()),
                "created_at": when.isoformat(),
                "author": "agent" if agent_turn else "customer",
            }
            if agent_turn:
                message["agent"] = rng.choice(agent_emails)
            messages.append(message)
        ticket: dict[str, Any] = {
            "external_id": f"zd-{n}",
            "subject": rng.choice(SUBJECTS_BN if bengali else SUBJECTS_EN).format(n=10_000 + n),
            "status": rng.choice(STATUSES),
            "priority": rng.choice([1, 2, 2, 2, 3, 4]),
            "channel": rng.choice(["email"] * 6 + ["portal", "chat"]),
            "language": "bn" if bengali else "en",
            "created_at": created.isoformat(),
            "customer": {"email": f"customer{c}@example.com", "name": name},
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "messages": messages,
        }
        if rng.random() < 0.15:
            ticket["cc"] = [
                {"email": f"customer{rng.randrange(pool)}@example.com"}
                for _ in range(rng.randint(1, 2))
            ]
        tickets.append(ticket)
    return tickets


def _bodies(tickets: list[dict[str, Any]], batch: int) -> list[bytes]:
    return [
        json.dumps({"tickets": tickets[i : i + batch]}, ensure_ascii=False).encode()
        for i in range(0, len(tickets), batch)
    ]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its descendants (serve's web and worker)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    todo = [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _setup(session: Any, agents_n: int = 8) -> tuple[str, list[str]]:
    from helpdesk.models import AgentRole
    from helpdesk.services import api_tokens
    from helpdesk.services.agents import create_agent

    admin = create_agent(session, "importer@example.com", "Importer", None, AgentRole.ADMIN)
    emails = []
    for i in range(agents_n):
        email = f"agent{i}@example.com"
        create_agent(session, email, f"Agent {i}", None, AgentRole.AGENT)
        emails.append(email)
    session.flush()
    return api_tokens.create_token(session, admin, "import", "admin").secret, emails


def _check(get: Any, total: int) -> None:
    """What a user looks at afterwards: the queue, a search, the numbers."""
    page = get("/api/v1/tickets?sort=updated&limit=25")
    assert len(page["tickets"]) == 25, page
    found = get("/api/v1/tickets?q=পাসওয়ার্ড&limit=5")
    assert found["tickets"], "search found no imported ticket"
    assert get(f"/api/v1/tickets/{1000 + total}")["number"] == 1000 + total


def run_http(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    import requests

    from tests.channels.chat.servers import ChatSite

    with contextlib.ExitStack() as stack:
        instance = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-import-")))
        if kind == "postgresql":
            from tests.servers import PostgresCluster

            url = stack.enter_context(PostgresCluster()).create_database("bench_import")
        else:
            url = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
        site = ChatSite(
            instance=instance,
            database_url=url,
            extra_env={"HELPDESK_API_RATE_LIMIT": "100000 per minute"},
        )
        site.setup()
        stack.callback(site.close)
        secret, emails = site.run(_setup)
        bodies = _bodies(make_tickets(args.tickets, emails), args.batch)
        server = site.serve()
        http = requests.Session()
        http.headers.update(
            {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        )
        assert server.proc is not None
        pid = server.proc.pid
        cpu0 = _cpu_seconds(pid)
        times: list[float] = []
        started = time.perf_counter()
        for body in bodies:
            t0 = time.perf_counter()
            response = http.post(f"{server.url}/api/v1/imports/tickets", data=body, timeout=300)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 201, response.text[:500]
        wall = time.perf_counter() - started
        cpu = _cpu_seconds(pid) - cpu0

        def get(path: str) -> Any:
            r = http.get(f"{server.url}{path}", timeout=60)
            assert r.status_code == 200, r.text[:300]
            return r.json()

        _check(get, args.tickets)
        return {"rate": args.tickets / wall, "times": times, "cpu": cpu}


def run_in_process(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The same requests through the Flask test client (no server; for profiles)."""
    from helpdesk import create_app
    from helpdesk.extensions import db
    from helpdesk.migrate import upgrade

    with contextlib.ExitStack() as stack:
        instance = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-import-")))
        if kind == "postgresql":
            from tests.servers import PostgresCluster

            url = stack.enter_context(PostgresCluster()).create_database("bench_import")
        else:
            url = f"sqlite:///{instance / 'helpdesk.sqlite3'}"
        config = {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "WORKER_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "API_RATE_LIMIT": "100000000 per minute",
        }
        app = create_app(config)
        upgrade(app)
        with app.app_context():
            secret, emails = _setup(db.session)
            db.session.commit()
        bodies = _bodies(make_tickets(args.tickets, emails), args.batch)
        client = app.test_client(use_cookies=False)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        times: list[float] = []
        cpu0 = time.process_time()
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for body in bodies:
            t0 = time.perf_counter()
            response = client.post("/api/v1/imports/tickets", data=body, headers=headers)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 201, response.get_data(as_text=True)[:500]
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0

        def get(path: str) -> Any:
            r = client.get(path, headers=headers)
            assert r.status_code == 200, r.get_data(as_text=True)[:300]
            return r.get_json()

        _check(get, args.tickets)
        db.engine(app).dispose()
        return {"rate": args.tickets / wall, "times": times, "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    p.add_argument("--tickets", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=1000, help="tickets per request (<= 1,000)")
    p.add_argument("--in-process", action="store_true", help="Flask test client, no server")
    p.add_argument("--profile", help="cProfile output file (with --in-process)")
    args = p.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    sample = make_tickets(args.tickets, ["a@example.com"])
    messages = sum(len(t["messages"]) for t in sample)
    print(
        f"{args.tickets:,} tickets, {messages:,} messages, in requests of {args.batch}; "
        f"load average before {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    ok = True
    for kind in kinds:
        r = (run_in_process if args.in_process else run_http)(kind, args)
        good = r["rate"] >= TARGET_PER_S
        ok = ok and (good or kind != "sqlite")
        where = "in process (test client)" if args.in_process else "through helpdesk serve"
        print(
            f"{kind:10s} {where}: {r['rate']:6.0f} tickets/s (target >= {TARGET_PER_S:.0f}/s on "
            f"SQLite) {'MET' if good else 'UNDER'}; per request p50 "
            f"{statistics.median(r['times']):.2f} s, p95 {_pct(r['times'], 0.95):.2f} s; "
            f"server CPU {r['cpu'] / args.tickets * 1000:.2f} s per 1,000 tickets"
        )
    print(f"load average after {os.getloadavg()[0]:.2f}: figures taken on a shared machine")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
