"""The worker's webhook loop (a service of the worker: ``worker.register_service``).

Every ``WEBHOOK_POLL_SECONDS``, and at once when an answer comes back, it fans new events out
into deliveries (``services/webhook_fanout.py``) and sends what is due
(``services/webhook_delivery.py``), each delivery in a thread of its own, at most
``WEBHOOK_CONCURRENCY`` at once; it forgets old deliveries after ``WEBHOOK_LOG_DAYS``.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import delete

from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.models import DeliveryState, WebhookDelivery
from helpdesk.services import webhook_http
from helpdesk.services.webhook_delivery import Job, anything_due, claim, record_all, send
from helpdesk.services.webhook_fanout import fan_out_new
from helpdesk.services.webhook_settings import setting

log = logging.getLogger("helpdesk.webhooks")


class _Dispatcher:
    """Deliveries in flight, each sent in a thread of its own (a greenlet under gevent), at most
    ``WEBHOOK_CONCURRENCY`` at once, so a slow receiver never holds up the worker's round. The
    answers wait in ``done`` and the worker's next round records them all in one transaction,
    the same one that claims what is due next (a ticket's next delivery among it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.done: list[tuple[Job, dict[str, str], webhook_http.Answer]] = []
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.threads = 0
        self.wake = threading.Event()  # an answer came back: record it, send the next

    def submit(self, app: Flask, job: Job) -> None:
        with self.lock:
            self.in_flight += 1
            # Threads are started as needed and then kept (starting one costs more than a
            # delivery's own CPU), never more than the concurrency allows.
            start = self.threads < self.in_flight
            if start:
                self.threads += 1
        if start:
            threading.Thread(
                target=self._loop, args=(app,), name="webhook-delivery", daemon=True
            ).start()
        self.jobs.put(job)

    def _loop(self, app: Flask) -> None:
        while True:
            self.run(app, self.jobs.get())

    def run(self, app: Flask, job: Job) -> None:
        try:
            headers, answer = send(app, job)
        except Exception as exc:  # a bug must not leave the slot taken
            log.exception("webhook delivery %s failed", job.delivery_id)
            headers, answer = {}, webhook_http.Answer(None, b"", 0, f"{type(exc).__name__}")
        with self.lock:
            self.done.append((job, headers, answer))
            self.in_flight -= 1
        self.wake.set()


def _dispatcher(app: Flask) -> _Dispatcher:
    dispatcher: _Dispatcher = app.extensions.setdefault("helpdesk.webhooks", _Dispatcher())
    return dispatcher


def deliver_due(app: Flask) -> int:
    """One round of the loop: record the answers that came in, then start sending what is due
    (without waiting for the answers); returns how many were started."""
    dispatcher = _dispatcher(app)
    with dispatcher.lock:
        finished, dispatcher.done = dispatcher.done, []
        room = int(setting(app, "WEBHOOK_CONCURRENCY")) - dispatcher.in_flight
    if not finished:
        if room <= 0 or not anything_due(app):
            return 0
        _prune(app)
    with db.transaction(app) as session:
        if finished:
            record_all(app, session, finished)
        jobs = claim(app, session, room) if room > 0 else []
    for job in jobs:
        dispatcher.submit(app, job)
    return len(jobs)


def start_service(app: Flask, stop: threading.Event) -> threading.Thread:
    """The webhooks' own loop among the worker's services (``worker.register_service``): in
    ``helpdesk serve`` it runs in the worker process beside the IMAP watchers, with a CPU share
    of its own instead of waiting behind the web's requests in the web process's loop; a
    separate ``helpdesk worker`` runs it too. Every ``WEBHOOK_POLL_SECONDS`` (and at once when
    an answer comes back) it fans out new events and sends what is due."""
    dispatcher = _dispatcher(app)
    poll = float(setting(app, "WEBHOOK_POLL_SECONDS"))

    def loop() -> None:
        while not stop.is_set():
            try:
                with app.app_context():
                    done = fan_out_new(app) + deliver_due(app)
            except Exception:
                log.exception("webhook delivery round failed; it will retry")
                done = 0
            if not done:
                dispatcher.wake.wait(poll)
                dispatcher.wake.clear()

    thread = threading.Thread(target=loop, name="webhooks", daemon=True)
    thread.start()
    return thread


def _prune(app: Flask) -> None:
    """Forget delivered and dead deliveries older than ``WEBHOOK_LOG_DAYS`` (hourly)."""
    now = utcnow()
    last: datetime | None = app.extensions.get("helpdesk.webhooks.pruned")
    if last is not None and now - last < timedelta(hours=1):
        return
    app.extensions["helpdesk.webhooks.pruned"] = now
    cutoff = now - timedelta(days=float(setting(app, "WEBHOOK_LOG_DAYS")))
    with db.transaction(app) as session:
        session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.state.in_([DeliveryState.DELIVERED, DeliveryState.DEAD]),
                WebhookDelivery.created_at < cutoff,
            )
        )
