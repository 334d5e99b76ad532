"""Macros in the agent UI: manage them, find them from the reply box, apply them to a ticket."""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.extensions import db
from helpdesk.i18n import _, _l
from helpdesk.models import Macro, Priority, Team, TicketStatus
from helpdesk.services import macros
from helpdesk.services.access import access_ticket_by_number
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.agent import _agents, agent_required, bp, me
from helpdesk.web.filters import PRIORITY_LABELS, STATUS_LABELS
from helpdesk.web.forms import choices


class MacroForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    body_en = TextAreaField(_l("Text (English)"), validators=[Length(max=20_000)])
    body_bn = TextAreaField(_l("Text (Bengali)"), validators=[Length(max=20_000)])
    shared = BooleanField(_l("Shared with all agents"))
    status = SelectField(_l("Set status"), choices=[], validators=[Optional()])
    priority = SelectField(_l("Set priority"), choices=[], validators=[Optional()])
    assignee = SelectField(_l("Assign to"), choices=[], validators=[Optional()])
    team_id = SelectField(_l("Move to team"), choices=[], validators=[Optional()])
    add_tags = StringField(_l("Add tags"), validators=[Length(max=500)])


def _form(data: Any = None) -> MacroForm:
    form = MacroForm(data=data)
    keep = ("", _("(leave as is)"))
    form.status.choices = choices([keep, *((s.value, STATUS_LABELS[s]) for s in TicketStatus)])
    form.priority.choices = choices([keep, *((str(int(p)), PRIORITY_LABELS[p]) for p in Priority)])
    form.assignee.choices = choices(
        [keep, ("me", _("The agent using the macro")), *((str(a.id), a.name) for a in _agents())]
    )
    teams = db.session.scalars(select(Team).order_by(Team.name))
    form.team_id.choices = choices([keep, *((str(t.id), t.name) for t in teams)])
    return form


def _actions(form: MacroForm) -> dict[str, Any]:
    return {
        "status": form.status.data or None,
        "priority": form.priority.data or None,
        "assignee": form.assignee.data or None,
        "team_id": form.team_id.data or None,
        "add_tags": [t for t in (form.add_tags.data or "").split(",") if t.strip()],
    }


@bp.get("/macros")
@agent_required
def macros_list() -> str:
    return render_template(
        "agent/macros.html",
        macros=macros.visible_macros(db.session, me(), request.args.get("q", ""), limit=500),
        q=request.args.get("q", ""),
        can_edit=lambda m: macros.can_edit(me(), m),
    )


@bp.route("/macros/new", methods=["GET", "POST"])
@bp.route("/macros/<int:macro_id>/edit", methods=["GET", "POST"])
@agent_required
def macro_edit(macro_id: int | None = None) -> str | tuple[str, int] | Response:
    macro = macros.get_macro(db.session, me(), macro_id) if macro_id else None
    if macro is not None and not macros.can_edit(me(), macro):
        raise NotFound(_("Macro not found."))
    data = None
    if macro is not None and request.method == "GET":
        a = macro.actions or {}
        data = {
            "name": macro.name,
            "body_en": macro.body_en,
            "body_bn": macro.body_bn,
            "shared": macro.shared,
            "status": a.get("status", ""),
            "priority": str(a.get("priority", "")),
            "assignee": str(a.get("assignee", "")),
            "team_id": str(a.get("team_id", "")),
            "add_tags": ", ".join(a.get("add_tags", [])),
        }
    form = _form(data)
    if form.validate_on_submit():
        try:
            macros.save_macro(
                db.session,
                me(),
                name=form.name.data or "",
                body_en=form.body_en.data or "",
                body_bn=form.body_bn.data or "",
                actions=_actions(form),
                shared=bool(form.shared.data),
                macro=macro,
            )
        except NotFound:
            raise
        except ServiceError as exc:
            # Shown on the form with everything typed kept.
            db.session.rollback()
            form.body_en.errors = [str(exc)]
            return render_template("agent/macro_form.html", form=form, macro=macro), 400
        db.session.commit()
        flash(_("Macro saved."), "success")
        return redirect(url_for("agent.macros_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("agent/macro_form.html", form=form, macro=macro), status


@bp.post("/macros/<int:macro_id>/delete")
@agent_required
def macro_delete(macro_id: int) -> Response:
    macros.delete_macro(db.session, me(), macros.get_macro(db.session, me(), macro_id))
    db.session.commit()
    flash(_("Macro deleted."), "success")
    return redirect(url_for("agent.macros_list"))


@bp.get("/macros/search")
@agent_required
def macro_search() -> Response:
    """Macros matching ``q``; with ``ticket`` (a number) each preview is the text the macro
    would insert there (the customer's language, placeholders filled), else the text in the
    agent's language."""
    agent = me()
    found = macros.visible_macros(db.session, agent, request.args.get("q", ""), limit=10)
    number = request.args.get("ticket", type=int)
    ticket = access_ticket_by_number(db.session, agent, number) if number else None

    def preview(macro: Macro) -> str:
        if ticket is not None:
            try:
                return macros.render_macro(macro, ticket, agent)[:120]
            except ServiceError:
                pass  # a template error shows when applied; the raw text previews it here
        return macros.macro_body(macro, str(get_locale() or "en"))[:120]

    return jsonify([{"id": m.id, "name": m.name, "preview": preview(m)} for m in found])


@bp.post("/tickets/<int:number>/macros/<int:macro_id>/apply")
@agent_required
def macro_apply(number: int, macro_id: int) -> Response:
    ticket = access_ticket_by_number(db.session, me(), number)
    macro = macros.get_macro(db.session, me(), macro_id)
    text = macros.apply_macro(db.session, macro, ticket, me())
    db.session.commit()
    return jsonify({"text": text, "version": ticket.version, "status": ticket.status.value})
