"""The API's request and response shapes (marshmallow), from which the OpenAPI document is
generated. Responses are built as plain JSON values by :mod:`helpdesk.api.serialize` and
described here; times are ISO 8601 strings in UTC."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from helpdesk.i18n import _
from helpdesk.models import ChannelKind, TicketStatus
from helpdesk.services.custom_fields import MAX_FIELDS

STATUSES = [s.value for s in TicketStatus]
CHANNELS = [c.value for c in ChannelKind]
SORTS = ["created", "updated", "oldest", "priority"]
MAX_TEXT = 100_000


#: Ids in paths and bodies: positive and within a 32-bit INTEGER column.
ID = ma.validate.Range(1, 2**31 - 1)


def date_time(*, metadata: dict[str, Any] | None = None, **kw: Any) -> ma.fields.String:
    """An ISO 8601 time with its offset (documented as ``format: date-time``, with
    ``metadata``'s description if given)."""
    return ma.fields.String(metadata={"format": "date-time", **(metadata or {})}, **kw)


CUSTOM_VALUES_DOC = (
    "Values by field key: text, long_text, url and date (`YYYY-MM-DD`) as strings, number as a "
    "number, dropdown as an option's value, multi_select as a list of option values, checkbox "
    "as true/false. `{}` when none"
)


def custom_out() -> ma.fields.Dict:
    """``custom`` in a ticket's, customer's or organization's JSON: the stored values."""
    return ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        required=True,
        metadata={"description": CUSTOM_VALUES_DOC},
    )


def _at_most_fields(values: dict[str, Any]) -> None:
    # Not validate.Length: apispec would document it as maxLength, which objects do not have.
    if len(values) > MAX_FIELDS:
        raise ma.ValidationError(_("At most %(n)d custom fields.", n=MAX_FIELDS))


def custom_in() -> ma.fields.Dict:
    """``custom`` in a PATCH (or a ticket's POST): only the keys given change; null clears."""
    return ma.fields.Dict(
        keys=ma.fields.String(validate=validate.Length(1, 40)),
        values=ma.fields.Raw(allow_none=True),
        validate=_at_most_fields,
        metadata={
            "maxProperties": MAX_FIELDS,
            "description": "Values to set by field key (see `GET /api/v1/custom-fields`); "
            "null clears one; the keys not given keep their values. A bad value or an unknown "
            "or archived key: 422 with `fields` naming `custom.<key>`",
        },
    )


class Person(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(required=True, allow_none=True)


class TeamRef(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class AttachmentOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    filename = ma.fields.String(required=True)
    content_type = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    url = ma.fields.String(required=True, metadata={"description": "GET it with the same token"})


class Author(ma.Schema):
    type = ma.fields.String(required=True, validate=validate.OneOf(["agent", "customer", "system"]))
    id = ma.fields.Integer(required=True, allow_none=True)
    name = ma.fields.String(required=True)


class MessageOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    direction = ma.fields.String(required=True, validate=validate.OneOf(["inbound", "outbound"]))
    kind = ma.fields.String(required=True)
    internal = ma.fields.Boolean(required=True)
    author = ma.fields.Nested(Author, required=True)
    body = ma.fields.String(required=True)
    created_at = date_time(required=True)
    delivery_status = ma.fields.String(required=True, allow_none=True)
    attachments = ma.fields.List(ma.fields.Nested(AttachmentOut), required=True)


class TargetState(ma.Schema):
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf(("running", "paused", "met", "breached", "stopped")),
    )
    due_at = date_time(required=True, allow_none=True)


class TicketSla(ma.Schema):
    """A ticket's SLA (services/sla.py ``summary``): the policy, each target's due time and
    state, the breached targets."""

    policy = ma.fields.String(required=True, allow_none=True)
    first_response_due_at = date_time(required=True, allow_none=True)
    next_response_due_at = date_time(required=True, allow_none=True)
    resolution_due_at = date_time(required=True, allow_none=True)
    targets = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(TargetState), required=True
    )
    breached = ma.fields.List(ma.fields.String(), required=True)


class TicketSummary(ma.Schema):
    id = ma.fields.Integer(
        required=True, metadata={"description": "The events' `ticket_id` (people use `number`)"}
    )
    number = ma.fields.Integer(required=True)
    subject = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(STATUSES))
    priority = ma.fields.Integer(required=True, metadata={"description": "1 low .. 4 urgent"})
    channel = ma.fields.String(required=True, validate=validate.OneOf(CHANNELS))
    language = ma.fields.String(required=True, allow_none=True)
    customer = ma.fields.Nested(Person, required=True)
    assignee = ma.fields.Nested(Person, required=True, allow_none=True)
    team = ma.fields.Nested(TeamRef, required=True, allow_none=True)
    tags = ma.fields.List(ma.fields.String(), required=True)
    message_count = ma.fields.Integer(required=True)
    version = ma.fields.Integer(
        required=True, metadata={"description": "Increases on every change (see messages)"}
    )
    created_at = date_time(required=True)
    updated_at = date_time(required=True)
    first_response_at = date_time(required=True, allow_none=True)
    resolved_at = date_time(required=True, allow_none=True)
    follow_up_at = date_time(
        required=True,
        allow_none=True,
        metadata={"description": "When this pending ticket reopens (follow-up date)"},
    )
    external_id = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Its id in the helpdesk it was imported from (imports only)"},
    )
    custom = custom_out()
    sla = ma.fields.Nested(
        TicketSla, required=True, allow_none=True, metadata={"description": "None: no policy"}
    )


