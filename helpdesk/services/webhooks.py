"""Webhooks: the event stream's events, POSTed and signed to URLs admins register.

This module is what admins do (the web admin pages and ``/api/v1/webhooks`` both call it):
register a URL (checked against request forgery, ``services/webhook_http.py``) for event names
with a generated secret returned once and stored encrypted (:func:`create_webhook`), change it,
rotate its secret, disable and enable it, delete it, read its delivery log and redeliver.

The rest of the engine, one job per module (docs/webhooks.md has the whole story):

- ``webhook_fanout``: the durable stream consumer ``webhooks``, which turns each event into one
  delivery per active webhook subscribed to it;
- ``webhook_payloads``: the body a delivery carries (``register_payload``: the API's objects);
- ``webhook_delivery``: claiming, signing, sending and recording an attempt; backoff, giving up,
  auto-disable with a mail to the admins; ``deliver_now`` (tests, tools);
- ``webhook_service``: the worker's loop, sending concurrently (``start_service``);
- ``webhook_http``: the one POST, safe against request forgery; ``webhook_settings``: the
  ``WEBHOOK_*`` keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from helpdesk import secrets as stored_secrets
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Agent, DeliveryState, Webhook, WebhookDelivery
from helpdesk.services import stream, webhook_http
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import Forbidden, NotFound, ServiceError
from helpdesk.services.webhook_fanout import ensure_consumer

# ``helpdesk/api/setup.py`` registers the API's serializers through this name.
from helpdesk.services.webhook_settings import allowed_hosts

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
    "customer.erased",
    "organization.created",
    "organization.updated",
    "organization.merged",
    "article.created",
    "article.updated",
    "category.created",
    "category.updated",
    "category.deleted",
    "chat.accepted",
    "chat.declined",
    "chat.transferred",
    "chat.ended",
    "chat.transcript",
    "chat.offer_expired",
    "task.created",
    "task.updated",
    "task.completed",
    "task.deleted",
    "task.reminder",
    "custom_field.created",
    "custom_field.updated",
    "custom_field.deleted",
    "calendar.created",
    "calendar.updated",
    "calendar.deleted",
    "rule.created",
    "rule.updated",
    "rule.deleted",
    "sla_policy.created",
    "sla_policy.updated",
    "sla_policy.deleted",
    "sla.warning",
    "sla.breached",
    "satisfaction.requested",
    "satisfaction.rated",
)


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
    ensure_consumer(session, webhook.after_event_id)
    return webhook, secret


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
