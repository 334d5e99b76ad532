"""Webhooks: the event stream's events, POSTed and signed to URLs admins register.

**Registering** (:func:`create_webhook`, admins only): a URL (checked against request forgery,
``services/webhook_http.py``), the event names, and a generated secret returned once and stored
encrypted. The web admin pages and ``POST /api/v1/webhooks`` both call these functions.

**Fan-out** (:func:`fan_out`, the durable stream consumer ``webhooks``): each event becomes one
``WebhookDelivery`` per active webhook subscribed to it, written in the consumer's transaction
with its new position, so an event fans out exactly once even across crashes. The body is fixed
then: ``{"id": event id, "event", "created_at", "data": the object as the API's GET returns it,
"actor", "details": the event's own data}``. ``data`` comes from the serializer registered for
the event's subject type (:func:`register_payload`; the API registers its own), else the
event's data (a ticket: :func:`helpdesk.services.queue.ticket_row`).

**Delivery** (:func:`deliver_due`, a worker task; :func:`deliver_now` in tests and tools):
claims due deliveries in a short transaction (a lease; ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so two workers never send one delivery at once), POSTs each with no transaction open,
then records the answer. Deliveries with the same ordering key (the ticket) go strictly in
order: one waits while an earlier one of its ticket is pending or being sent, so a failing
delivery holds back the later ones of its ticket but no other ticket's. Failed attempts retry
with exponential backoff and jitter for ``WEBHOOK_RETRY_HOURS`` (24) from the first attempt,
then the delivery is dead (an admin may redeliver). A webhook whose attempts failed
``WEBHOOK_DISABLE_AFTER_FAILURES`` times in a row over at least ``WEBHOOK_DISABLE_AFTER_HOURS``
is disabled and every active admin gets a mail (outbox purpose ``webhook.disabled``).

Every request carries ``X-Helpdesk-Event``, ``X-Helpdesk-Delivery`` (the delivery's id),
``X-Helpdesk-Timestamp`` (Unix seconds) and ``X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" keyed with the secret>``. Delivery is at least once: receivers deduplicate
by the body's ``id`` (the event id). docs/webhooks.md has the receiver's side.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import random
import secrets
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from helpdesk import secrets as stored_secrets
from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    AgentRole,
    DeliveryState,
    EventConsumer,
    Ticket,
    Webhook,
    WebhookDelivery,
)
from helpdesk.services import stream, webhook_http
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import Forbidden, NotFound, ServiceError
from helpdesk.services.outbox import queue_mail
from helpdesk.services.queue import ticket_row

log = logging.getLogger("helpdesk.webhooks")

CONSUMER = "webhooks"
DISABLED_PURPOSE = "webhook.disabled"
SIGNATURE_HEADER = "X-Helpdesk-Signature"
TIMESTAMP_HEADER = "X-Helpdesk-Timestamp"

# The events a webhook may subscribe to (docs/architecture.md#the-event-stream).
EVENT_TYPES: tuple[str, ...] = (
    "ticket.created",
    "ticket.updated",
    "ticket.merged",
    "ticket.split",
    "message.created",
    "message.delivery",
    "customer.created",
    "customer.updated",
    "customer.merged",
    "organization.created",
    "article.created",
    "article.updated",
    "chat.accepted",
    "chat.declined",
    "chat.transferred",
    "chat.ended",
    "chat.transcript",
    "chat.offer_expired",
)

DEFAULTS: dict[str, Any] = {
    "WEBHOOK_ALLOWED_HOSTS": "",
    "WEBHOOK_BACKOFF_BASE_SECONDS": 10.0,
    "WEBHOOK_BACKOFF_MAX_SECONDS": 3600.0,
    "WEBHOOK_RETRY_HOURS": 24.0,
    "WEBHOOK_DISABLE_AFTER_FAILURES": 20,
    "WEBHOOK_DISABLE_AFTER_HOURS": 24.0,
    "WEBHOOK_LEASE_SECONDS": 60.0,
    "WEBHOOK_CONNECT_TIMEOUT": 5.0,
    "WEBHOOK_READ_TIMEOUT": 10.0,
    "WEBHOOK_RESPONSE_MAX_BYTES": 64 * 1024,
    "WEBHOOK_CONCURRENCY": 32,
    "WEBHOOK_POLL_SECONDS": 0.2,
    "WEBHOOK_LOG_DAYS": 30.0,
}
EXCERPT_CHARS = 2000


def setting(app: Flask | None, key: str) -> Any:
    config = (app or current_app).config
    value = config.get(key)
    return DEFAULTS[key] if value is None else value


def allowed_hosts(app: Flask | None = None) -> set[str]:
    return webhook_http.allowed_hosts(setting(app, "WEBHOOK_ALLOWED_HOSTS"))


# --- what a delivery carries -----------------------------------------------------------------

PayloadFn = Callable[[Session, int], dict[str, Any] | None]
_payloads: dict[str, PayloadFn] = {}


def register_payload(subject_type: str, fn: PayloadFn) -> None:
    """``data`` of a delivery about a ``subject_type`` (``"ticket"``, ``"message"``, ...):
    ``fn(session, subject_id)`` returns the object as the API's GET returns it (None: gone)."""
    _payloads[subject_type] = fn