class TicketOut(TicketSummary):
    merged_into = ma.fields.Integer(
        required=True, allow_none=True, metadata={"description": "The number it was merged into"}
    )
    messages = ma.fields.List(ma.fields.Nested(MessageOut), required=True)


class TicketPage(ma.Schema):
    tickets = ma.fields.List(ma.fields.Nested(TicketSummary), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


class TicketQuery(ma.Schema):
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    priority = ma.fields.Integer(validate=validate.Range(1, 4))
    assignee = ma.fields.String(
        validate=validate.Regexp(r"^(me|none|[0-9]{1,9})$"),
        metadata={"description": "An agent's id, `me` or `none`"},
    )
    team = ma.fields.Integer(validate=validate.Range(1, 2**31 - 1))
    tag = ma.fields.String(validate=validate.Length(1, 100))
    channel = ma.fields.String(validate=validate.OneOf(CHANNELS))
    customer = ma.fields.Integer(
        validate=validate.Range(1, 2**31 - 1), metadata={"description": "A customer's id"}
    )
    organization = ma.fields.Integer(
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "An organization's id: the tickets of its customers"},
    )
    external_id = ma.fields.String(
        validate=validate.Length(1, 255),
        metadata={"description": "The imported ticket with this id in the former helpdesk"},
    )
    q = ma.fields.String(
        validate=validate.Length(1, 500),
        metadata={"description": "Full-text search (ranked; with status, channel, assignee)"},
    )
    sort = ma.fields.String(validate=validate.OneOf(SORTS), load_default="created")
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=25)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


class CustomerIn(ma.Schema):
    email = ma.fields.Email(required=True, validate=validate.Length(max=320))
    name = ma.fields.String(validate=validate.Length(max=200))


class TicketCreate(ma.Schema):
    subject = ma.fields.String(required=True, validate=validate.Length(1, 500))
    body = ma.fields.String(required=True, validate=validate.Length(1, MAX_TEXT))
    customer = ma.fields.Nested(CustomerIn, required=True)
    priority = ma.fields.Integer(validate=validate.Range(1, 4))
    tags = ma.fields.List(ma.fields.String(validate=validate.Length(1, 100)))
    team = ma.fields.Integer(
        validate=validate.Range(1, 2**31 - 1), metadata={"description": "A team's id"}
    )
    custom = custom_in()


class TicketCreateForm(ma.Schema):
    """The same fields as multipart/form-data, with files."""

    subject = ma.fields.String(required=True)
    body = ma.fields.String(required=True)
    customer_email = ma.fields.String(required=True, data_key="customer.email")
    customer_name = ma.fields.String(data_key="customer.name")
    priority = ma.fields.Integer()
    tags = ma.fields.List(ma.fields.String())
    team = ma.fields.Integer()
    files = ma.fields.List(ma.fields.Raw(metadata={"type": "string", "format": "binary"}))


class TicketPatch(ma.Schema):
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    priority = ma.fields.Integer(validate=validate.Range(1, 4))
    assignee = ma.fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^(me|[0-9]{1,9})$"),
        metadata={"description": "An agent's id (as a string) or `me`; null unassigns"},
    )
    team = ma.fields.Integer(
        allow_none=True,
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "null: none"},
    )
    tags = ma.fields.List(
        ma.fields.String(validate=validate.Length(1, 100)),
        metadata={"description": "The ticket's whole set of tags"},
    )
    follow_up_at = date_time(
        allow_none=True,
        validate=validate.Length(1, 64),
        metadata={
            "description": "A pending ticket reopens then, with a note (ISO 8601 with its "
            "offset; null clears it)"
        },
    )
    custom = custom_in()


class MessageIn(ma.Schema):
    body = ma.fields.String(required=True, validate=validate.Length(1, MAX_TEXT))
    internal = ma.fields.Boolean(
        load_default=False, metadata={"description": "true: a note, never sent"}
    )
    version = ma.fields.Integer(
        validate=validate.Range(1, 2**31 - 1),
        metadata={
            "description": "A reply only: the ticket's version you last read; if it changed "
            "since, nothing is sent and the answer is 409 conflict"
        },
    )


class MergeIn(ma.Schema):
    into = ma.fields.Integer(
        required=True,
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "The number of the ticket to merge into"},
    )


class EventOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    occurred_at = date_time(required=True)
    actor = ma.fields.Dict(required=True)
    subject = ma.fields.Dict(required=True)
    ticket_id = ma.fields.Integer(required=True, allow_none=True)
    data = ma.fields.Dict(required=True)


class EventQuery(ma.Schema):
    after = ma.fields.Integer(validate=validate.Range(0, 2**63 - 1), load_default=0)
    limit = ma.fields.Integer(validate=validate.Range(1, 1000), load_default=100)


class EventPage(ma.Schema):
    events = ma.fields.List(ma.fields.Nested(EventOut), required=True)
    last_id = ma.fields.Integer(
        required=True, metadata={"description": "Pass as `after` next time"}
    )
