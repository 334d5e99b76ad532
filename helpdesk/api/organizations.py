"""``/api/v1/organizations``: the companies customers belong to, with the email domains that
link new customers to them. List and search (name or domain), read, create, change (name,
notes, domains), merge, and link the customers already known by domain; all through
``services.organizations``, the verbs the pages use, so the event stream is the same."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from helpdesk.api import timeline as api_timeline
from helpdesk.api.auth import me
from helpdesk.api.common import Invalid, errors_doc, id_page, next_cursor
from helpdesk.api.custom_fields import values_errors
from helpdesk.api.customers import TicketCounts, counts, like
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import ID, custom_in, custom_out, date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Customer, Organization, OrganizationDomain, Ticket
from helpdesk.services import custom_fields, timeline
from helpdesk.services import organizations as verbs
from helpdesk.services.errors import NotFound, ServiceError

blp = Blueprint(
    "api_organizations",
    __name__,
    url_prefix="/api/v1/organizations",
    description="Organizations customers belong to, with the email domains that link new "
    "customers to them: list, search, create, change, merge, link customers by domain.",
)

DOMAINS_DOC = (
    "Email domains (`example.com`): a new customer writing from one joins this organization; "
    "each domain belongs to one organization"
)


class OrganizationSummary(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    domains = ma.fields.List(
        ma.fields.String(), required=True, metadata={"description": DOMAINS_DOC}
    )
    created_at = date_time(required=True)
    custom = custom_out()


class OrganizationOut(OrganizationSummary):
    notes = ma.fields.String(required=True)
    customer_count = ma.fields.Integer(required=True)
    tickets = ma.fields.Nested(TicketCounts, required=True)


class OrganizationPage(ma.Schema):
    organizations = ma.fields.List(ma.fields.Nested(OrganizationSummary), required=True)
    next_cursor = ma.fields.String(required=True, allow_none=True)


class OrganizationQuery(ma.Schema):
    q = ma.fields.String(
        validate=validate.Length(1, 200),
        metadata={"description": "Part of the name, or of one of the domains"},
    )
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=25)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


_DOMAIN_LIST = ma.fields.List(
    ma.fields.String(validate=validate.Length(1, 255)),
    validate=validate.Length(max=verbs.MAX_DOMAINS),
    metadata={"description": DOMAINS_DOC},
)


class OrganizationCreate(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 200))
    domains = _DOMAIN_LIST
    notes = ma.fields.String(validate=validate.Length(max=verbs.MAX_NOTES_LENGTH))


class OrganizationPatch(ma.Schema):
    name = ma.fields.String(validate=validate.Length(1, 200))
    domains = ma.fields.List(
        ma.fields.String(validate=validate.Length(1, 255)),
        validate=validate.Length(max=verbs.MAX_DOMAINS),
        metadata={"description": "The whole new list (customers already linked stay)"},
    )
    notes = ma.fields.String(validate=validate.Length(max=verbs.MAX_NOTES_LENGTH))
    custom = custom_in()


class OrganizationMergeIn(ma.Schema):
    into = ma.fields.Integer(
        required=True,
        validate=ID,
        metadata={"description": "The id of the organization this one is the same as"},
    )


class LinkedOut(ma.Schema):
    linked = ma.fields.Integer(
        required=True, metadata={"description": "How many customers joined the organization"}
    )
    organization = ma.fields.Nested(OrganizationOut, required=True)


# --- JSON --------------------------------------------------------------------------------------


def organization_summary(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "domains": org.domain_names,
        "created_at": iso(org.created_at),
        "custom": dict(org.custom or {}),
    }


def organization_json(session: Session, org: Organization) -> dict[str, Any]:
    members = select(Customer.id).where(Customer.organization_id == org.id)
    return {
        **organization_summary(org),
        "notes": org.notes or "",
        "customer_count": session.scalar(select(func.count()).select_from(members.subquery())) or 0,
        "tickets": counts(session, Ticket.customer_id.in_(members)),
    }


def organization_payload(session: Session, organization_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for an organization: as GET returns it (None: gone)."""
    org = session.get(Organization, organization_id)
    return organization_json(session, org) if org is not None else None


def _organization(organization_id: int) -> Organization:
    org = db.session.get(Organization, organization_id)
    if org is None or not me().active:
        raise NotFound(_("Organization not found."))
    return org


@contextmanager
def _fields() -> Iterator[None]:
    """The verbs' refusals of a field's value as 422 with the field named (a taken name or
    domain stays a 409)."""
    try:
        yield
    except verbs.InvalidDomain as exc:
        raise Invalid({"domains": str(exc)}) from None
    except ServiceError as exc:
        field = {"name_required": "name", "same_organization": "into"}.get(exc.code)
        if field is None:
            raise
        raise Invalid({field: str(exc)}) from None


def _answer(org: Organization, status: int) -> Any:
    db.session.flush()
    db.session.refresh(org)
    return commit_response(organization_json(db.session, org), status)


