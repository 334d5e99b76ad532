"""The worker: periodic tasks (outbox delivery, timers, the KB index) and long-running services
(the IMAP watchers: mail fetching).

``helpdesk worker`` runs both alone. ``helpdesk serve`` runs the tasks as a thread (a greenlet
under gevent) of the web process and the services in a worker process of their own
(:mod:`helpdesk.worker_link`), so that fetching a mail backlog can never hold up the web. A
commit that queues a reply wakes the tasks at once (:func:`kick`; a commit in serve's worker
process reaches the web process over the link); a separate ``helpdesk worker`` polls every
``WORKER_POLL_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask

log = logging.getLogger("helpdesk.worker")

_wake = threading.Event()
SLOW_TASK_SECONDS = 1.0

Task = Callable[[Flask], int]


def kick() -> None:
    """Wake the in-process worker now (called after a commit that queued work)."""
    _wake.set()


def register_task(app: Flask, task: Task) -> None:
    """Add a periodic task (returns how much it did; non-zero means "run again at once")."""
    app.extensions.setdefault("helpdesk.worker_tasks", []).append(task)


Service = Callable[[Flask, threading.Event], threading.Thread]


def register_service(app: Flask, service: Service) -> None:
    """Add a long-running service (e.g. IMAP IDLE watchers) started with the worker loop.

    ``service(app, stop)`` starts its thread and returns it; it must end soon after ``stop``
    is set, and the worker joins it before returning.
    """
    app.extensions.setdefault("helpdesk.worker_services", []).append(service)


def consume_events(app: Flask) -> int:
    """Bring every registered durable consumer of the event stream up to date."""
    from helpdesk.extensions import db
    from helpdesk.services import stream

    consumers = stream.registered_consumers()
    if not consumers:
        return 0
    # A read first, every round (no write lock on SQLite): only consumers behind the stream's
    # newest event take their position's lock. An idle round of several consumers was as many
    # write transactions, twice a second, each a moment the web's writers wait behind.
    from sqlalchemy import select

    from helpdesk.db import read_only_transactions
    from helpdesk.models import EventConsumer

    with read_only_transactions(), db.transaction(app) as session:
        newest = stream.last_id(session)
        positions = dict(session.execute(select(EventConsumer.name, EventConsumer.last_id)).all())
    behind = {c.name for c in consumers if positions.get(c.name, -1) < newest}
    if not behind:
        return 0
    return stream.run_consumers(lambda: db.transaction(app), names=behind)


def run_once(app: Flask) -> int:
    from helpdesk.services import outbox

    done = 0
    with app.app_context():
        tasks: list[Task] = [
            outbox.drain,
            consume_events,
            *app.extensions.get("helpdesk.worker_tasks", []),
        ]
        for task in tasks:
            started = time.monotonic()
            try:
                done += task(app)
            except Exception:
                # The worker never dies: a bad mail, a full disk, a DB hiccup is logged and the
                # next round tries again.
                log.exception("worker task %s failed", getattr(task, "__name__", task))
            took = time.monotonic() - started
            if took > SLOW_TASK_SECONDS:
                # Everything queued waits behind a slow task (a chat line for the outbox): say so.
                log.warning("worker task %s took %.1f s", getattr(task, "__name__", task), took)
    return done


def run_forever(
    app: Flask, stop: threading.Event, *, tasks: bool = True, services: bool = True
) -> None:
    """Run the tasks (``tasks``) and the services (``services``) until ``stop`` is set."""
    poll = float(app.config["WORKER_POLL_SECONDS"])
    parts = ([f"tasks, poll every {poll:.1f}s"] if tasks else []) + (
        ["services"] if services else []
    )
    log.info("worker started (%s)", " and ".join(parts))
    starters = app.extensions.get("helpdesk.worker_services", []) if services else []
    started = [start(app, stop) for start in starters]
    while not stop.is_set():
        _wake.clear()
        done = run_once(app) if tasks else 0
        if done:
            continue
        _wake.wait(poll)
    for thread in started:
        thread.join(timeout=30)
    log.info("worker stopped")


def start_thread(app: Flask, *, services: bool = True) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever,
        args=(app, stop),
        kwargs={"services": services},
        name="helpdesk-worker",
        daemon=True,
    )
    thread.start()
    return thread, stop
