"""``/api/v1/customers`` and ``/api/v1/organizations``: the people tickets come from, as agents
see them on the customer pages (every active agent sees every customer). Changes go through
``services.customers`` (create, update, merge, add an identity), the verbs the pages use, so the
event stream is the same. A customer's organization is set by name on the customer (``PATCH
.../customers/<id>`` ``{"organization": "..."}``); the organizations themselves are
``helpdesk/api/organizations.py``."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from helpdesk.api import timeline as api_timeline
from helpdesk.api.auth import me
from helpdesk.api.common import errors_doc, id_page, next_cursor
from helpdesk.api.custom_fields import values_errors
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import ID, STATUSES, custom_in, custom_out, date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Customer, CustomerIdentity, IdentityKind, Ticket
from helpdesk.services import custom_fields, timeline
from helpdesk.services import customers as customer_verbs
from helpdesk.services.errors import NotFound, ServiceError

blp = Blueprint(
    "api_customers",
    __name__,
    url_prefix="/api/v1/customers",
    description="Customers: identities (email addresses, chat visitors, portal logins), "
    "organization, notes, ticket counts; create, change, merge.",
)

LANGUAGE = validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,4})?$")
IDENTITY_KINDS = [k.value for k in IdentityKind]


# --- shapes ------------------------------------------------------------------------------------


class OrganizationRef(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class IdentityOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True, validate=validate.OneOf(IDENTITY_KINDS))
    value = ma.fields.String(required=True)
    verified = ma.fields.Boolean(required=True)
    bouncing = ma.fields.Boolean(
        required=True, metadata={"description": "Mail to this address bounced permanently"}
    )
    created_at = date_time(required=True)


class TicketCounts(ma.Schema):
    total = ma.fields.Integer(required=True)
    new = ma.fields.Integer(required=True)
    open = ma.fields.Integer(required=True)
    pending = ma.fields.Integer(required=True)
    resolved = ma.fields.Integer(required=True)
    closed = ma.fields.Integer(required=True)


class CustomerSummary(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "The primary email address"}
    )
    language = ma.fields.String(required=True, allow_none=True)
    organization = ma.fields.Nested(OrganizationRef, required=True, allow_none=True)
    identities = ma.fields.List(ma.fields.Nested(IdentityOut), required=True)
    created_at = date_time(required=True)
    updated_at = date_time(required=True)
    custom = custom_out()


class CustomerOut(CustomerSummary):
    notes = ma.fields.String(required=True)
    tickets = ma.fields.Nested(TicketCounts, required=True)


class CustomerPage(ma.Schema):
    customers = ma.fields.List(ma.fields.Nested(CustomerSummary), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


class CustomerQuery(ma.Schema):
    email = ma.fields.String(
        validate=validate.Length(1, 320),
        metadata={"description": "Exact match on any of the customer's email addresses"},
    )
    q = ma.fields.String(
        validate=validate.Length(1, 200),
        metadata={"description": "Part of a name or of an identity (email address, ...)"},
    )
    organization = ma.fields.Integer(
        validate=ID, metadata={"description": "Members of this organization"}
    )
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=25)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


class CustomerCreate(ma.Schema):
    email = ma.fields.Email(required=True, validate=validate.Length(max=320))
    name = ma.fields.String(validate=validate.Length(max=200))
    language = ma.fields.String(validate=LANGUAGE, allow_none=True)
    organization = ma.fields.String(
        validate=validate.Length(max=200),
        allow_none=True,
        metadata={"description": "An organization's name (created if new)"},
    )
    notes = ma.fields.String(validate=validate.Length(max=20_000))


class CustomerPatch(ma.Schema):
    name = ma.fields.String(validate=validate.Length(max=200))
    language = ma.fields.String(validate=LANGUAGE, allow_none=True)
    organization = ma.fields.String(
        validate=validate.Length(max=200),
        allow_none=True,
        metadata={"description": "An organization's name (created if new); null or empty: none"},
    )
    notes = ma.fields.String(validate=validate.Length(max=20_000))
    custom = custom_in()


class CustomerMergeIn(ma.Schema):
    into = ma.fields.Integer(
        required=True,
        validate=ID,
        metadata={"description": "The id of the customer this one is the same person as"},
    )


class IdentityIn(ma.Schema):
    kind = ma.fields.String(required=True, validate=validate.OneOf(IDENTITY_KINDS))
    value = ma.fields.String(required=True, validate=validate.Length(1, 320))


# --- JSON --------------------------------------------------------------------------------------


def identity_json(i: CustomerIdentity) -> dict[str, Any]:
    return {
        "id": i.id,
        "kind": i.kind.value,
        "value": i.value,
        "verified": bool(i.verified),
        "bouncing": bool(i.bouncing),
        "created_at": iso(i.created_at),
    }


def customer_summary(c: Customer) -> dict[str, Any]:
    org = c.organization
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "language": c.language,
        "organization": None if org is None else {"id": org.id, "name": org.name},
        "identities": [identity_json(i) for i in c.identities],
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "custom": dict(c.custom or {}),
    }


def counts(session: Session, where: Any) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    rows = session.execute(
        select(Ticket.status, func.count(Ticket.id)).where(where).group_by(Ticket.status)
    )
    for status, n in rows:
        counts[status.value] = int(n)
    return {"total": sum(counts.values()), **counts}


def customer_json(session: Session, c: Customer) -> dict[str, Any]:
    return {
        **customer_summary(c),
        "notes": c.notes or "",
        "tickets": counts(session, Ticket.customer_id == c.id),
    }


def customer_payload(session: Session, customer_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a customer: as GET returns it (None: gone)."""
    customer = session.get(Customer, customer_id)
    return customer_json(session, customer) if customer is not None else None


