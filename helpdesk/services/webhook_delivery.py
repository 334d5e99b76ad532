"""Webhooks' delivery: one attempt's life, from claiming a due delivery to recording its answer.

:func:`claim` takes due deliveries in a short transaction (a lease; ``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so two workers never send one delivery at once), :func:`send` POSTs one with no
transaction open (``services/webhook_http.py``), :func:`record` / :func:`record_all` write the
answer. Deliveries with the same ordering key (the ticket) go strictly in order: one waits while
an earlier one of its ticket is pending or being sent, so a failing delivery holds back the
later ones of its ticket but no other ticket's. Failed attempts retry with exponential backoff
and jitter for ``WEBHOOK_RETRY_HOURS`` (24) from the first attempt, then the delivery is dead (an
admin may redeliver). A webhook whose attempts failed ``WEBHOOK_DISABLE_AFTER_FAILURES`` times
in a row over at least ``WEBHOOK_DISABLE_AFTER_HOURS`` is disabled and every active admin gets a
mail (outbox purpose ``webhook.disabled``).

Every request carries ``X-Helpdesk-Event``, ``X-Helpdesk-Delivery`` (the delivery's id),
``X-Helpdesk-Timestamp`` (Unix seconds) and ``X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" keyed with the secret>``. Delivery is at least once: receivers deduplicate
by the body's ``id`` (the event id). docs/webhooks.md has the receiver's side.

:func:`deliver_now` sends everything due in this thread (tests, tools); the worker's loop
(``services/webhook_service.py``) sends concurrently.
"""

from __future__ import annotations

import hmac
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from helpdesk import secrets as stored_secrets
from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole, DeliveryState, Webhook, WebhookDelivery
from helpdesk.services import webhook_http
from helpdesk.services.outbox import queue_mail
from helpdesk.services.webhook_settings import allowed_hosts, setting

log = logging.getLogger("helpdesk.webhooks")

DISABLED_PURPOSE = "webhook.disabled"
SIGNATURE_HEADER = "X-Helpdesk-Signature"
TIMESTAMP_HEADER = "X-Helpdesk-Timestamp"
EXCERPT_CHARS = 2000


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return "sha256=" + mac.hexdigest()


def _due(now: datetime) -> ColumnElement[bool]:
    """Waiting for its next attempt, or claimed by a worker whose lease ran out."""
    d = WebhookDelivery
    return or_(
        and_(d.state == DeliveryState.PENDING, d.next_attempt_at <= now),
        and_(d.state == DeliveryState.SENDING, d.lease_until < now),
    )


def anything_due(app: Flask) -> bool:
    """A cheap read (no write lock on SQLite) before the claiming transaction."""
    now = utcnow()
    with read_only_transactions(), db.transaction(app) as session:
        return session.scalar(select(WebhookDelivery.id).where(_due(now)).limit(1)) is not None


@dataclass
class Job:
    delivery_id: int
    attempt: int
    webhook_id: int
    url: str
    event_name: str
    body: bytes
    secret: str | None
    error: str | None = None


def claim(app: Flask, session: Session, limit: int) -> list[Job]:
    """Up to ``limit`` due deliveries whose ticket has none waiting before them, leased to this
    worker (state ``sending``, one attempt more), as the jobs to send after the commit."""
    now = utcnow()
    d = WebhookDelivery
    earlier = aliased(WebhookDelivery)
    waiting = exists().where(
        earlier.webhook_id == d.webhook_id,
        earlier.ordering_key == d.ordering_key,
        earlier.state.in_([DeliveryState.PENDING, DeliveryState.SENDING]),
        earlier.id < d.id,
    )
    query = (
        select(d, Webhook)
        .join(Webhook, Webhook.id == d.webhook_id)
        .where(
            Webhook.active.is_(True),
            _due(now),
            ~waiting,
        )
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=d)
    lease = timedelta(seconds=float(setting(app, "WEBHOOK_LEASE_SECONDS")))
    jobs: list[Job] = []
    secrets_by_hook: dict[int, str | None] = {}
    for row, webhook in session.execute(query):
        row.state = DeliveryState.SENDING
        row.lease_until = now + lease
        row.attempts += 1
        row.first_attempt_at = row.first_attempt_at or now
        row.last_attempt_at = now
        job = Job(
            row.id,
            row.attempts,
            webhook.id,
            webhook.url,
            row.event_name,
            row.request_body.encode("utf-8"),
            None,
        )
        if webhook.id not in secrets_by_hook:
            try:
                secrets_by_hook[webhook.id] = stored_secrets.decrypt(webhook.secret)
            except stored_secrets.SecretError as exc:
                secrets_by_hook[webhook.id] = None
                log.error("webhook %s: %s", webhook.id, exc)
        job.secret = secrets_by_hook[webhook.id]
        if job.secret is None:
            job.error = "the secret cannot be decrypted (was SECRET_KEY changed?); rotate it"
        jobs.append(job)
    return jobs


