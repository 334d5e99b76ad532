"""``/api/v1/tickets``: list (the queue's filters, full-text search), get, create, change,
reply or note, merge. Every change goes through the same service verbs as the agent's pages,
so the audit log, the event stream, notifications and live updates are the same."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask_smorest import Blueprint
from sqlalchemy.orm import joinedload, selectinload

from helpdesk.api import pagination, serialize
from helpdesk.api.auth import me
from helpdesk.api.common import parse_time
from helpdesk.api.custom_fields import check_values, values_errors
from helpdesk.api.errors import ErrorSchema
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import (
    MergeIn,
    MessageIn,
    MessageOut,
    TicketCreate,
    TicketCreateForm,
    TicketOut,
    TicketPage,
    TicketPatch,
    TicketQuery,
)
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.inbound import InboundAttachment, InboundMessage
from helpdesk.models import Agent, ChannelKind, FieldObject, Team, Ticket, TicketStatus
from helpdesk.services import custom_fields, reminders
from helpdesk.services import tickets as ticket_verbs
from helpdesk.services.access import access_ticket_by_number
from helpdesk.services.custom_fields import FieldErrors
from helpdesk.services.errors import ServiceError
from helpdesk.services.inbound import receive
from helpdesk.services.queue import QueueFilter, base_query, parse_custom
from helpdesk.services.search import SearchFilter, search_tickets
from helpdesk.services.tags import set_tags
from helpdesk.services.ticket_merge import merge_tickets

blp = Blueprint(
    "api_tickets",
    __name__,
    url_prefix="/api/v1/tickets",
    description="Tickets: the queue, a ticket with its messages, changes, replies, merges.",
)

_ERRORS = (401, 403, 404, 429)


def _errors(*codes: int) -> Any:
    def deco(view: Any) -> Any:
        for code in codes:
            view = blp.alt_response(code, schema=ErrorSchema, description="An error")(view)
        return view

    return deco


def _ticket(number: int) -> Ticket:
    return access_ticket_by_number(db.session, me(), number)


# --- list ------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.arguments(TicketQuery, location="query", as_kwargs=True)
@blp.response(200, TicketPage)
@_errors(400, 401, 429)
def list_tickets(**args: Any) -> dict[str, Any]:
    """List tickets, newest first by default; filter like the queue; `q` searches.

    Custom fields filter too: `cf.<key>=<value>` (a ticket field's key, e.g.
    `cf.plan=gold`; several are all required): a dropdown's option value, a checkbox's
    `true`/`false` (false also matches never set), one option of a multi-select, or any other
    type's exact value. An unknown or archived field, or a value the field cannot hold, is a
    400. Not with `q`."""
    limit = int(args["limit"])
    custom = parse_custom(request.args)
    if args.get("q"):
        if custom:
            raise ServiceError(
                _("With q, only the filters status, channel and assignee apply."),
                code="unsupported_filter",
            )
        return _search(args, limit)
    assignee = args.get("assignee")
    flt = QueueFilter(
        view="all",
        status=TicketStatus(args["status"]) if args.get("status") else None,
        channel=ChannelKind(args["channel"]) if args.get("channel") else None,
        team_id=args.get("team"),
        assignee_id=me().id
        if assignee == "me"
        else (int(assignee) if assignee and assignee != "none" else None),
        priority=args.get("priority"),
        tag=(args.get("tag") or "").strip().lower() or None,
        organization_id=args.get("organization"),
        custom=custom,
    )
    try:
        q = base_query(db.session, flt, me())
    except FieldErrors as exc:
        # A value the field cannot hold is a bad filter like an unknown field: 400.
        raise ServiceError(str(exc), code="invalid_filter") from None
    if args.get("customer") is not None:
        q = q.where(Ticket.customer_id == args["customer"])
    if args.get("external_id") is not None:
        q = q.where(Ticket.external_id == args["external_id"])
    if assignee == "none":
        q = q.where(Ticket.assignee_id.is_(None))
    sort = args["sort"]
    cursor = pagination.decode(args["cursor"], sort) if args.get("cursor") else None
    q = pagination.apply_sort(q, sort, cursor).limit(limit + 1)
    q = q.options(
        joinedload(Ticket.customer),
        joinedload(Ticket.assignee),
        joinedload(Ticket.team),
        selectinload(Ticket.tags),
    )
    rows = list(db.session.scalars(q).unique())
    next_cursor = pagination.cursor_after(rows[limit - 1], sort) if len(rows) > limit else None
    return {
        "tickets": [serialize.ticket_summary(t) for t in rows[:limit]],
        "next_cursor": next_cursor,
    }


def _search(args: dict[str, Any], limit: int) -> dict[str, Any]:
    if any(
        args.get(k) is not None
        for k in ("priority", "team", "tag", "customer", "organization", "external_id")
    ):
        raise ServiceError(
            _("With q, only the filters status, channel and assignee apply."),
            code="unsupported_filter",
        )
    page = 1
    if args.get("cursor"):
        values = pagination.decode(args["cursor"], "search")
        if not values or not isinstance(values[0], int) or not 1 < values[0] <= 1000:
            raise ServiceError(_("Invalid page cursor."), code="invalid_cursor")
        page = values[0]
    assignee = args.get("assignee")
    flt = SearchFilter.from_args(
        {
            "status": args.get("status"),
            "channel": args.get("channel"),
            "assignee": str(me().id) if assignee == "me" else assignee,
        }
    )
    results = search_tickets(db.session, args["q"], flt, page=page, per_page=limit)
    next_cursor = pagination.encode("search", [page + 1]) if results.has_next else None
    return {
        "tickets": [serialize.ticket_summary(hit.ticket) for hit in results.hits],
        "next_cursor": next_cursor,
    }


# --- one ticket ------------------------------------------------------------------------------


@blp.route("/<int:number>", methods=["GET"])
@blp.response(200, TicketOut)
@_errors(*_ERRORS)
def get_ticket(number: int) -> dict[str, Any]:
    """A ticket with its messages (notes included), attachments, tags and customer."""
    return serialize.ticket_json(db.session, _ticket(number))


def _create_input() -> tuple[dict[str, Any], list[InboundAttachment]]:
    """The JSON body, or the same fields as multipart/form-data with ``files``."""
    if request.mimetype == "multipart/form-data":
        form = request.form
        data: dict[str, Any] = {
            k: form[k] for k in ("subject", "body", "priority", "team") if k in form
        }
        customer = {k: form[f"customer.{k}"] for k in ("email", "name") if f"customer.{k}" in form}
        if customer:
            data["customer"] = customer
        if "tags" in form:
            data["tags"] = form.getlist("tags")
        files = [
            InboundAttachment(
                f.filename or "attachment", f.mimetype or "application/octet-stream", f.read()
            )
            for f in request.files.getlist("files")
            if f and f.filename
        ]
        return data, files
    if not request.is_json:
        raise ServiceError(
            _("Send JSON (or multipart form data where allowed)."), code="unsupported_media_type"
        )
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ServiceError(_("The request body must be a JSON object."), code="invalid_json")
    return payload, []


class _Invalid(ServiceError):
    code = "invalid"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(_("Some fields are not valid."))
        self.fields = fields


def _load(schema: ma.Schema, data: dict[str, Any]) -> dict[str, Any]:
    from helpdesk.api.errors import validation_fields

    try:
        return dict(schema.load(data))
    except ma.ValidationError as exc:
        raise _Invalid(validation_fields(exc.messages)) from None


def _team(team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    team = db.session.get(Team, team_id)
    if team is None:
        raise _Invalid({"team": _("Unknown team.")})
    return team


@blp.route("", methods=["POST"])
@blp.doc(
    parameters=[DOC_PARAMETER],
    requestBody={
        "required": True,
        "content": {
            "application/json": {"schema": TicketCreate},
            "multipart/form-data": {"schema": TicketCreateForm},
        },
    },
)
@blp.response(201, TicketOut)
@_errors(400, 401, 403, 422, 429)
@idempotent
def create_ticket() -> Any:
    """Open a ticket for a customer (by email); the body is the customer's first message."""
    raw, files = _create_input()
    data = _load(TicketCreate(), raw)
    team = _team(data.get("team"))
    if data.get("custom"):
        check_values(db.session, FieldObject.TICKET, data["custom"])
    agent = me()
    received = receive(
        db.session,
        InboundMessage(
            channel_kind="email",
            identity_kind="email",
            sender_address=data["customer"]["email"],
            sender_name=(data["customer"].get("name") or "").strip() or None,
            subject=data["subject"],
            text=data["body"],
            team_id=team.id if team else None,
            attachments=files,
            priority=data.get("priority"),
            meta={"via": "api", "api_agent_id": agent.id},
            custom=data.get("custom") or None,
        ),
    )
    ticket = received.ticket
    if not received.created and data.get("priority") is not None:
        # The body continued a conversation (a "[#1042]" subject): its ticket gets the priority.
        ticket_verbs.set_priority(db.session, ticket, data["priority"], agent)
    if data.get("tags"):
        set_tags(db.session, ticket, data["tags"], agent)
    db.session.flush()
    # A new ticket's one message is the one just written: no need to read it back.
    known = [received.message] if received.created else None
    return commit_response(serialize.ticket_json(db.session, ticket, known), 201)


