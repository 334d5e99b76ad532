"""The customer timeline in the REST API: the shapes and the JSON of
``GET /api/v1/customers/<id>/timeline`` and ``GET /api/v1/organizations/<id>/timeline``
(the routes live with their resources, :mod:`helpdesk.api.customers` and
:mod:`helpdesk.api.organizations`). The timeline itself is :mod:`helpdesk.services.timeline`:
newest first, keyset cursor, ``channel`` and ``kind`` filters."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from helpdesk.api.schemas import date_time
from helpdesk.api.serialize import iso
from helpdesk.i18n import _
from helpdesk.services import timeline
from helpdesk.services.errors import ServiceError
from helpdesk.services.timeline import Entry, Page


class TimelineQuery(ma.Schema):
    limit = ma.fields.Integer(
        validate=validate.Range(1, timeline.MAX_LIMIT), load_default=timeline.DEFAULT_LIMIT
    )
    cursor = ma.fields.String(
        validate=validate.Length(1, 500),
        metadata={"description": "`next_cursor` of the previous page"},
    )
    channel = ma.fields.String(
        validate=validate.OneOf(timeline.CHANNELS),
        metadata={
            "description": "Entries of this channel: a message's own; a note's, a status "
            "change's or a task's, its ticket's"
        },
    )
    kind = ma.fields.String(validate=validate.OneOf(timeline.KINDS))


class TicketRefOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    number = ma.fields.Integer(required=True)
    subject = ma.fields.String(required=True)


class Who(ma.Schema):
    type = ma.fields.String(required=True, validate=validate.OneOf(["agent", "customer"]))
    name = ma.fields.String(required=True)


class MessagePart(ma.Schema):
    id = ma.fields.Integer(required=True)
    direction = ma.fields.String(required=True, validate=validate.OneOf(["inbound", "outbound"]))
    author = ma.fields.Nested(Who, required=True)
    preview = ma.fields.String(
        required=True, metadata={"description": "The text's first 280 characters"}
    )
    recipients = ma.fields.List(ma.fields.String(), required=True)


# "from" is a keyword in Python: the schema is made from a dict.
ChangePart = ma.Schema.from_dict(
    {
        "from": ma.fields.String(required=True, allow_none=True),
        "to": ma.fields.String(required=True, allow_none=True),
        "actor": ma.fields.Nested(Who, required=True, allow_none=True),
    },
    name="ChangePart",
)


class ChatPart(ma.Schema):
    id = ma.fields.Integer(required=True)
    page_url = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "The page the visitor was on"}
    )
    status = ma.fields.String(required=True)
    ended_at = date_time(required=True, allow_none=True)
    agent = ma.fields.String(required=True, allow_none=True)
    lines = ma.fields.Integer(required=True)


class TaskPart(ma.Schema):
    id = ma.fields.Integer(required=True)
    event = ma.fields.String(required=True, validate=validate.OneOf(["created", "due", "done"]))
    title = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    due_at = date_time(required=True)
    assignee = ma.fields.String(required=True)


class SatisfactionPart(ma.Schema):
    id = ma.fields.Integer(required=True, metadata={"description": "The rating's id"})
    scale = ma.fields.String(required=True, validate=validate.OneOf(["good_bad", "five"]))
    score = ma.fields.Integer(required=True, metadata={"description": "1–5 (good 5, bad 1)"})
    comment = ma.fields.String(required=True)
    round = ma.fields.Integer(required=True)
    agent = ma.fields.String(required=True, allow_none=True)


class TimelineEntryOut(ma.Schema):
    kind = ma.fields.String(required=True, validate=validate.OneOf(timeline.KINDS))
    at = date_time(required=True)
    channel = ma.fields.String(required=True, allow_none=True)
    ticket = ma.fields.Nested(TicketRefOut, required=True, allow_none=True)
    message = ma.fields.Nested(MessagePart, metadata={"description": "kind message or note"})
    change = ma.fields.Nested(ChangePart, metadata={"description": "kind status"})
    chat = ma.fields.Nested(ChatPart, metadata={"description": "kind chat"})
    task = ma.fields.Nested(TaskPart, metadata={"description": "kind task"})
    satisfaction = ma.fields.Nested(SatisfactionPart, metadata={"description": "kind satisfaction"})


class TimelinePage(ma.Schema):
    entries = ma.fields.List(ma.fields.Nested(TimelineEntryOut), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


def cursor(args: dict[str, Any]) -> timeline.Cursor | None:
    raw = args.get("cursor")
    if not raw:
        return None
    try:
        return timeline.decode_cursor(raw)
    except timeline.InvalidCursor:
        raise ServiceError(_("Invalid page cursor."), code="invalid_cursor") from None


def filters(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "before": cursor(args),
        "limit": int(args["limit"]),
        "channel": args.get("channel"),
        "kind": args.get("kind"),
    }


def entry_json(e: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": e.kind,
        "at": iso(e.at),
        "channel": e.channel,
        "ticket": None
        if e.ticket is None
        else {"id": e.ticket.id, "number": e.ticket.number, "subject": e.ticket.subject},
    }
    d = e.data
    if e.kind in ("message", "note"):
        out["message"] = {"id": e.id, **d}
    elif e.kind == "status":
        out["change"] = {"from": d.get("from"), "to": d.get("to"), "actor": d.get("actor")}
    elif e.kind == "chat":
        out["chat"] = {"id": e.id, **d, "ended_at": iso(d.get("ended_at"))}
    elif e.kind == "task":
        out["task"] = {"id": e.id, **d, "due_at": iso(d.get("due_at"))}
    elif e.kind == "satisfaction":
        out["satisfaction"] = {"id": e.id, **d}
    return out


def page_json(page: Page) -> dict[str, Any]:
    return {
        "entries": [entry_json(e) for e in page.entries],
        "next_cursor": timeline.encode_cursor(page.next) if page.next else None,
    }