def _ticket_payload(session: Session, ticket_id: int) -> dict[str, Any] | None:
    ticket = session.get(
        Ticket,
        ticket_id,
        options=[
            joinedload(Ticket.customer),
            joinedload(Ticket.assignee),
            joinedload(Ticket.team),
            selectinload(Ticket.tags),
        ],
    )
    return ticket_row(ticket) if ticket is not None else None


register_payload("ticket", _ticket_payload)


def _data(session: Session, event: stream.StoredEvent) -> dict[str, Any]:
    fn = _payloads.get(event.subject_type)
    data = fn(session, event.subject_id) if fn is not None else None
    if data is not None:
        return data
    # No serializer, or the object is gone: what the event itself says.
    data = {"type": event.subject_type, "id": event.subject_id, **event.data}
    if event.ticket_id is not None:
        ticket = session.get(Ticket, event.ticket_id)
        data["ticket"] = (
            {"id": ticket.id, "number": ticket.number}
            if ticket is not None
            else {"id": event.ticket_id}
        )
    return data


def envelope(session: Session, event: stream.StoredEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event": event.name,
        "created_at": event.occurred_at.isoformat(),
        "data": _data(session, event),
        "actor": {"type": event.actor_type, "id": event.actor_id},
        "details": event.data,
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return "sha256=" + mac.hexdigest()


def ordering_key(event: stream.StoredEvent) -> str:
    if event.ticket_id is not None:
        return f"ticket:{event.ticket_id}"
    return f"{event.subject_type}:{event.subject_id}"


# --- registering (admins) --------------------------------------------------------------------


def _require_admin(actor: Agent | None) -> None:
    if actor is None or not actor.is_admin:
        raise Forbidden(_("Only administrators manage webhooks."))


def _clean_events(events: Sequence[str]) -> list[str]:
    chosen = [str(e).strip() for e in events if str(e).strip()]
    if not chosen:
        raise ServiceError(_("Choose at least one event."), code="invalid")
    unknown = sorted({e for e in chosen if e not in EVENT_TYPES})
    if unknown:
        raise ServiceError(
            _("Unknown events: %(names)s.", names=", ".join(unknown)), code="invalid"
        )
    return sorted(set(chosen), key=EVENT_TYPES.index)


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > 2000:
        raise ServiceError(_("The URL is too long."), code="invalid")
    try:
        webhook_http.check_url(url, allowed_hosts())
    except webhook_http.UnsafeUrl as exc:
        raise ServiceError(str(exc), code="invalid") from None
    return url


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_webhook(
    session: Session, actor: Agent | None, url: str, events: Sequence[str]
) -> tuple[Webhook, str]:
    """Register ``url`` for ``events``; returns the webhook and its secret (shown once)."""
    _require_admin(actor)
    secret = _new_secret()
    webhook = Webhook(
        url=_clean_url(url),
        events=_clean_events(events),
        secret=stored_secrets.encrypt(secret),
        active=True,
        consecutive_failures=0,
        # Only what happens from now on (events committed later have larger ids).
        after_event_id=stream.last_id(session),
        created_by_id=actor.id if actor is not None else None,
    )
    session.add(webhook)
    session.flush()
    _ensure_consumer(session, webhook.after_event_id)
    return webhook, secret


def _ensure_consumer(session: Session, position: int) -> None:
    """The fan-out consumer starts at the stream's end the first time it runs (an upgraded
    installation's history goes to no webhook); a webhook made before that first run must still
    get the events after it, so the position is set now if the consumer has none."""
    conn = session.connection()
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(EventConsumer)
        .values(name=CONSUMER, last_id=position, updated_at=utcnow())
        .on_conflict_do_nothing()
    )


