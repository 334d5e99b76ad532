"""Wiring of the REST API v1 (issue 14): JSON under ``/api/v1/``, a token per agent, one
error shape, cursor pagination, Idempotency-Key, a rate limit per token, and the OpenAPI 3.1
document generated from these modules at ``/api/v1/openapi.json`` (browsable at ``/api/docs``).

Built on flask-smorest (marshmallow schemas -> apispec), which works inside the plain Flask
app that ``create_app`` builds; APIFlask generates its document from its own app class only.
The web layer: it imports the services and models and never writes rows itself. docs/api.md
is the integrator's guide.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from flask_smorest import Api, Blueprint

from helpdesk.api import (
    agents,
    attachments,
    auth,
    calendars,
    custom_fields,
    customers,
    docs,
    errors,
    events,
    imports,
    organizations,
    rules,
    satisfaction,
    serialize,
    sla_policies,
    tasks,
    tickets,
    webhooks,
)

BLUEPRINTS = [
    tickets.blp,
    customers.blp,
    organizations.blp,
    agents.blp,
    agents.team_blp,
    webhooks.blp,
    events.blp,
    attachments.blp,
    imports.blp,
    tasks.blp,
    calendars.blp,
    custom_fields.blp,
    rules.blp,
    rules.time_blp,
    sla_policies.blp,
    satisfaction.blp,
]
# The reference's section of each blueprint (its name, ``api_tickets``, stays the endpoints').
TAGS = {
    "api_tickets": "Tickets",
    "api_customers": "Customers",
    "api_organizations": "Organizations",
    "api_agents": "Agents",
    "api_teams": "Teams",
    "api_webhooks": "Webhooks",
    "api_events": "Events",
    "api_attachments": "Attachments",
    "api_imports": "Imports",
    "api_tasks": "Tasks",
    "api_calendars": "Calendars",
    "api_custom_fields": "Custom fields",
    "api_triggers": "Triggers",
    "api_time_rules": "Time rules",
    "api_sla_policies": "SLA policies",
    "api_satisfaction": "Satisfaction",
}
_prepared = False
_prepared_blueprints: set[Blueprint] = set()


class HelpdeskApi(Api):
    """flask-smorest's Api without its app-wide error handler (the API's own handlers give the
    one error shape under /api/v1/; the pages keep theirs)."""

    ERROR_SCHEMA = errors.ErrorSchema

    def _register_error_handlers(self) -> None:
        return None

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        """flask-smorest's, then the blueprint's operations and tag renamed to its readable
        tag (flask-smorest tags with the blueprint's name, which also names its endpoints)."""
        super().register_blueprint(blp, parameters=parameters, **options)
        name = options.get("name", blp.name)
        tag = TAGS.get(name)
        if tag is None:
            return
        for path in self.spec._paths.values():
            for operation in path.values():
                if isinstance(operation, dict) and operation.get("tags") == [name]:
                    operation["tags"] = [tag]
        for entry in self.spec._tags:
            if entry.get("name") == name:
                entry["name"] = tag


def _rate_limit() -> str:
    return str(current_app.config["API_RATE_LIMIT"])


def _prepare_blueprint(bp: Blueprint) -> None:
    """Once per blueprint object and process (a blueprint takes no handler once registered):
    token auth, no CSRF, the per-token rate limit, the one error shape."""
    if bp in _prepared_blueprints:
        return
    from helpdesk.extensions import csrf, limiter

    bp.before_request(auth.authenticate_request)
    # Token-only: no cookie is read, so there is nothing for a CSRF token to protect.
    csrf.exempt(bp)
    limiter.shared_limit(_rate_limit, scope="api-v1", key_func=auth.rate_limit_key)(bp)
    errors.register_blueprint_handlers([bp])
    _prepared_blueprints.add(bp)


def _prepare() -> None:
    """Once per process: the built-in blueprints' handlers."""
    global _prepared
    if _prepared:
        return
    for bp in BLUEPRINTS:
        _prepare_blueprint(bp)
    _prepared = True


def register_resource(app: Flask, blueprint: Blueprint, tag: str) -> None:
    """Serve an extra resource of the API (the KB's, the chat's: ``helpdesk`` imports neither)
    exactly like the built-in ones: bearer token and scope before every view, no CSRF, the
    per-token rate limit, the one error shape, and its operations in the document under the
    readable ``tag``. Call after :func:`init_app` (``create_app`` runs it before the channels
    and the KB register); once per app, like ``app.register_blueprint``."""
    api: HelpdeskApi | None = app.extensions.get("helpdesk.api")
    if api is None:
        raise RuntimeError("register_resource() needs the REST API: call init_app(app) first")
    TAGS[blueprint.name] = tag
    _prepare_blueprint(blueprint)
    api.register_blueprint(blueprint)


def init_app(app: Flask) -> None:
    app.config.setdefault("API_RATE_LIMIT", "600 per minute")
    app.config.setdefault("API_TITLE", "Helpdesk API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    spec_options: dict[str, Any] = {
        "info": {
            "description": "Tickets, customers, organizations, agents, teams, webhooks, "
            "the knowledge base, chats and the event stream of the helpdesk. Authenticate with "
            "`Authorization: Bearer <token>` (a token from your profile page). Guide: docs/api.md."
        },
        "security": [{"bearerAuth": []}],
        "servers": [{"url": "/"}],
    }
    app.config.setdefault("API_SPEC_OPTIONS", spec_options)
    _prepare()
    api = HelpdeskApi(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API token"}
    )
    for bp in BLUEPRINTS:
        api.register_blueprint(bp)
    errors.register_app_shape()
    docs.init_app(app)
    # A webhook's data is the object as GET returns it (docs/webhooks.md).
    from helpdesk.services import webhook_payloads

    webhook_payloads.register_payload("ticket", serialize.ticket_payload)
    webhook_payloads.register_payload("customer", customers.customer_payload)
    webhook_payloads.register_payload("task", tasks.task_payload)
    webhook_payloads.register_payload("organization", organizations.organization_payload)
    webhook_payloads.register_payload("calendar", calendars.calendar_payload)
    webhook_payloads.register_payload("custom_field", custom_fields.field_payload)
    webhook_payloads.register_payload("rule", rules.rule_payload)
    webhook_payloads.register_payload("sla_policy", sla_policies.policy_payload)
    webhook_payloads.register_payload("satisfaction", satisfaction.rating_payload)
    app.extensions["helpdesk.api"] = api
