"""A customer's data-protection requests on the customer page, for admins: download everything
about them (a zip) and erase them after a typed confirmation (``services.customer_privacy``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Customer, Ticket
from helpdesk.services import customer_privacy
from helpdesk.web import audit_labels
from helpdesk.web.agent import agent_required, bp, me


def _customer(customer_id: int) -> Customer:
    if not me().is_admin:
        abort(403)
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        abort(404)
    return customer


def _expected(customer: Customer) -> str:
    return customer.email or f"#{customer.id}"


@bp.post("/customers/<int:customer_id>/data-export")
@agent_required
def customer_data_export(customer_id: int) -> Response:
    customer = _customer(customer_id)
    data = customer_privacy.export_customer(db.session, customer, me())
    db.session.commit()  # the audit line
    name = f"customer-{customer_id}-{utcnow().date().isoformat()}.zip"
    return Response(
        data,
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _tickets(customer: Customer) -> int:
    return int(
        db.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer.id)
        )
        or 0
    )


@bp.get("/customers/<int:customer_id>/erase")
@agent_required
def customer_erase_form(customer_id: int) -> str:
    customer = _customer(customer_id)
    return render_template(
        "agent/customer_erase.html",
        customer=customer,
        expected=_expected(customer),
        tickets=_tickets(customer),
    )


@bp.post("/customers/<int:customer_id>/erase")
@agent_required
def customer_erase(customer_id: int) -> tuple[str, int] | BaseResponse:
    customer = _customer(customer_id)
    expected = _expected(customer)
    if (request.form.get("confirm") or "").strip().lower() != expected.lower():
        page = render_template(
            "agent/customer_erase.html",
            customer=customer,
            expected=expected,
            tickets=_tickets(customer),
            error=_("Type %(what)s exactly to confirm.", what=expected),
        )
        return page, 400
    customer_privacy.erase_customer(db.session, customer, me())
    db.session.commit()
    flash(_("The customer was erased."), "success")
    return redirect(url_for("agent.customer", customer_id=customer_id))


def _exported(d: Mapping[str, Any]) -> str:
    return _("exported the data of customer #%(id)s", id=d.get("customer_id"))


def _erased(d: Mapping[str, Any]) -> str:
    return _(
        "erased customer #%(id)s (%(messages)s messages redacted, %(attachments)s attachments "
        "deleted)",
        id=d.get("customer_id"),
        messages=d.get("messages", 0),
        attachments=d.get("attachments", 0),
    )


audit_labels.register("customer.exported", _exported)
audit_labels.register("customer.erased", _erased)