@blp.route("/<int:number>", methods=["PATCH"])
@blp.arguments(TicketPatch)
@blp.response(200, TicketOut)
@_errors(*_ERRORS, 400)
def update_ticket(changes: dict[str, Any], number: int) -> Any:
    """Change status, priority, assignee, team, tags, the follow-up date or custom field values
    (only the fields given). `custom` is set before `status`, so one request can fill a field
    required on resolve and resolve; resolving without it is a 422 naming `custom.<key>`."""
    ticket = _ticket(number)
    agent = me()
    with values_errors():
        if "custom" in changes:
            custom_fields.set_values(db.session, ticket, changes["custom"], agent)
        if "status" in changes:
            ticket_verbs.set_status(db.session, ticket, changes["status"], agent)
    if "priority" in changes:
        ticket_verbs.set_priority(db.session, ticket, changes["priority"], agent)
    if "assignee" in changes:
        raw = changes["assignee"]
        assignee: Agent | None = None
        if raw == "me":
            assignee = agent
        elif raw is not None:
            assignee = db.session.get(Agent, int(raw))
            if assignee is None:
                raise _Invalid({"assignee": _("Unknown agent.")})
        ticket_verbs.assign_ticket(db.session, ticket, assignee, agent)
    if "team" in changes:
        ticket_verbs.set_team(db.session, ticket, _team(changes["team"]), agent)
    if "tags" in changes:
        set_tags(db.session, ticket, changes["tags"], agent)
    if "follow_up_at" in changes:
        when = parse_time(changes["follow_up_at"], "follow_up_at")
        reminders.set_follow_up(db.session, ticket, when, agent)
    db.session.flush()
    return commit_response(serialize.ticket_json(db.session, ticket), 200)


