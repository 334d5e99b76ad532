"""Organizations for agents: the list (search by name or domain, pages), create and edit
(name, domains one a line, notes), merge with a confirmation page, the organization page (its
customers, their tickets with the open count first, notes, domains) and linking the customers
already known by domain. Each form posts to one verb of ``services.organizations``."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.i18n import _, _n
from helpdesk.models import Customer, Organization, OrganizationDomain, Ticket, TicketStatus
from helpdesk.services import custom_fields
from helpdesk.services import organizations as verbs
from helpdesk.services.errors import Conflict, ServiceError
from helpdesk.web import custom_values
from helpdesk.web.agent import agent_required, bp, me
from helpdesk.web.timeline import box as timeline_box

PAGE_SIZE = 50
OPEN = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


def _org(organization_id: int) -> Organization:
    org = db.session.get(Organization, organization_id)
    if org is None:
        abort(404)
    return org


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


@bp.get("/organizations")
@agent_required
def organizations_list() -> str:
    q = request.args.get("q", "").strip()[:200]
    page = _page_number()
    query = select(Organization)
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                func.lower(Organization.name).like(pattern, escape="\\"),
                Organization.id.in_(
                    select(OrganizationDomain.organization_id).where(
                        OrganizationDomain.domain.like(pattern, escape="\\")
                    )
                ),
            )
        )
    found = list(
        db.session.scalars(
            query.order_by(func.lower(Organization.name), Organization.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
            .options(selectinload(Organization.domains))
        )
    )
    shown = found[:PAGE_SIZE]
    members: dict[int, int] = {}
    if shown:
        members = {
            int(org_id or 0): int(n)
            for org_id, n in db.session.execute(
                select(Customer.organization_id, func.count())
                .where(Customer.organization_id.in_([o.id for o in shown]))
                .group_by(Customer.organization_id)
            )
        }
    return render_template(
        "agent/organizations.html",
        organizations=shown,
        members=members,
        q=q,
        page=page,
        has_next=len(found) > PAGE_SIZE,
    )


def _form_values() -> dict[str, str]:
    return {
        "name": request.form.get("name", ""),
        "domains": request.form.get("domains", ""),
        "notes": request.form.get("notes", ""),
    }


def _form(org: Organization | None, values: dict[str, str], error: str | None = None) -> Any:
    status = 200
    if error is not None:
        status = 400
    return (
        render_template("agent/organization_form.html", org=org, values=values, error=error),
        status,
    )


@bp.get("/organizations/new")
@agent_required
def organization_new() -> Any:
    return _form(None, {"name": request.args.get("name", "")[:200], "domains": "", "notes": ""})


@bp.post("/organizations/new")
@agent_required
def organization_create() -> Any:
    values = _form_values()
    try:
        org = verbs.create_organization(
            db.session, values["name"], domains=values["domains"], notes=values["notes"], actor=me()
        )
    except ServiceError as exc:
        db.session.rollback()
        page, _status = _form(None, values, str(exc))
        return page, 409 if isinstance(exc, Conflict) else 400
    db.session.commit()
    flash(_("Organization saved."), "success")
    return redirect(url_for("agent.organization", organization_id=org.id))


@bp.get("/organizations/<int:organization_id>/edit")
@agent_required
def organization_edit(organization_id: int) -> Any:
    org = _org(organization_id)
    values = {"name": org.name, "domains": "\n".join(org.domain_names), "notes": org.notes or ""}
    return _form(org, values)


@bp.post("/organizations/<int:organization_id>/edit")
@agent_required
def organization_update(organization_id: int) -> Any:
    org = _org(organization_id)
    values = _form_values()
    try:
        verbs.update_organization(
            db.session,
            org,
            name=values["name"],
            domains=values["domains"],
            notes=values["notes"],
            actor=me(),
        )
    except ServiceError as exc:
        db.session.rollback()
        page, _status = _form(_org(organization_id), values, str(exc))
        return page, 409 if isinstance(exc, Conflict) else 400
    db.session.commit()
    flash(_("Organization saved."), "success")
    return redirect(url_for("agent.organization", organization_id=org.id))


@bp.post("/organizations/<int:organization_id>/link-customers")
@agent_required
def organization_link_customers(organization_id: int) -> Response:
    org = _org(organization_id)
    if not org.domains:
        flash(_("Add a domain first: customers are linked by their email address's domain."))
        return redirect(url_for("agent.organization", organization_id=org.id))
    linked = verbs.link_domain_customers(db.session, org, me())
    db.session.commit()
    flash(
        _n(
            "%(num)d customer joined this organization.",
            "%(num)d customers joined this organization.",
            linked,
        )
        if linked
        else _("No customer without an organization has an address at these domains."),
        "success",
    )
    return redirect(url_for("agent.organization", organization_id=org.id))


def _target(raw: str) -> Organization | None:
    """The organization an agent typed: an id, else a name in any case."""
    raw = raw.strip()
    if raw.isdigit() and len(raw) < 10:
        found = db.session.get(Organization, int(raw))
        if found is not None:
            return found
    return verbs.find_by_name(db.session, raw) if raw else None


@bp.route("/organizations/<int:organization_id>/merge", methods=["GET", "POST"])
@agent_required
def organization_merge(organization_id: int) -> Any:
    """Step one (GET, or POST without ``confirm``): choose the organization to merge into and
    see what moves; step two (POST with ``confirm``): merge."""
    source = _org(organization_id)
    raw = request.values.get("into", "")
    target = _target(raw) if raw else None
    error = None
    if raw and target is None:
        error = _("No organization found for %(what)s.", what=raw.strip())
    elif target is not None and target.id == source.id:
        error = _("An organization cannot be merged into itself.")
        target = None
    if request.method == "POST" and request.form.get("confirm") and target is not None:
        verbs.merge_organizations(db.session, source, target, me())
        db.session.commit()
        flash(_("The two organizations are now one."), "success")
        return redirect(url_for("agent.organization", organization_id=target.id))
    customers = db.session.scalar(
        select(func.count()).select_from(Customer).where(Customer.organization_id == source.id)
    )
    page = render_template(
        "agent/organization_merge.html",
        org=source,
        target=target,
        into=raw.strip(),
        customers=customers or 0,
        error=error,
    )
    return page, 400 if error else 200


@bp.get("/organizations/<int:organization_id>")
@agent_required
def organization(organization_id: int) -> str:
    return _render_organization(_org(organization_id))[0]


def _render_organization(
    org: Organization, status: int = 200, custom: dict[str, Any] | None = None
) -> tuple[str, int]:
    members = db.session.scalars(
        select(Customer)
        .where(Customer.organization_id == org.id)
        .order_by(func.lower(Customer.name), Customer.id)
        .limit(500)
    ).all()
    of_org = Ticket.customer_id.in_(select(Customer.id).where(Customer.organization_id == org.id))
    is_open = Ticket.status.in_(OPEN)
    open_count, total = db.session.execute(
        select(func.count().filter(is_open), func.count()).where(of_org)
    ).one()
    # Open tickets first (newest activity first), then the others.
    tickets = db.session.scalars(
        select(Ticket)
        .where(of_org)
        .order_by(case((is_open, 0), else_=1), Ticket.updated_at.desc(), Ticket.id.desc())
        .options(selectinload(Ticket.customer))
        .limit(200)
    ).all()
    if custom is None:
        custom = custom_values.box(custom_fields.fields_for(db.session, "organization"), org.custom)
    page = render_template(
        "agent/organization.html",
        custom=custom,
        org=org,
        members=members,
        tickets=tickets,
        open_count=int(open_count or 0),
        total=int(total or 0),
        tl=timeline_box("agent.organization", organization_id=org.id),
    )
    return page, status


@bp.post("/organizations/<int:organization_id>/fields")
@agent_required
def organization_fields(organization_id: int) -> Response | tuple[str, int]:
    """The organization's custom fields, set through the one verb like the ticket's."""
    org = _org(organization_id)
    defined = custom_fields.fields_for(db.session, "organization")
    errors = custom_values.save(db.session, org, defined, request.form, me())
    if errors is not None:
        typed = custom_values.posted(defined, request.form)
        org = _org(organization_id)
        return _render_organization(org, 400, custom_values.box(defined, org.custom, typed, errors))
    db.session.commit()
    flash(_("Fields saved."), "success")
    return redirect(url_for("agent.organization", organization_id=org.id))
