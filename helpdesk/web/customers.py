"""Customer 360 for agents: a customer's identities, organization, notes and every ticket across
channels on one page; merging two records of the same person. Organizations: organizations.py."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Customer, CustomerIdentity, Ticket
from helpdesk.services import custom_fields
from helpdesk.services import customers as customer_services
from helpdesk.services.errors import ServiceError
from helpdesk.web import custom_values
from helpdesk.web.agent import agent_required, bp, me
from helpdesk.web.timeline import box as timeline_box


def _customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


@bp.get("/customers")
@agent_required
def customers_list() -> str:
    q = request.args.get("q", "").strip()
    query = select(Customer).order_by(Customer.id.desc()).limit(100)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(
                func.lower(Customer.name).like(pattern),
                Customer.id.in_(
                    select(CustomerIdentity.customer_id).where(
                        func.lower(CustomerIdentity.value).like(pattern)
                    )
                ),
            )
        )
    found = db.session.scalars(query.options(selectinload(Customer.organization))).all()
    return render_template("agent/customers.html", customers=found, q=q)


@bp.get("/customers/<int:customer_id>")
@agent_required
def customer(customer_id: int) -> str:
    return _render_customer(_customer(customer_id))[0]


def _render_customer(
    c: Customer, status: int = 200, custom: dict[str, Any] | None = None
) -> tuple[str, int]:
    tickets = db.session.scalars(
        select(Ticket)
        .where(Ticket.customer_id == c.id)
        .order_by(Ticket.created_at.desc())
        .options(selectinload(Ticket.assignee), selectinload(Ticket.tags))
        .limit(200)
    ).all()
    if custom is None:
        custom = custom_values.box(custom_fields.fields_for(db.session, "customer"), c.custom)
    page = render_template(
        "agent/customer.html",
        customer=c,
        tickets=tickets,
        custom=custom,
        tl=timeline_box("agent.customer", customer_id=c.id),
    )
    return page, status


@bp.post("/customers/<int:customer_id>/fields")
@agent_required
def customer_fields(customer_id: int) -> Response | tuple[str, int]:
    """The customer's custom fields (every one: customer-visible or not, agents see them all)."""
    c = _customer(customer_id)
    defined = custom_fields.fields_for(db.session, "customer")
    errors = custom_values.save(db.session, c, defined, request.form, me())
    if errors is not None:
        typed = custom_values.posted(defined, request.form)
        c = _customer(customer_id)
        return _render_customer(c, 400, custom_values.box(defined, c.custom, typed, errors))
    db.session.commit()
    flash(_("Fields saved."), "success")
    return redirect(url_for("agent.customer", customer_id=c.id))


@bp.post("/customers/<int:customer_id>")
@agent_required
def customer_update(customer_id: int) -> Response:
    c = _customer(customer_id)
    customer_services.update_customer(
        db.session,
        c,
        name=request.form.get("name"),
        notes=request.form.get("notes"),
        organization=request.form.get("organization"),
        actor=me(),
    )
    db.session.commit()
    flash(_("Customer saved."), "success")
    return redirect(url_for("agent.customer", customer_id=c.id))


@bp.post("/customers/<int:customer_id>/merge")
@agent_required
def customer_merge(customer_id: int) -> Response:
    source = _customer(customer_id)
    raw = (request.form.get("target") or "").strip()
    target = None
    if raw.isdigit():
        target = db.session.get(Customer, int(raw))
    elif raw:
        target = customer_services.find_by_identity(db.session, "email", raw)  # type: ignore[arg-type]
    if target is None:
        raise ServiceError(_("No customer found for %(what)s.", what=raw or "—"))
    customer_services.merge_customers(db.session, source, target, me())
    db.session.commit()
    flash(_("The two customer records are now one."), "success")
    return redirect(url_for("agent.customer", customer_id=target.id))


# The organizations' pages are routes on the same blueprint, next door.
from helpdesk.web import csv_exports as _csv_exports  # noqa: E402, F401
from helpdesk.web import customer_import as _customer_import  # noqa: E402, F401
from helpdesk.web import customer_privacy as _customer_privacy  # noqa: E402, F401
from helpdesk.web import organizations as _organizations  # noqa: E402, F401
