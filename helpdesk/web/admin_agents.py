"""Admin pages for agents (``/admin/agents``): invite (a mail with a set-password link), change
the role and the KB-editor permission, deactivate and reactivate.

Routes on the ``admin`` blueprint (admins only). The rules (no self-demotion, always one active
admin, what deactivation does) are in helpdesk.services.agents.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response
from wtforms import BooleanField, EmailField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from helpdesk.extensions import db
from helpdesk.i18n import LANGUAGE_NAMES, _, _l
from helpdesk.models import Agent, AgentRole, Team
from helpdesk.services import agents
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.admin import admin_required, bp
from helpdesk.web.agent import me
from helpdesk.web.forms import choices

ROLE_LABELS = {AgentRole.AGENT: _l("Agent"), AgentRole.ADMIN: _l("Admin")}


class InviteForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(), Length(max=320)],  # the service checks the address
    )
    # An invitation makes an agent unless the admin chooses otherwise (never admin by default).
    role = SelectField(_l("Role"), choices=[], default=AgentRole.AGENT.value)
    kb_editor = BooleanField(_l("Knowledge-base editor (may publish articles)"))
    language = SelectField(_l("Language of the invitation"), choices=[])
    teams = SelectMultipleField(
        _l("Teams"),
        coerce=int,
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[])
    kb_editor = BooleanField(_l("KB editor"))


def _role_choices() -> list[SelectChoice]:
    return choices((r.value, ROLE_LABELS[r]) for r in AgentRole)


def _invite_form() -> InviteForm:
    form = InviteForm(prefix="invite")
    form.role.choices = _role_choices()
    form.language.choices = choices(LANGUAGE_NAMES.items())
    form.teams.choices = [
        (t.id, t.name) for t in db.session.scalars(select(Team).order_by(Team.name))
    ]
    return form


def _agent(agent_id: int) -> Agent:
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(_("Agent not found."))
    return agent


def _page(invite: InviteForm | None = None, status: int = 200) -> tuple[str, int]:
    rows = db.session.scalars(
        select(Agent).options(selectinload(Agent.teams)).order_by(Agent.active.desc(), Agent.name)
    ).all()
    return render_template(
        "admin/agents.html",
        agents=rows,
        invite=invite or _invite_form(),
        role_choices=[(r.value, str(ROLE_LABELS[r])) for r in AgentRole],
        role_labels=ROLE_LABELS,
        invite_hours=agents.invite_hours(),
    ), status


@bp.get("/agents")
@admin_required
def agents_list() -> tuple[str, int]:
    return _page()


@bp.post("/agents/invite")
@admin_required
def agent_invite() -> tuple[str, int] | Response:
    form = _invite_form()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        agent = agents.invite_agent(
            db.session,
            me(),
            email=form.email.data or "",
            name=form.name.data or "",
            role=form.role.data or AgentRole.AGENT.value,
            kb_editor=bool(form.kb_editor.data),
            team_ids=form.teams.data or [],
            language=form.language.data or None,
        )
    except ServiceError as exc:
        db.session.rollback()  # shown on the form, everything typed kept
        form.email.errors = [str(exc)]
        return _page(form, 400)
    db.session.commit()
    flash(_("Invitation sent to %(email)s.", email=agent.email), "success")
    return redirect(url_for("admin.agents_list"))


@bp.post("/agents/<int:agent_id>/role")
@admin_required
def agent_role(agent_id: int) -> Response:
    agent = _agent(agent_id)
    form = RoleForm()
    form.role.choices = _role_choices()
    if not form.validate_on_submit():
        flash(_("Unknown role: %(role)s", role=request.form.get("role", "")), "error")
        return redirect(url_for("admin.agents_list"))
    try:
        agents.change_role(db.session, me(), agent, form.role.data or "", bool(form.kb_editor.data))
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.agents_list"))
    db.session.commit()
    flash(_("%(name)s saved.", name=agent.name), "success")
    return redirect(url_for("admin.agents_list"))


@bp.post("/agents/<int:agent_id>/active")
@admin_required
def agent_active(agent_id: int) -> Response:
    agent = _agent(agent_id)
    if not FlaskForm().validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("admin.agents_list"))
    active = request.form.get("active") == "1"
    try:
        agents.set_agent_active(db.session, me(), agent, active)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.agents_list"))
    db.session.commit()
    if active:
        flash(_("%(name)s can sign in again.", name=agent.name), "success")
    else:
        flash(_("%(name)s is deactivated and signed out.", name=agent.name), "success")
    return redirect(url_for("admin.agents_list"))


@bp.post("/agents/<int:agent_id>/resend")
@admin_required
def agent_resend(agent_id: int) -> Response:
    agent = _agent(agent_id)
    if not FlaskForm().validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("admin.agents_list"))
    try:
        agents.send_invitation(db.session, me(), agent)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("admin.agents_list"))
    db.session.commit()
    flash(_("Invitation sent to %(email)s.", email=agent.email), "success")
    return redirect(url_for("admin.agents_list"))