def list_webhooks(session: Session, actor: Agent | None) -> list[Webhook]:
    _require_admin(actor)
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def get_webhook(session: Session, actor: Agent | None, webhook_id: int) -> Webhook:
    _require_admin(actor)
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(_("Webhook not found."))
    return webhook


def update_webhook(
    session: Session,
    actor: Agent | None,
    webhook: Webhook,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
) -> Webhook:
    _require_admin(actor)
    if url is not None and url.strip() != webhook.url:
        webhook.url = _clean_url(url)
    if events is not None:
        webhook.events = _clean_events(events)
    session.flush()
    return webhook


def set_active(session: Session, actor: Agent | None, webhook: Webhook, active: bool) -> None:
    """Enable or disable. Enabling clears the run of failures and sends what is still pending
    now, each delivery with a fresh retry window; a disabled webhook gets no new deliveries."""
    _require_admin(actor)
    if active == webhook.active:
        return
    webhook.active = active
    if active:
        webhook.disabled_reason = None
        webhook.disabled_at = None
        webhook.consecutive_failures = 0
        webhook.failing_since = None
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.webhook_id == webhook.id,
                WebhookDelivery.state == DeliveryState.PENDING,
            )
            .values(next_attempt_at=utcnow(), first_attempt_at=None)
        )
        wake_worker_on_commit(session)
    else:
        webhook.disabled_at = utcnow()
    session.flush()


def rotate_secret(session: Session, actor: Agent | None, webhook: Webhook) -> str:
    """A new secret (returned once); every later attempt is signed with it."""
    _require_admin(actor)
    secret = _new_secret()
    webhook.secret = stored_secrets.encrypt(secret)
    session.flush()
    return secret


def delete_webhook(session: Session, actor: Agent | None, webhook: Webhook) -> None:
    """Delete it with its delivery log."""
    _require_admin(actor)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    session.delete(webhook)
    session.flush()


def deliveries(
    session: Session,
    actor: Agent | None,
    webhook: Webhook,
    *,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[WebhookDelivery], int | None]:
    """The delivery log, newest first: a page and the cursor of the next (older) page."""
    _require_admin(actor)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def get_delivery(
    session: Session, actor: Agent | None, webhook: Webhook, delivery_id: int
) -> WebhookDelivery:
    _require_admin(actor)
    row = session.get(WebhookDelivery, delivery_id)
    if row is None or row.webhook_id != webhook.id:
        raise NotFound(_("Delivery not found."))
    return row


