"""Webhooks' fan-out: the durable stream consumer ``webhooks``.

Each event becomes one ``WebhookDelivery`` per active webhook subscribed to it (a rule's
``rule.webhook``: one for the webhook it names, if active), written in the
consumer's transaction with its new position, so an event fans out exactly once even across
crashes. The body is fixed then (``services/webhook_payloads.py``); sending it is
``services/webhook_delivery.py``'s.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence

from flask import Flask
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.models import DeliveryState, EventConsumer, Ticket, Webhook, WebhookDelivery
from helpdesk.services import stream
from helpdesk.services.webhook_payloads import envelope, ordering_key, prefetch_tickets

CONSUMER = "webhooks"
# What a rule's ``webhook`` action records (services/rules.py): data ``webhook_id``,
# ``ticket_id``; delivered to that webhook only, with the ticket as ``data``.
RULE_WEBHOOK = "rule.webhook"

_Hook = tuple[int, list[str], int]  # id, events, after_event_id
# The active webhooks, read once per batch by prepare() (sessions of the worker's batches are
# made per transaction, so an entry lives as long as its batch).
_batch_hooks: weakref.WeakKeyDictionary[Session, list[_Hook]] = weakref.WeakKeyDictionary()
# The batch's tickets, held so the session's (weak) identity map keeps them for session.get().
_batch_tickets: weakref.WeakKeyDictionary[Session, list[Ticket]] = weakref.WeakKeyDictionary()


def ensure_consumer(session: Session, position: int) -> None:
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
        if hooks:
            wanted.add(RULE_WEBHOOK)
        ticket_ids = {
            e.subject_id for e in events if e.subject_type == "ticket" and e.name in wanted
        } | {e.ticket_id for e in events if e.ticket_id is not None and e.name in wanted}
        tickets = prefetch_tickets(session, ticket_ids)
        if tickets:
            _batch_tickets[session] = tickets  # session.get() finds them in the identity map


def fan_out(session: Session, event: stream.StoredEvent) -> None:
    """One delivery per active webhook subscribed to ``event`` (the consumer's handler).

    The batch's deliveries are flushed once at its end (``stream.consume``), not before each
    event's reads: nothing read here depends on them."""
    with session.no_autoflush:
        hooks = _batch_hooks.get(session)
        if hooks is None:
            hooks = _active_hooks(session)
        targets = [
            hook_id
            for hook_id, names, after in hooks
            if event.id > after
            and (
                # A rule's webhook action: that one webhook, whatever it subscribes to.
                event.data.get("webhook_id") == hook_id
                if event.name == RULE_WEBHOOK
                else event.name in names
            )
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
