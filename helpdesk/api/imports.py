"""``POST /api/v1/imports/tickets``: bring a team's history over from another helpdesk
(admin). Up to 1,000 tickets per request, all or nothing: ``services.imports`` checks the
whole request first, then writes it in bulk, with every time kept and no mail, notification,
assignment or rule. docs/api.md "Imports"."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask_smorest import Blueprint
from marshmallow import validate

from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import errors_doc
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import CHANNELS, MAX_TEXT, STATUSES, date_time
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import TokenScope
from helpdesk.services import imports
from helpdesk.services.errors import ServiceError

blp = Blueprint(
    "api_imports",
    __name__,
    url_prefix="/api/v1/imports",
    description="Imports (admin): tickets with their history from another helpdesk.",
)


# --- the document (the service checks the body itself: field errors by place, all at once) ---


def _time(description: str) -> ma.fields.String:
    return ma.fields.String(metadata={"format": "date-time", "description": description})


class ImportPerson(ma.Schema):
    email = ma.fields.Email(required=True, validate=validate.Length(max=320))
    name = ma.fields.String(validate=validate.Length(max=1000))


class ImportMessageIn(ma.Schema):
    body = ma.fields.String(required=True, validate=validate.Length(1, MAX_TEXT))
    created_at = date_time(required=True)
    author = ma.fields.String(required=True, validate=validate.OneOf(["customer", "agent"]))
    agent = ma.fields.Email(
        metadata={
            "description": "An agent's message: the agent's email (an agent here); "
            "without it, the importing token's agent"
        }
    )
    internal = ma.fields.Boolean(
        load_default=False, metadata={"description": "An agent's internal note"}
    )


class ImportTicketIn(ma.Schema):
    external_id = ma.fields.String(
        validate=validate.Length(1, imports.MAX_EXTERNAL_ID),
        metadata={
            "description": "Its id in the other helpdesk; a ticket whose external_id was "
            "imported before is skipped (answered with its number)"
        },
    )
    subject = ma.fields.String(required=True, validate=validate.Length(1, imports.MAX_SUBJECT))
    status = ma.fields.String(validate=validate.OneOf(STATUSES), load_default="open")
    priority = ma.fields.Integer(validate=validate.Range(1, 4), load_default=2)
    channel = ma.fields.String(validate=validate.OneOf(CHANNELS), load_default="email")
    language = ma.fields.String(validate=validate.Length(2, 8))
    created_at = date_time(required=True)
    updated_at = _time("Default: the last message's time")
    resolved_at = _time("Resolved or closed tickets; default: updated_at")
    customer = ma.fields.Nested(ImportPerson, required=True)
    cc = ma.fields.List(
        ma.fields.Nested(ImportPerson),
        validate=validate.Length(max=50),
        metadata={"description": "Other customers on the ticket (participants)"},
    )
    tags = ma.fields.List(ma.fields.String(validate=validate.Length(1, 64)))
    messages = ma.fields.List(
        ma.fields.Nested(ImportMessageIn),
        required=True,
        validate=validate.Length(1, imports.MAX_MESSAGES),
    )


class ImportIn(ma.Schema):
    tickets = ma.fields.List(
        ma.fields.Nested(ImportTicketIn),
        required=True,
        validate=validate.Length(1, imports.MAX_TICKETS),
    )


class ImportedTicketOut(ma.Schema):
    number = ma.fields.Integer(required=True)
    external_id = ma.fields.String(required=True, allow_none=True)
    skipped = ma.fields.Boolean(
        required=True, metadata={"description": "Imported before (same external_id)"}
    )


class ImportOut(ma.Schema):
    imported = ma.fields.Integer(required=True)
    skipped = ma.fields.Integer(required=True)
    tickets = ma.fields.List(
        ma.fields.Nested(ImportedTicketOut),
        required=True,
        metadata={"description": "In the request's order"},
    )


def _body() -> Any:
    if not request.is_json:
        raise ServiceError(
            _("Send JSON (or multipart form data where allowed)."), code="unsupported_media_type"
        )
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ServiceError(_("The request body must be a JSON object."), code="invalid_json")
    if "tickets" not in payload:
        raise imports.InvalidImport({"tickets": _("This field is required.")})
    return payload["tickets"]


@blp.route("/tickets", methods=["POST"])
@blp.doc(
    parameters=[DOC_PARAMETER],
    requestBody={"required": True, "content": {"application/json": {"schema": ImportIn}}},
)
@blp.response(201, ImportOut)
@errors_doc(blp, 400, 401, 403, 413, 422, 429)
@requires_scope(TokenScope.ADMIN)
@idempotent
def import_tickets() -> Any:
    """Import tickets with their messages from another helpdesk, keeping every time; no mail,
    notification, assignment or rule. All or nothing per request (at most 1,000 tickets)."""
    tickets = imports.parse_tickets(_body())
    result = imports.import_tickets(db.session, me(), tickets)
    body = {
        "imported": result.imported,
        "skipped": result.skipped,
        "tickets": [
            {"number": t.number, "external_id": t.external_id, "skipped": t.skipped}
            for t in result.tickets
        ],
    }
    return commit_response(body, 201)