def _headers(job: Job) -> dict[str, str]:
    timestamp = str(int(utcnow().timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "Helpdesk-Webhooks/1",
        "X-Helpdesk-Event": job.event_name,
        "X-Helpdesk-Delivery": str(job.delivery_id),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(job.secret or "", timestamp, job.body),
    }


def send(app: Flask, job: Job) -> tuple[dict[str, str], webhook_http.Answer]:
    """One signed POST (no transaction open): the request's headers and the answer."""
    if job.error is not None:
        return {}, webhook_http.Answer(None, b"", 0, job.error)
    headers = _headers(job)
    answer = webhook_http.post(
        job.url,
        job.body,
        headers,
        allowed=allowed_hosts(app),
        connect_timeout=float(setting(app, "WEBHOOK_CONNECT_TIMEOUT")),
        read_timeout=float(setting(app, "WEBHOOK_READ_TIMEOUT")),
        max_bytes=int(setting(app, "WEBHOOK_RESPONSE_MAX_BYTES")),
    )
    return headers, answer


def backoff(app: Flask, attempts: int) -> timedelta:
    """The wait after failed attempt number ``attempts``: doubling, capped, with jitter."""
    base = float(setting(app, "WEBHOOK_BACKOFF_BASE_SECONDS"))
    cap = float(setting(app, "WEBHOOK_BACKOFF_MAX_SECONDS"))
    seconds = min(base * (2 ** min(max(attempts - 1, 0), 30)), cap)
    # Jitter: a receiver that comes back is not hit by every waiting ticket in one instant.
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def record(
    app: Flask, session: Session, job: Job, headers: dict[str, str], answer: webhook_http.Answer
) -> None:
    """The answer to ``job``: delivered, a retry later, dead; the webhook's run of failures."""
    row = session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    if row is None or row.state != DeliveryState.SENDING or row.attempts != job.attempt:
        return  # deleted, or taken over by another worker after our lease ran out
    webhook = session.get(Webhook, row.webhook_id, with_for_update=True)
    if webhook is None:
        return
    _apply(app, session, row, webhook, headers, answer)


def record_all(
    app: Flask,
    session: Session,
    results: Sequence[tuple[Job, dict[str, str], webhook_http.Answer]],
) -> None:
    """:func:`record` for many answers with one read of their rows and webhooks."""
    ids = [job.delivery_id for job, _h, _a in results]
    rows_query = select(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
    hooks_query = select(Webhook).where(Webhook.id.in_({job.webhook_id for job, _h, _a in results}))
    if session.get_bind().dialect.name == "postgresql":
        rows_query = rows_query.with_for_update()
        hooks_query = hooks_query.with_for_update()
    hooks = {w.id: w for w in session.scalars(hooks_query.order_by(Webhook.id))}
    rows = {r.id: r for r in session.scalars(rows_query.order_by(WebhookDelivery.id))}
    for job, headers, answer in results:
        row = rows.get(job.delivery_id)
        if row is None or row.state != DeliveryState.SENDING or row.attempts != job.attempt:
            continue
        webhook = hooks.get(row.webhook_id)
        if webhook is not None:
            _apply(app, session, row, webhook, headers, answer)


def _apply(
    app: Flask,
    session: Session,
    row: WebhookDelivery,
    webhook: Webhook,
    headers: dict[str, str],
    answer: webhook_http.Answer,
) -> None:
    now = utcnow()
    row.lease_until = None
    row.request_headers = headers
    row.response_code = answer.status
    row.latency_ms = answer.latency_ms
    row.response_excerpt = answer.body[: EXCERPT_CHARS * 2].decode("utf-8", "replace")[
        :EXCERPT_CHARS
    ]
    ok = answer.status is not None and 200 <= answer.status < 300
    if ok:
        row.state = DeliveryState.DELIVERED
        row.delivered_at = now
        row.error = None
        webhook.consecutive_failures = 0
        webhook.failing_since = None
        webhook.last_success_at = now
        return
    row.error = answer.error or f"HTTP {answer.status}"
    window = timedelta(hours=float(setting(app, "WEBHOOK_RETRY_HOURS")))
    first = row.first_attempt_at or now
    if now >= first + window:
        row.state = DeliveryState.DEAD  # the ticket's next delivery goes on
    else:
        row.state = DeliveryState.PENDING
        row.next_attempt_at = min(now + backoff(app, row.attempts), first + window)
    webhook.consecutive_failures += 1
    webhook.failing_since = webhook.failing_since or now
    _maybe_disable(app, session, webhook, now)


def _maybe_disable(app: Flask, session: Session, webhook: Webhook, now: datetime) -> None:
    failures = int(setting(app, "WEBHOOK_DISABLE_AFTER_FAILURES"))
    hours = float(setting(app, "WEBHOOK_DISABLE_AFTER_HOURS"))
    since = webhook.failing_since or now
    if not webhook.active or webhook.consecutive_failures < failures:
        return
    if now - since < timedelta(hours=hours):
        return
    webhook.active = False
    webhook.disabled_at = now
    webhook.disabled_reason = "failures"
    log.warning(
        "webhook %s (%s) disabled after %s failed attempts",
        webhook.id,
        webhook.url,
        webhook.consecutive_failures,
    )
    admins = session.scalars(
        select(Agent).where(Agent.role == AgentRole.ADMIN, Agent.active.is_(True))
    )
    for admin in admins:
        queue_mail(
            session,
            DISABLED_PURPOSE,
            admin.email,
            language=admin.language,
            payload={
                "webhook_id": webhook.id,
                "url": webhook.url,
                "failures": webhook.consecutive_failures,
                "since": since.isoformat(),
                "agent_id": admin.id,
            },
        )


def deliver_now(app: Flask, limit: int = 50) -> int:
    """Claim, send and record what is due, in this thread, until nothing is due; returns the
    attempts made (tests, tools; the worker's loop sends concurrently:
    :func:`helpdesk.services.webhook_service.deliver_due`)."""
    total = 0
    while True:
        with db.transaction(app) as session:
            jobs = claim(app, session, limit)
        if not jobs:
            return total
        for job in jobs:
            headers, answer = send(app, job)
            with db.transaction(app) as session:
                record(app, session, job, headers, answer)
        total += len(jobs)