def like(text: str) -> str:
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None or not me().active:
        raise NotFound(_("Customer not found."))
    return customer


# --- customers ---------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.arguments(CustomerQuery, location="query", as_kwargs=True)
@blp.response(200, CustomerPage)
@errors_doc(blp, 400, 401, 429)
def list_customers(**args: Any) -> dict[str, Any]:
    """Customers, newest first; `email` finds one by any of their addresses, `q` searches
    names and identities."""
    limit = int(args["limit"])
    q = select(Customer)
    if args.get("email"):
        try:
            address = customer_verbs.normalize_email(args["email"])
        except ServiceError:
            address = args["email"].strip().lower()
        q = q.where(
            Customer.id.in_(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.kind == IdentityKind.EMAIL, CustomerIdentity.value == address
                )
            )
        )
    if args.get("q"):
        pattern = like(args["q"])
        q = q.where(
            or_(
                func.lower(Customer.name).like(pattern, escape="\\"),
                Customer.id.in_(
                    select(CustomerIdentity.customer_id).where(
                        func.lower(CustomerIdentity.value).like(pattern, escape="\\")
                    )
                ),
            )
        )
    if args.get("organization") is not None:
        q = q.where(Customer.organization_id == args["organization"])
    q = id_page(q, Customer.id, "customers", args.get("cursor"), limit).options(
        selectinload(Customer.identities), selectinload(Customer.organization)
    )
    rows = list(db.session.scalars(q))
    return {
        "customers": [customer_summary(c) for c in rows[:limit]],
        "next_cursor": next_cursor(rows, "customers", limit),
    }


@blp.route("/<int:customer_id>", methods=["GET"])
@blp.response(200, CustomerOut)
@errors_doc(blp, 401, 404, 429)
def get_customer(customer_id: int) -> dict[str, Any]:
    """A customer with identities, organization, notes and ticket counts by status."""
    return customer_json(db.session, _customer(customer_id))


@blp.route("", methods=["POST"])
@blp.arguments(CustomerCreate)
@blp.response(201, CustomerOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_customer(data: dict[str, Any]) -> Any:
    """Record a customer; 409 `identity_taken` when the address is someone's already."""
    customer = customer_verbs.create_customer(
        db.session,
        data["email"],
        name=data.get("name"),
        language=data.get("language"),
        organization=data.get("organization"),
        notes=data.get("notes"),
        actor=me(),
    )
    db.session.flush()
    return commit_response(customer_json(db.session, customer), 201)


@blp.route("/<int:customer_id>", methods=["PATCH"])
@blp.arguments(CustomerPatch)
@blp.response(200, CustomerOut)
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
def update_customer(changes: dict[str, Any], customer_id: int) -> Any:
    """Change name, language, organization (by name), notes or custom field values (only the
    fields given; a bad value is a 422 naming `custom.<key>`)."""
    customer = _customer(customer_id)
    if "custom" in changes:
        with values_errors():
            custom_fields.set_values(db.session, customer, changes["custom"], me())
    language = changes.get("language")
    organization = changes.get("organization")
    customer_verbs.update_customer(
        db.session,
        customer,
        name=changes.get("name"),
        notes=changes.get("notes"),
        organization=(organization or "") if "organization" in changes else None,
        language=(language or "") if "language" in changes else None,
        actor=me(),
    )
    db.session.flush()
    return commit_response(customer_json(db.session, customer), 200)


@blp.route("/<int:customer_id>/merge", methods=["POST"])
@blp.arguments(CustomerMergeIn)
@blp.response(200, CustomerOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
@idempotent
def merge_customer(data: dict[str, Any], customer_id: int) -> Any:
    """This customer and `into` are one person: identities, tickets and the rest move to
    `into`, then this record is deleted. Answers with `into`."""
    source = _customer(customer_id)
    target = _customer(data["into"])
    customer_verbs.merge_customers(db.session, source, target, me())
    db.session.flush()
    db.session.refresh(target)
    return commit_response(customer_json(db.session, target), 200)


@blp.route("/<int:customer_id>/identities", methods=["POST"])
@blp.arguments(IdentityIn)
@blp.response(201, CustomerOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 404, 409, 422, 429)
@idempotent
def add_identity(data: dict[str, Any], customer_id: int) -> Any:
    """Another address (or chat visitor id, portal login) of this customer; 409
    `identity_taken` when it is someone else's. Answers with the customer."""
    customer = _customer(customer_id)
    customer_verbs.add_identity(db.session, customer, data["kind"], data["value"])
    db.session.flush()
    return commit_response(customer_json(db.session, customer), 201)


@blp.route("/<int:customer_id>/timeline", methods=["GET"])
@blp.arguments(api_timeline.TimelineQuery, location="query", as_kwargs=True)
@blp.response(200, api_timeline.TimelinePage)
@errors_doc(blp, 400, 401, 404, 429)
def customer_timeline(customer_id: int, **args: Any) -> dict[str, Any]:
    """The customer's timeline across channels, newest first: messages of their tickets (agents'
    replies and internal notes too), status changes, chats with the page the visitor was on,
    tasks (created, due, done). Filter by `channel` and `kind`; page with `next_cursor`."""
    customer = _customer(customer_id)
    page = timeline.customer_timeline(db.session, customer.id, **api_timeline.filters(args))
    return api_timeline.page_json(page)


# The data-protection requests (export, erase) are routes of this blueprint, next door.
from helpdesk.api import customer_privacy as _customer_privacy  # noqa: E402, F401
