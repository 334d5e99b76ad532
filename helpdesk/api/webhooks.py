"""``/api/v1/webhooks``: register, list, change, delete webhooks, their delivery log and
redelivery, with an admin's admin token (every operation, reads included: a webhook's URL and
log are admin matters). Through ``services.webhooks``, the verbs of Admin -> Webhooks; the
secret is shown once, in the answer to the POST (and to a rotation)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate

from helpdesk.api import pagination
from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import errors_doc
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import DeliveryState, TokenScope, Webhook, WebhookDelivery
from helpdesk.services import webhooks as hooks
from helpdesk.services.errors import ServiceError

blp = Blueprint(
    "api_webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Webhooks (admin): signed POSTs of the event stream's events; delivery log.",
)

STATES = [s.value for s in DeliveryState]


class WebhookOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    url = ma.fields.String(required=True)
    events = ma.fields.List(ma.fields.String(), required=True)
    active = ma.fields.Boolean(required=True)
    disabled_reason = ma.fields.String(required=True, allow_none=True)
    disabled_at = date_time(required=True, allow_none=True)
    consecutive_failures = ma.fields.Integer(required=True)
    failing_since = date_time(required=True, allow_none=True)
    last_success_at = date_time(required=True, allow_none=True)
    created_at = date_time(required=True)
    updated_at = date_time(required=True)


class WebhookWithSecret(WebhookOut):
    secret = ma.fields.String(
        required=True, metadata={"description": "Signs every delivery; shown this once"}
    )


class WebhookList(ma.Schema):
    webhooks = ma.fields.List(ma.fields.Nested(WebhookOut), required=True)


class WebhookCreate(ma.Schema):
    url = ma.fields.String(required=True, validate=validate.Length(1, 2000))
    events = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(hooks.EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1),
    )


class WebhookPatch(ma.Schema):
    url = ma.fields.String(validate=validate.Length(1, 2000))
    events = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(hooks.EVENT_TYPES)),
        validate=validate.Length(min=1),
    )
    active = ma.fields.Boolean(
        metadata={"description": "false disables; true enables and sends what waits"}
    )


class DeliveryOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    event_id = ma.fields.Integer(required=True, metadata={"description": "The body's `id`"})
    event = ma.fields.String(required=True)
    state = ma.fields.String(required=True, validate=validate.OneOf(STATES))
    attempts = ma.fields.Integer(required=True)
    response_code = ma.fields.Integer(required=True, allow_none=True)
    latency_ms = ma.fields.Integer(required=True, allow_none=True)
    error = ma.fields.String(required=True, allow_none=True)
    redelivery_of = ma.fields.Integer(required=True, allow_none=True)
    next_attempt_at = date_time(required=True, allow_none=True)
    first_attempt_at = date_time(required=True, allow_none=True)
    last_attempt_at = date_time(required=True, allow_none=True)
    delivered_at = date_time(required=True, allow_none=True)
    created_at = date_time(required=True)


class DeliveryDetail(DeliveryOut):
    request_headers = ma.fields.Dict(required=True, metadata={"description": "Of the last attempt"})
    request_body = ma.fields.Dict(required=True, metadata={"description": "What is POSTed"})
    response_excerpt = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "The answer's first characters"}
    )


class DeliveryPage(ma.Schema):
    deliveries = ma.fields.List(ma.fields.Nested(DeliveryOut), required=True)
    next_cursor = ma.fields.String(required=True, allow_none=True)


class DeliveryQuery(ma.Schema):
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=25)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


def webhook_json(w: Webhook) -> dict[str, Any]:
    return {
        "id": w.id,
        "url": w.url,
        "events": list(w.events or []),
        "active": bool(w.active),
        "disabled_reason": w.disabled_reason,
        "disabled_at": iso(w.disabled_at),
        "consecutive_failures": w.consecutive_failures or 0,
        "failing_since": iso(w.failing_since),
        "last_success_at": iso(w.last_success_at),
        "created_at": iso(w.created_at),
        "updated_at": iso(w.updated_at),
    }


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event": d.event_name,
        "state": d.state.value,
        "attempts": d.attempts,
        "response_code": d.response_code,
        "latency_ms": d.latency_ms,
        "error": d.error,
        "redelivery_of": d.redelivery_of_id,
        "next_attempt_at": iso(d.next_attempt_at),
        "first_attempt_at": iso(d.first_attempt_at),
        "last_attempt_at": iso(d.last_attempt_at),
        "delivered_at": iso(d.delivered_at),
        "created_at": iso(d.created_at),
    }


def _body(d: WebhookDelivery) -> dict[str, Any]:
    try:
        body = json.loads(d.request_body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _webhook(webhook_id: int) -> Webhook:
    return hooks.get_webhook(db.session, me(), webhook_id)


@blp.route("", methods=["GET"])
@requires_scope(TokenScope.ADMIN)
@blp.response(200, WebhookList)
@errors_doc(blp, 401, 403, 429)
def list_webhooks() -> dict[str, Any]:
    """Every webhook (admin)."""
    return {"webhooks": [webhook_json(w) for w in hooks.list_webhooks(db.session, me())]}


@blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(WebhookCreate)
@blp.response(201, WebhookWithSecret)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 422, 429)
@idempotent
def create_webhook(data: dict[str, Any]) -> Any:
    """Register a URL for events (admin); the answer holds the secret, shown this once. The
    URL must not reach a loopback, private or link-local address (docs/webhooks.md)."""
    webhook, secret = hooks.create_webhook(db.session, me(), data["url"], data["events"])
    db.session.flush()
    return commit_response({**webhook_json(webhook), "secret": secret}, 201)


@blp.route("/<int:webhook_id>", methods=["GET"])
@requires_scope(TokenScope.ADMIN)
@blp.response(200, WebhookOut)
@errors_doc(blp, 401, 403, 404, 429)
def get_webhook(webhook_id: int) -> dict[str, Any]:
    """One webhook (never its secret)."""
    return webhook_json(_webhook(webhook_id))


@blp.route("/<int:webhook_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(WebhookPatch)
@blp.response(200, WebhookOut)
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
def update_webhook(changes: dict[str, Any], webhook_id: int) -> Any:
    """Change the URL or the events, disable or enable (admin)."""
    webhook = _webhook(webhook_id)
    if "url" in changes or "events" in changes:
        hooks.update_webhook(
            db.session, me(), webhook, url=changes.get("url"), events=changes.get("events")
        )
    if "active" in changes:
        hooks.set_active(db.session, me(), webhook, bool(changes["active"]))
    db.session.flush()
    return commit_response(webhook_json(webhook), 200)


@blp.route("/<int:webhook_id>", methods=["DELETE"])
@requires_scope(TokenScope.ADMIN)
@blp.response(204)
@errors_doc(blp, 401, 403, 404, 429)
def delete_webhook(webhook_id: int) -> Any:
    """Delete a webhook with its delivery log (admin)."""
    hooks.delete_webhook(db.session, me(), _webhook(webhook_id))
    db.session.commit()
    return "", 204


@blp.route("/<int:webhook_id>/rotate-secret", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.response(200, WebhookWithSecret)
@errors_doc(blp, 401, 403, 404, 429)
def rotate_secret(webhook_id: int) -> Any:
    """A new secret (shown this once); every later attempt is signed with it (admin)."""
    webhook = _webhook(webhook_id)
    secret = hooks.rotate_secret(db.session, me(), webhook)
    db.session.flush()
    return commit_response({**webhook_json(webhook), "secret": secret}, 200)


@blp.route("/<int:webhook_id>/deliveries", methods=["GET"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(DeliveryQuery, location="query", as_kwargs=True)
@blp.response(200, DeliveryPage)
@errors_doc(blp, 400, 401, 403, 404, 429)
def list_deliveries(webhook_id: int, limit: int, cursor: str | None = None) -> dict[str, Any]:
    """The delivery log, newest first (admin)."""
    before = None
    if cursor:
        values = pagination.decode(cursor, "deliveries")
        if len(values) != 1 or not isinstance(values[0], int) or not 0 < values[0] < 2**63:
            raise ServiceError(_("Invalid page cursor."), code="invalid_cursor")
        before = values[0]
    rows, more = hooks.deliveries(
        db.session, me(), _webhook(webhook_id), before=before, limit=limit
    )
    return {
        "deliveries": [delivery_json(d) for d in rows],
        "next_cursor": pagination.encode("deliveries", [more]) if more is not None else None,
    }


@blp.route("/<int:webhook_id>/deliveries/<int:delivery_id>", methods=["GET"])
@requires_scope(TokenScope.ADMIN)
@blp.response(200, DeliveryDetail)
@errors_doc(blp, 401, 403, 404, 429)
def get_delivery(webhook_id: int, delivery_id: int) -> dict[str, Any]:
    """One delivery with its request (headers of the last attempt, body) and answer (admin)."""
    d = hooks.get_delivery(db.session, me(), _webhook(webhook_id), delivery_id)
    return {
        **delivery_json(d),
        "request_headers": dict(d.request_headers or {}),
        "request_body": _body(d),
        "response_excerpt": d.response_excerpt,
    }


@blp.route("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.response(201, DeliveryOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 401, 403, 404, 429)
@idempotent
def redeliver(webhook_id: int, delivery_id: int) -> Any:
    """Send the same body again, as a new delivery (admin)."""
    d = hooks.get_delivery(db.session, me(), _webhook(webhook_id), delivery_id)
    again = hooks.redeliver(db.session, me(), d)
    db.session.flush()
    return commit_response(delivery_json(again), 201)
