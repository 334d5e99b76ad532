"""Agent authentication: password hashing and the Flask-Login user loader."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import Flask
from flask_login import LoginManager
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.i18n import _l
from helpdesk.models import Agent, Customer

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a login takes the same time either way and
# does not reveal which addresses are agents.
_DUMMY_HASH: str | None = None


def _configure_hasher(profile: str) -> None:
    """``default``: argon2-cffi's RFC 9106 parameters. ``cheapest``: for test suites only."""
    global _hasher, _DUMMY_HASH
    from argon2 import profiles

    params = profiles.CHEAPEST if profile == "cheapest" else profiles.get_default_parameters()
    if _hasher.time_cost != params.time_cost or _hasher.memory_cost != params.memory_cost:
        _hasher = PasswordHasher.from_parameters(params)
        _DUMMY_HASH = None


MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("not-a-real-password")
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, email: str, password: str) -> Agent | None:
    agent = session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
    if not verify_password(agent.password_hash if agent else None, password):
        return None
    if agent is None or not agent.active:
        return None
    if agent.password_hash and _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    return agent


def init_login(app: Flask, login_manager: LoginManager) -> None:
    _configure_hasher(str(app.config.get("PASSWORD_HASH_PROFILE", "default")))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.unauthorized_handler(json_unauthorized)

    @login_manager.user_loader
    def load_user(user_id: str) -> Agent | Customer | None:
        from helpdesk.extensions import db

        kind, _, rest = user_id.partition(":")
        raw_id, _, version = rest.partition(":")
        if not raw_id.isdigit():
            return None
        if kind == "customer":
            # Portal sessions (magic link or password): customer pages only; agent pages
            # check for an Agent and answer 404.
            return db.session.get(Customer, int(raw_id))
        if kind != "agent":
            return None
        agent = db.session.get(Agent, int(raw_id))
        if agent is None or not agent.active:
            return None
        # A session made before a deactivation or a password change is over. ("agent:<id>"
        # without a version: a session from before versions, valid until the first change.)
        current = str(agent.session_version or 0)
        return agent if version == current or (not version and current == "0") else None


def json_unauthorized() -> Any:
    """API and socket callers get a 401 with a message, pages get the login redirect."""
    from flask import jsonify, redirect, request, url_for

    if request.path.startswith("/api/"):
        return jsonify({"error": str(_l("Please sign in to continue.")), "status": 401}), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
