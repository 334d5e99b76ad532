"""One visitor chat line in process: the server CPU and SQL statements of the ``chat.message``
handler's service work, without sockets, threads or the load generator of bench/chat.py.

An app on a fresh SQLite file (or ``--database-url``, e.g. an empty PostgreSQL database), one
agent online, and per round a new chat that the agent accepts; then ``--lines`` visitor lines,
each run as ``ChatNamespace.on_chat_message`` runs it: a new app context (so a new session, as
each Socket.IO event gets), the visitor's locale, the in-process SQLite write queue,
``visitor_chat``, ``visitor_message``, ``chat_line``, commit (with its ticket search index append
and the ticket summary built for events). Events go to a collecting publisher instead of
Socket.IO. Prints the process CPU per line (median of ``--rounds``; one unmeasured warm-up round
first) and the SQL statements per line (counted with a ``before_cursor_execute`` listener, BEGIN
included) next to the target, which is informal here: the handler's share of the 100 ms p99
budget of bench/chat.py, where ~1.6 ms/line is the bare python-socketio floor and the whole
server spends ~9 ms/line.

    .venv/bin/python bench/chat_line.py [--lines 500] [--rounds 5]
    .venv/bin/python bench/chat_line.py --database-url postgresql+psycopg://...  # empty database
    .venv/bin/python bench/chat_line.py --profile [--profile-top 40]   # cProfile of one round
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
import uuid
from typing import Any

from flask import Flask
from flask_babel import force_locale
from sqlalchemy import event

from channels.chat.lifecycle import start_chat, visitor_chat
from channels.chat.lines import visitor_message
from channels.chat.models import ChatStatus
from channels.chat.payloads import chat_line
from channels.chat.routing import accept
from channels.chat.settings import configure_chat_channel
from channels.chat.tokens import new_visitor
from helpdesk import create_app, realtime
from helpdesk.db import Base
from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole
from helpdesk.services import events
from helpdesk.services.agents import create_agent
from helpdesk.services.presence import agent_connected, set_presence

# Bench figures of the whole server (docs/performance.md, "Live chat"): the target is p99
# visitor -> agent <= 100 ms; the bare python-socketio server spends ~1.6 ms of CPU per line.
TARGET_P99_MS = 100.0
BARE_CPU_MS = 1.6

TEXTS = [
    "Hi, my order #4521 has not arrived yet, can you check the tracking number?",
    "আমার অর্ডার এখনও আসেনি। অনুগ্রহ করে দেখবেন?",
    "ok thanks",
    "The app crashes when I open settings on Android 14.",
    "I was charged twice for the same invoice, please refund one payment.",
]


class Counter:
    """SQL statements sent to the database (every ``cursor.execute``/``executemany``)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *_args: Any) -> None:
        self.n += 1


def setup(app: Flask) -> int:
    """One agent, online with a live connection; returns their id."""
    with app.app_context():
        s = db.session
        agent = create_agent(s, "ann@bench.test", "Ann", None, AgentRole.AGENT)
        configure_chat_channel(s, capacity=1000)
        agent_connected(s, agent, "sid-bench")
        set_presence(s, agent, "online")
        s.commit()
        return agent.id


def new_chat(app: Flask, agent_id: int) -> tuple[str, int]:
    """A chat started by a new visitor and accepted by the agent: ``(visitor_id, ticket_id)``."""
    with app.app_context():
        s = db.session
        visitor, _token = new_visitor()
        chat = start_chat(
            s, visitor_id=visitor, text="Hello, I need help", client_id=uuid.uuid4().hex,
            language="en",
        )  # fmt: skip
        agent = s.get(Agent, agent_id)
        assert agent is not None
        accept(s, chat, agent)
        s.commit()
        assert chat.status is ChatStatus.ACTIVE
        return visitor, chat.ticket_id


def line(app: Flask, visitor: str, ticket_id: int, text: str) -> dict[str, Any]:
    """One ``chat.message`` as ``ChatNamespace.on_chat_message`` runs it (no sockets)."""
    with app.app_context(), force_locale("en"):
        s = db.session
        chat = visitor_chat(s, visitor, ticket_id)
        received = visitor_message(s, chat, text=text, client_id=uuid.uuid4().hex, attachments=[])
        result = chat_line(received.message)
        s.commit()
        return result


def run_round(app: Flask, agent_id: int, lines: int) -> tuple[float, int, int]:
    """CPU seconds of ``lines`` lines on a new chat, their SQL statements and events."""
    visitor, ticket_id = new_chat(app, agent_id)
    counter.n = 0
    published.events.clear()
    start = time.process_time()
    for i in range(lines):
        line(app, visitor, ticket_id, TEXTS[i % len(TEXTS)])
    cpu = time.process_time() - start
    return cpu, counter.n, len(published.events)


counter = Counter()
published = events.EventRecorder()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=500, help="visitor lines per round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (median)")
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: a fresh SQLite file)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one round of lines")
    parser.add_argument("--profile-top", type=int, default=40)
    parser.add_argument("--profile-sort", default="tottime", help="pstats sort key")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as instance:
        url = args.database_url or f"sqlite:///{instance}/bench.sqlite3"
        app = create_app(
            {"DATABASE_URL": url, "INSTANCE_PATH": instance, "SECRET_KEY": "bench",
             "WORKER_ENABLED": False, "PASSWORD_HASH_PROFILE": "cheapest"}
        )  # fmt: skip
        # Events are collected, not emitted: no Socket.IO server runs here.
        events.remove_publisher(realtime._publish)
        events.add_publisher(published)
        engine = db.engine(app)
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
        event.listen(engine, "before_cursor_execute", counter)
        agent_id = setup(app)
        run_round(app, agent_id, min(args.lines, 50))  # warm-up: caches, statement compilation
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            cpu, _statements, _events = run_round(app, agent_id, args.lines)
            profiler.disable()
            print(f"profiled round: {cpu / args.lines * 1000:.2f} ms/line (with cProfile)")
            stats = pstats.Stats(profiler)
            stats.sort_stats(args.profile_sort).print_stats(args.profile_top)
            engine.dispose()
            return 0
        cpus: list[float] = []
        sql: list[float] = []
        sent: list[float] = []
        for _ in range(args.rounds):
            cpu, statements, n_events = run_round(app, agent_id, args.lines)
            cpus.append(cpu / args.lines * 1000)
            sql.append(statements / args.lines)
            sent.append(n_events / args.lines)
        engine.dispose()
    median = statistics.median(cpus)
    print(f"database: {engine.dialect.name}; {args.rounds} rounds of {args.lines} visitor lines")
    print(f"rounds (CPU ms/line): {' '.join(f'{c:.2f}' for c in cpus)}")
    print(
        f"CPU per line (median): {median:.2f} ms   "
        f"target: the handler's share of the {TARGET_P99_MS:.0f} ms p99 budget "
        f"(bare python-socketio server: {BARE_CPU_MS} ms/line for everything)"
    )
    print(f"SQL statements per line: {statistics.median(sql):.1f}")
    print(f"events published per line: {statistics.median(sent):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