def redeliver(session: Session, actor: Agent | None, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the same body again as a new delivery (after any still waiting for its ticket)."""
    _require_admin(actor)
    again = WebhookDelivery(
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_name=delivery.event_name,
        ordering_key=delivery.ordering_key,
        redelivery_of_id=delivery.id,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        request_body=delivery.request_body,
        request_headers={},
    )
    session.add(again)
    session.flush()
    wake_worker_on_commit(session)
    return again


# --- fan-out: the stream consumer --------------------------------------------------------------

_Hook = tuple[int, list[str], int]  # id, events, after_event_id
# The active webhooks, read once per batch by prepare() (sessions of the worker's batches are
# made per transaction, so an entry lives as long as its batch).
_batch_hooks: weakref.WeakKeyDictionary[Session, list[_Hook]] = weakref.WeakKeyDictionary()
# The batch's tickets, held so the session's (weak) identity map keeps them for session.get().
_batch_tickets: weakref.WeakKeyDictionary[Session, list[Ticket]] = weakref.WeakKeyDictionary()


def _active_hooks(session: Session) -> list[_Hook]:
    rows = session.execute(
        select(Webhook.id, Webhook.events, Webhook.after_event_id).where(Webhook.active)
    ).all()
    return [(r.id, list(r.events or []), int(r.after_event_id)) for r in rows]


def prepare(session: Session, events: Sequence[stream.StoredEvent]) -> None:
    """Once per consumer batch: the active webhooks and the tickets the batch's events will
    carry, each in one query (under gevent on PostgreSQL every query is a turn given to the
    web's requests: one per event made the fan-out fall behind under load)."""
    with session.no_autoflush:
        hooks = _batch_hooks[session] = _active_hooks(session)
        wanted = {name for _id, names, _after in hooks for name in names}
        ticket_ids = {
            e.subject_id for e in events if e.subject_type == "ticket" and e.name in wanted
        } | {e.ticket_id for e in events if e.ticket_id is not None and e.name in wanted}
        if ticket_ids and _payloads.get("ticket") is _ticket_payload:
            _batch_tickets[session] = list(
                session.scalars(
                    select(Ticket)
                    .where(Ticket.id.in_(ticket_ids))
                    .options(
                        joinedload(Ticket.customer),
                        joinedload(Ticket.assignee),
                        joinedload(Ticket.team),
                        selectinload(Ticket.tags),
                    )
                ).unique()
            )  # session.get() finds them in the identity map


def fan_out(session: Session, event: stream.StoredEvent) -> None:
    """One delivery per active webhook subscribed to ``event`` (the consumer's handler).

    The batch's deliveries are flushed once at its end (``stream.consume``), not before each
    event's reads: nothing read here depends on them."""
    with session.no_autoflush:
        hooks = _batch_hooks.get(session)
        if hooks is None:
            hooks = _active_hooks(session)
        targets = [
            hook_id for hook_id, names, after in hooks if event.name in names and event.id > after
        ]
        if not targets:
            return
        body = json.dumps(envelope(session, event), ensure_ascii=False, separators=(",", ":"))
    key = ordering_key(event)
    now = utcnow()
    session.add_all(
        WebhookDelivery(
            webhook_id=webhook_id,
            event_id=event.id,
            event_name=event.name,
            ordering_key=key,
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
            request_body=body,
            request_headers={},
        )
        for webhook_id in targets
    )


# --- delivery -----------------------------------------------------------------------------------


@dataclass
class _Job:
    delivery_id: int
    attempt: int
    webhook_id: int
    url: str
    event_name: str
    body: bytes
    secret: str | None
    error: str | None = None


def _claim(app: Flask, session: Session, limit: int) -> list[_Job]:
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
            or_(
                and_(d.state == DeliveryState.PENDING, d.next_attempt_at <= now),
                and_(d.state == DeliveryState.SENDING, d.lease_until < now),
            ),
            ~waiting,
        )
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=d)
    lease = timedelta(seconds=float(setting(app, "WEBHOOK_LEASE_SECONDS")))
    jobs: list[_Job] = []
    secrets_by_hook: dict[int, str | None] = {}
    for row, webhook in session.execute(query):
        row.state = DeliveryState.SENDING
        row.lease_until = now + lease
        row.attempts += 1
        row.first_attempt_at = row.first_attempt_at or now
        row.last_attempt_at = now
        job = _Job(
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


def _headers(job: _Job) -> dict[str, str]:
    timestamp = str(int(utcnow().timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "Helpdesk-Webhooks/1",
        "X-Helpdesk-Event": job.event_name,
        "X-Helpdesk-Delivery": str(job.delivery_id),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(job.secret or "", timestamp, job.body),
    }


def _send(app: Flask, job: _Job) -> tuple[dict[str, str], webhook_http.Answer]:
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


def _record(
    app: Flask, session: Session, job: _Job, headers: dict[str, str], answer: webhook_http.Answer
) -> None:
    row = session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    if row is None or row.state != DeliveryState.SENDING or row.attempts != job.attempt:
        return  # deleted, or taken over by another worker after our lease ran out
    webhook = session.get(Webhook, row.webhook_id, with_for_update=True)
    if webhook is None:
        return
    _apply(app, session, row, webhook, headers, answer)


def _record_all(
    app: Flask,
    session: Session,
    results: Sequence[tuple[_Job, dict[str, str], webhook_http.Answer]],
) -> None:
    """:func:`_record` for many answers with one read of their rows and webhooks."""
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
    attempts made (tests, tools; the worker uses :func:`deliver_due`)."""
    total = 0
    while True:
        with db.transaction(app) as session:
            jobs = _claim(app, session, limit)
        if not jobs:
            return total
        for job in jobs:
            headers, answer = _send(app, job)
            with db.transaction(app) as session:
                _record(app, session, job, headers, answer)
        total += len(jobs)


class _Dispatcher:
    """Deliveries in flight, each sent in a thread of its own (a greenlet under gevent), at most
    ``WEBHOOK_CONCURRENCY`` at once, so a slow receiver never holds up the worker's round. The
    answers wait in ``done`` and the worker's next round records them all in one transaction,
    the same one that claims what is due next (a ticket's next delivery among it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.done: list[tuple[_Job, dict[str, str], webhook_http.Answer]] = []
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.threads = 0
        self.wake = threading.Event()  # an answer came back: record it, send the next

    def submit(self, app: Flask, job: _Job) -> None:
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

    def run(self, app: Flask, job: _Job) -> None:
        try:
            headers, answer = _send(app, job)
        except Exception as exc:  # a bug must not leave the slot taken
            log.exception("webhook delivery %s failed", job.delivery_id)
            headers, answer = {}, webhook_http.Answer(None, b"", 0, f"{type(exc).__name__}")
        with self.lock:
            self.done.append((job, headers, answer))
            self.in_flight -= 1
        self.wake.set()


def _anything_due(app: Flask) -> bool:
    """A cheap read (no write lock on SQLite) before the claiming transaction."""
    now = utcnow()
    d = WebhookDelivery
    with read_only_transactions(), db.transaction(app) as session:
        return (
            session.scalar(
                select(d.id)
                .where(
                    or_(
                        and_(d.state == DeliveryState.PENDING, d.next_attempt_at <= now),
                        and_(d.state == DeliveryState.SENDING, d.lease_until < now),
                    )
                )
                .limit(1)
            )
            is not None
        )


def deliver_due(app: Flask) -> int:
    """The worker task: record the answers that came in, then start sending what is due
    (without waiting for the answers); returns how many were started."""
    dispatcher: _Dispatcher = app.extensions.setdefault("helpdesk.webhooks", _Dispatcher())
    with dispatcher.lock:
        finished, dispatcher.done = dispatcher.done, []
        room = int(setting(app, "WEBHOOK_CONCURRENCY")) - dispatcher.in_flight
    if not finished:
        if room <= 0 or not _anything_due(app):
            return 0
        _prune(app)
    with db.transaction(app) as session:
        if finished:
            _record_all(app, session, finished)
        jobs = _claim(app, session, room) if room > 0 else []
    for job in jobs:
        dispatcher.submit(app, job)
    return len(jobs)


def fan_out_new(app: Flask, limit: int = 500) -> int:
    """Run the fan-out consumer over the events it has not seen (a read first: no write
    transaction when there is nothing new); returns the events handled."""
    with read_only_transactions(), db.transaction(app) as session:
        behind = stream.position(session, CONSUMER) < stream.last_id(session)
    if not behind:
        return 0
    with db.transaction(app) as session:
        return stream.consume(
            session, CONSUMER, fan_out, limit=limit, start_at_end=True, prepare=prepare
        )


def start_service(app: Flask, stop: threading.Event) -> threading.Thread:
    """The webhooks' own loop among the worker's services (``worker.register_service``): in
    ``helpdesk serve`` it runs in the worker process beside the IMAP watchers, with a CPU share
    of its own instead of waiting behind the web's requests in the web process's loop; a
    separate ``helpdesk worker`` runs it too. Every ``WEBHOOK_POLL_SECONDS`` (and at once when
    an answer comes back) it fans out new events and sends what is due."""
    dispatcher: _Dispatcher = app.extensions.setdefault("helpdesk.webhooks", _Dispatcher())
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
