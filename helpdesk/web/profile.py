"""The agent's own profile (``/agent/profile``: name, language, time zone, password, API tokens)
and the
page an invited agent opens from the invitation mail to choose a password (``/welcome/<token>``).
The rules are in helpdesk.services.agents."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import refresh
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from helpdesk.extensions import db, limiter
from helpdesk.i18n import LANGUAGE_NAMES, _, _l, timezone_choices
from helpdesk.services import agents, api_tokens
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.agent import agent_required, me
from helpdesk.web.forms import choices

bp = Blueprint("profile", __name__)


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    language = SelectField(_l("Language"), choices=[])
    timezone = SelectField(_l("Time zone"), choices=[])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new", message=_l("The two passwords differ."))],
    )


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=200)])
    scope = SelectField(_l("Scope"), choices=[])


def _token_form(form: TokenForm | None = None) -> TokenForm:
    form = form or TokenForm(prefix="token")
    scopes = [
        ("read", _("Read: look only")),
        ("write", _("Write: also change tickets and reply")),
    ]
    if me().is_admin:
        scopes.append(("admin", _("Admin: also the admin resources")))
    form.scope.choices = choices(scopes)
    return form


class WelcomeForm(FlaskForm):
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new", message=_l("The two passwords differ."))],
    )


def _profile_form() -> ProfileForm:
    agent = me()
    form = ProfileForm(
        prefix="profile",
        data={
            "name": agent.name,
            "language": agent.language or "",
            "timezone": agent.timezone or "",
        }
        if request.method == "GET"
        else None,
    )
    form.language.choices = choices([("", _("Follow the browser")), *LANGUAGE_NAMES.items()])
    form.timezone.choices = choices(
        [("", _("The helpdesk's time zone"))] + [(z, z) for z in timezone_choices()]
    )
    return form


def _render(
    profile: ProfileForm | None = None,
    password: PasswordForm | None = None,
    status: int = 200,
    token: TokenForm | None = None,
    new_secret: str | None = None,
) -> tuple[str, int]:
    from flask import current_app

    return render_template(
        "agent/profile.html",
        form=profile or _profile_form(),
        password_form=password or PasswordForm(prefix="password"),
        token_form=_token_form(token),
        tokens=api_tokens.list_tokens(db.session, me()),
        new_secret=new_secret,
        instance_timezone=current_app.config["TIMEZONE"],
        min_password=agents.MIN_PASSWORD_LENGTH,
    ), status


@bp.route("/agent/profile", methods=["GET", "POST"])
@agent_required
def profile() -> tuple[str, int] | Response:
    form = _profile_form()
    if request.method == "GET":
        return _render(form)
    if not form.validate_on_submit():
        return _render(form, status=400)
    try:
        agents.update_profile(
            db.session,
            me(),
            name=form.name.data or "",
            language=form.language.data or None,
            timezone=form.timezone.data or None,
        )
    except ServiceError as exc:
        db.session.rollback()
        form.name.errors = [str(exc)]
        return _render(form, status=400)
    db.session.commit()
    if form.language.data:
        session["lang"] = form.language.data
    refresh()  # the flash below in the new language
    flash(_("Your profile is saved."), "success")
    return redirect(url_for("profile.profile"))


@bp.post("/agent/profile/password")
@agent_required
def password() -> tuple[str, int] | Response:
    form = PasswordForm(prefix="password")
    if not form.validate_on_submit():
        return _render(password=form, status=400)
    agent = me()
    try:
        agents.change_password(db.session, agent, form.current.data or "", form.new.data or "")
    except ServiceError as exc:
        db.session.rollback()
        form.new.errors = [str(exc)]
        return _render(password=form, status=400)
    db.session.commit()
    # Every other session of this agent ended (session_version); this one goes on.
    login_user(agent)
    flash(_("Your password is changed. Other sessions are signed out."), "success")
    return redirect(url_for("profile.profile"))


@bp.post("/agent/profile/tokens")
@agent_required
def create_token() -> tuple[str, int] | Response:
    """A personal API token; its secret is on this one page and never shown again."""
    form = _token_form()
    if not form.validate_on_submit():
        return _render(token=form, status=400)
    try:
        new = api_tokens.create_token(db.session, me(), form.name.data or "", form.scope.data)
    except ServiceError as exc:
        db.session.rollback()
        form.name.errors = [str(exc)]
        return _render(token=form, status=400)
    db.session.commit()
    # Rendered, not redirected: the secret must not travel in a URL or a flash in the session.
    body, status = _render(new_secret=new.secret, status=201)
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/agent/profile/tokens/<int:token_id>/revoke")
@agent_required
def revoke_token(token_id: int) -> Response:
    api_tokens.revoke_token(db.session, token_id, me())
    db.session.commit()
    flash(_("Token revoked. It no longer works."), "success")
    return redirect(url_for("profile.profile") + "#api-tokens")


@bp.route("/welcome/<token>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def welcome(token: str) -> tuple[str, int] | Response:
    """An invited agent chooses a password, then signs in."""
    try:
        agent = agents.agent_for_invite(db.session, token)
    except NotFound as exc:
        return render_template("auth/welcome.html", error=str(exc), form=None), 404
    except ServiceError as exc:
        return render_template("auth/welcome.html", error=str(exc), form=None), 410
    form = WelcomeForm()
    if form.validate_on_submit():
        try:
            agents.accept_invitation(db.session, token, form.new.data or "")
        except ServiceError as exc:
            db.session.rollback()
            form.new.errors = [str(exc)]
        else:
            db.session.commit()
            if current_user.is_authenticated:
                logout_user()
            flash(_("Your password is set. Sign in with %(email)s.", email=agent.email), "success")
            return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "auth/welcome.html", agent=agent, form=form, min_password=agents.MIN_PASSWORD_LENGTH
    ), status