# --- views ---------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.arguments(OrganizationQuery, location="query", as_kwargs=True)
@blp.response(200, OrganizationPage)
@errors_doc(blp, 400, 401, 429)
def list_organizations(**args: Any) -> dict[str, Any]:
    """Organizations, newest first; `q` searches names and domains. Their customers:
    `GET /api/v1/customers?organization=<id>`."""
    limit = int(args["limit"])
    q = select(Organization)
    if args.get("q"):
        pattern = like(args["q"])
        q = q.where(
            or_(
                func.lower(Organization.name).like(pattern, escape="\\"),
                Organization.id.in_(
                    select(OrganizationDomain.organization_id).where(
                        OrganizationDomain.domain.like(pattern, escape="\\")
                    )
                ),
            )
        )
    q = id_page(q, Organization.id, "organizations", args.get("cursor"), limit)
    rows = list(db.session.scalars(q.options(selectinload(Organization.domains))))
    return {
        "organizations": [organization_summary(o) for o in rows[:limit]],
        "next_cursor": next_cursor(rows, "organizations", limit),
    }


@blp.route("/<int:organization_id>", methods=["GET"])
@blp.response(200, OrganizationOut)
@errors_doc(blp, 401, 404, 429)
def get_organization(organization_id: int) -> dict[str, Any]:
    """An organization with its domains, notes, number of customers and their tickets by
    status."""
    return organization_json(db.session, _organization(organization_id))


@blp.route("", methods=["POST"])
@blp.arguments(OrganizationCreate)
@blp.response(201, OrganizationOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_organization(data: dict[str, Any]) -> Any:
    """Record an organization; 409 `name_taken` when another has the name (in any case),
    409 `domain_taken` when a domain is another's, 422 for a domain that is none. New
    customers from its domains join it; those already known: `link-domain-customers`."""
    with _fields():
        org = verbs.create_organization(
            db.session,
            data["name"],
            domains=data.get("domains") or [],
            notes=data.get("notes") or "",
            actor=me(),
        )
    return _answer(org, 201)


@blp.route("/<int:organization_id>", methods=["PATCH"])
@blp.arguments(OrganizationPatch)
@blp.response(200, OrganizationOut)
@errors_doc(blp, 400, 401, 403, 404, 409, 422, 429)
def update_organization(changes: dict[str, Any], organization_id: int) -> Any:
    """Change the name, notes, domains or custom field values (only the fields given;
    `domains` is the whole new list). One `organization.updated` event with each changed
    field's `from` and `to` (custom values: another, with `custom.<key>`)."""
    org = _organization(organization_id)
    if "custom" in changes:
        with values_errors():
            custom_fields.set_values(db.session, org, changes["custom"], me())
    with _fields():
        verbs.update_organization(
            db.session,
            org,
            name=changes.get("name"),
            notes=changes.get("notes"),
            domains=changes.get("domains"),
            actor=me(),
        )
    return _answer(org, 200)


@blp.route("/<int:organization_id>/merge", methods=["POST"])
@blp.arguments(OrganizationMergeIn)
@blp.response(200, OrganizationOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
@idempotent
def merge_organization(data: dict[str, Any], organization_id: int) -> Any:
    """This organization and `into` are one: its customers, domains and notes move to `into`,
    then it is deleted (`organization.merged`). Answers with `into`."""
    source = _organization(organization_id)
    target = db.session.get(Organization, data["into"])
    if target is None:
        raise Invalid({"into": _("Unknown organization.")})
    with _fields():
        verbs.merge_organizations(db.session, source, target, me())
    return _answer(target, 200)


@blp.route("/<int:organization_id>/link-domain-customers", methods=["POST"])
@blp.response(200, LinkedOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 404, 429)
@idempotent
def link_domain_customers(organization_id: int) -> Any:
    """Customers already known, without an organization, whose email address is at one of
    its domains join it (one `customer.updated` each; those of another organization stay)."""
    org = _organization(organization_id)
    linked = verbs.link_domain_customers(db.session, org, me())
    db.session.flush()
    return commit_response(
        {"linked": linked, "organization": organization_json(db.session, org)}, 200
    )


@blp.route("/<int:organization_id>/timeline", methods=["GET"])
@blp.arguments(api_timeline.TimelineQuery, location="query", as_kwargs=True)
@blp.response(200, api_timeline.TimelinePage)
@errors_doc(blp, 400, 401, 404, 429)
def organization_timeline(organization_id: int, **args: Any) -> dict[str, Any]:
    """The timeline of every customer of the organization (and of its own tasks), newest first,
    as `GET /api/v1/customers/{customer_id}/timeline` gives one customer's."""
    org = _organization(organization_id)
    page = timeline.organization_timeline(db.session, org.id, **api_timeline.filters(args))
    return api_timeline.page_json(page)