@blp.route("/<int:number>/messages", methods=["POST"])
@blp.arguments(MessageIn)
@blp.response(201, MessageOut)
@blp.doc(parameters=[DOC_PARAMETER])
@_errors(*_ERRORS, 400, 409)
@idempotent
def add_message(data: dict[str, Any], number: int) -> Any:
    """A reply (delivered on the ticket's channel through the outbox) or, with
    `internal: true`, a note (never sent)."""
    ticket = _ticket(number)
    if data["internal"]:
        message = ticket_verbs.add_note(db.session, ticket, me(), data["body"])
    else:
        message = ticket_verbs.reply_to_ticket(
            db.session, ticket, me(), data["body"], expected_version=data.get("version")
        )
    db.session.flush()
    return commit_response(serialize.message_json(message), 201)


@blp.route("/<int:number>/merge", methods=["POST"])
@blp.arguments(MergeIn)
@blp.response(200, TicketOut)
@blp.doc(parameters=[DOC_PARAMETER])
@_errors(*_ERRORS, 400)
@idempotent
def merge(data: dict[str, Any], number: int) -> Any:
    """Merge this ticket into another (`into`); answers with the ticket merged into."""
    source = _ticket(number)
    target = _ticket(data["into"])
    merge_tickets(db.session, source, target, me())
    db.session.flush()
    return commit_response(serialize.ticket_json(db.session, target), 200)
