"""Agent actions beyond one ticket's properties: merge, split, bulk changes from the queue.

Routes live on the agent blueprint; this module is imported before the blueprint is registered.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.i18n import _, _n
from helpdesk.models import Message, Ticket, TicketStatus
from helpdesk.services import ticket_merge
from helpdesk.services.access import access_ticket, access_ticket_by_number
from helpdesk.services.bulk import BulkChange, bulk_update
from helpdesk.services.custom_fields import FieldErrors
from helpdesk.services.errors import ServiceError
from helpdesk.web.agent import agent_required, bp, me
from helpdesk.web.auth_views import safe_next


def _number(raw: str | None) -> int:
    value = (raw or "").strip().lstrip("#")
    if not value.isdigit():
        raise ServiceError(_("Enter a ticket number, like 1042."))
    return int(value)


@bp.post("/tickets/<int:number>/merge")
@agent_required
def merge(number: int) -> Response:
    source = access_ticket_by_number(db.session, me(), number)
    target = access_ticket_by_number(db.session, me(), _number(request.form.get("target")))
    ticket_merge.merge_tickets(db.session, source, target, me())
    db.session.commit()
    flash(
        _(
            "%(source)s was merged into %(target)s.",
            source=source.display_number,
            target=target.display_number,
        ),
        "success",
    )
    return redirect(url_for("agent.ticket", number=target.number))


@bp.post("/messages/<int:message_id>/split")
@agent_required
def split(message_id: int) -> Response:
    message = db.session.get(Message, message_id)
    if message is None:
        abort(404)
    access_ticket(db.session, me(), message.ticket_id)
    new = ticket_merge.split_message(db.session, message, me())
    db.session.commit()
    flash(_("The message is now ticket %(number)s.", number=new.display_number), "success")
    return redirect(url_for("agent.ticket", number=new.number))


def _opt_int(name: str) -> int | None:
    raw = request.form.get(name, "")
    if raw == "":
        return None
    if raw == "none":
        return 0
    if not raw.isdigit():
        raise ServiceError(_("Invalid value for %(name)s.", name=name))
    return int(raw)


@bp.post("/bulk")
@agent_required
def bulk() -> Response:
    back = safe_next(request.form.get("next"), url_for("agent.queue"))
    ids = [int(v) for v in request.form.getlist("ticket") if v.isdigit()]
    if not ids:
        flash(_("Select at least one ticket."), "error")
        return redirect(back)
    action = request.form.get("action", "apply")
    if action == "merge":
        target = access_ticket_by_number(db.session, me(), _number(request.form.get("target")))
        sources = db.session.scalars(
            select(Ticket).where(Ticket.id.in_(ids), Ticket.id != target.id)
        )
        merged = 0
        for source in sources:
            ticket_merge.merge_tickets(db.session, source, target, me())
            merged += 1
        db.session.commit()
        flash(
            _n(
                "%(num)d ticket merged into %(target)s.",
                "%(num)d tickets merged into %(target)s.",
                merged,
                target=target.display_number,
            ),
            "success",
        )
        return redirect(back)
    status = request.form.get("status") or None
    try:
        change = BulkChange(
            status=TicketStatus(status) if status else None,
            priority=_opt_int("priority"),
            assignee_id=me().id if request.form.get("assignee") == "me" else _opt_int("assignee"),
            team_id=_opt_int("team"),
            add_tags=tuple(t for t in request.form.get("add_tags", "").split(",") if t.strip()),
        )
    except ValueError:
        raise ServiceError(_("Unknown status.")) from None
    if change == BulkChange():
        flash(_("Choose what to change."), "error")
        return redirect(back)
    try:
        changed = bulk_update(db.session, ids, change, me())
    except FieldErrors as exc:
        # A selected ticket cannot be resolved yet (a required field is empty): all or none.
        db.session.rollback()
        flash(_("No ticket was changed. %(reason)s", reason=str(exc)), "error")
        return redirect(back)
    db.session.commit()
    flash(_n("%(num)d ticket updated.", "%(num)d tickets updated.", len(changed)), "success")
    return redirect(back)
