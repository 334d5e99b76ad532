"""Sign in and out, and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from helpdesk.auth import authenticate
from helpdesk.db import utcnow
from helpdesk.extensions import db, limiter
from helpdesk.i18n import _
from helpdesk.models import Agent, Customer
from helpdesk.web.forms import LanguageForm, LoginForm

bp = Blueprint("auth", __name__)


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths: an open redirect would make our login page a phishing tool."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def _login_limit() -> str:
    return str(current_app.config["RATELIMIT_LOGIN"])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | Response:
    if getattr(current_user, "is_agent", False):
        return redirect(url_for("agent.queue"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        agent = authenticate(db.session, form.email.data or "", form.password.data or "")
        if agent is None:
            flash(_("Wrong email or password."), "error")
        else:
            agent.last_login_at = utcnow()
            db.session.commit()
            # A fresh session on sign-in (no fixation), then Flask-Login's own cookie.
            lang = session.get("lang")
            session.clear()
            if lang:
                session["lang"] = lang
            login_user(agent, remember=bool(form.remember.data))
            return redirect(safe_next(form.next.data, url_for("agent.queue")))
    elif request.method == "POST":
        flash(_("Enter your email and password."), "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language() -> Response:
    form = LanguageForm()
    if form.validate_on_submit():
        lang = form.lang.data
        session["lang"] = lang
        user = current_user._get_current_object() if current_user.is_authenticated else None
        if isinstance(user, Agent | Customer):
            # Agents' UI language; for a signed-in customer also the language of their mail.
            user.language = lang
            db.session.commit()
    return redirect(
        safe_next(
            form.next.data or (request.referrer and urlsplit(request.referrer).path),
            url_for("auth.login"),
        )
    )
