"""Admin pages for teams: name, members and automatic assignment (mode and cap).

Routes on the ``admin`` blueprint (admins only; everyone else gets the same 404 as for a page
that does not exist). The rules of automatic assignment are in helpdesk.services.assignment.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from helpdesk.extensions import db
from helpdesk.i18n import _, _l
from helpdesk.models import Agent, AssignmentMode, Calendar, Team
from helpdesk.services import assignment
from helpdesk.services.agents import save_team
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.admin import admin_required, bp
from helpdesk.web.forms import choices


class TeamEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    members = SelectMultipleField(
        _l("Members"),
        coerce=int,
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    mode = SelectField(_l("Automatic assignment"), choices=[], validators=[DataRequired()])
    max_open = IntegerField(
        _l("Maximum open tickets per agent"),
        validators=[Optional(), NumberRange(min=1, max=assignment.MAX_OPEN_LIMIT)],
        description=_l("New, open and pending tickets count. Leave empty for no maximum."),
    )
    calendar = SelectField(
        _l("Business hours"),
        choices=[],
        default="",
        description=_l("The calendar of the team's SLA targets and opening hours."),
    )


def _form(team: Team | None) -> TeamEditForm:
    data = None
    if team is not None and request.method == "GET":
        data = {
            "name": team.name,
            "members": [m.id for m in team.members],
            "mode": team.assignment_mode.value,
            "max_open": team.assignment_max_open,
            "calendar": str(team.calendar_id or ""),
        }
    form = TeamEditForm(data=data)
    current = {m.id for m in team.members} if team is not None else set()
    # Deactivated agents are offered only while still members, so saving never drops them
    # silently; they get no tickets either way.
    agents = db.session.scalars(
        select(Agent).where(Agent.active.is_(True) | Agent.id.in_(current)).order_by(Agent.name)
    )
    form.members.choices = [
        (a.id, f"{a.name} <{a.email}>" + ("" if a.active else f" ({_('deactivated')})"))
        for a in agents
    ]
    form.mode.choices = choices((m.value, assignment.MODE_LABELS[m]) for m in AssignmentMode)
    calendars = db.session.execute(select(Calendar.id, Calendar.name).order_by(Calendar.name))
    form.calendar.choices = choices(
        [("", _("Default calendar")), *((str(c_id), c_name) for c_id, c_name in calendars)]
    )
    return form


@bp.get("/teams")
@admin_required
def teams() -> str:
    rows = [
        assignment.team_overview(db.session, t)
        for t in db.session.scalars(select(Team).order_by(Team.name))
    ]
    return render_template("admin/teams.html", rows=rows)


@bp.route("/teams/new", methods=["GET", "POST"])
@bp.route("/teams/<int:team_id>", methods=["GET", "POST"])
@admin_required
def team_edit(team_id: int | None = None) -> str | tuple[str, int] | Response:
    team = db.session.get(Team, team_id) if team_id is not None else None
    if team_id is not None and team is None:
        raise NotFound(_("Team not found."))
    form = _form(team)
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("admin/team_form.html", form=form, team=team), 400
        try:
            saved = save_team(
                db.session,
                current_user._get_current_object(),
                name=form.name.data or "",
                member_ids=form.members.data or [],
                mode=form.mode.data or "off",
                max_open=form.max_open.data,
                team=team,
                calendar_id=int(form.calendar.data) if form.calendar.data else None,
            )
        except ServiceError as exc:
            db.session.rollback()  # shown on the form, everything typed kept
            form.name.errors = [str(exc)]
            return render_template("admin/team_form.html", form=form, team=team), 400
        db.session.commit()
        flash(_("Team %(name)s saved.", name=saved.name), "success")
        return redirect(url_for("admin.teams"))
    overview = assignment.team_overview(db.session, team) if team is not None else None
    return render_template("admin/team_form.html", form=form, team=team, overview=overview)
