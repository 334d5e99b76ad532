"""Who is calling: ``Authorization: Bearer <token>``, nothing else.

The API never reads the session cookie (so it needs no CSRF token: a browser cannot make a
cross-site request carry an ``Authorization`` header). A token acts as its agent, narrowed by
its scope: ``read`` may GET, ``write`` may also change what the agent may change, ``admin``
may also reach the admin resources while its agent is an admin. A revoked token, an unknown
one and one of a deactivated agent are the same 401.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import current_app, g, request
from werkzeug.exceptions import Forbidden, Unauthorized

from helpdesk.extensions import db
from helpdesk.models import Agent, ApiToken, TokenScope
from helpdesk.services import api_tokens

F = TypeVar("F", bound=Callable[..., Any])
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_RANK = {TokenScope.READ: 0, TokenScope.WRITE: 1, TokenScope.ADMIN: 2}


def bearer_secret() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def rate_limit_key() -> str:
    """Flask-Limiter's key for the API: the token (by its hash: no database look-up before the
    limit), else the client's address."""
    secret = bearer_secret()
    if secret:
        return "api-token:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    return "api-ip:" + (request.remote_addr or "")


def _locale() -> None:
    languages = list(current_app.config["LANGUAGES"])
    best = request.accept_languages.best_match(languages)
    # The API speaks the client's Accept-Language, never a cookie's or a profile's choice.
    g.force_locale = best or languages[0]


def authenticate_request() -> None:
    """Before every API view: the token, its agent, the scope the method needs."""
    _locale()
    if request.endpoint and request.endpoint.startswith("api-docs."):
        return
    secret = bearer_secret()
    token = api_tokens.authenticate(db.session, secret) if secret else None
    if token is None:
        raise Unauthorized()
    if api_tokens.needs_touch(token):
        # In a transaction of its own, committed whatever the view does; the request's session
        # has only read the token so far and lets go of its transaction first (on SQLite a
        # second writer in this process would otherwise wait for it).
        token_id = token.id
        db.session.rollback()
        with db.transaction() as session:
            api_tokens.touch_token(session, token_id)
        token = db.session.get(ApiToken, token_id) or token
    g.api_token = token
    view = current_app.view_functions.get(request.endpoint or "")
    needed = getattr(view, "_api_scope", None) or (
        TokenScope.READ if request.method in READ_METHODS else TokenScope.WRITE
    )
    if _RANK[api_tokens.effective_scope(token)] < _RANK[needed]:
        raise Forbidden()


def requires_scope(scope: TokenScope) -> Callable[[F], F]:
    """Mark a view as needing more than its method implies (``admin`` for admin resources)."""

    def mark(view: F) -> F:
        view._api_scope = scope  # type: ignore[attr-defined]
        return view

    return mark


def current_token() -> ApiToken:
    return cast(ApiToken, g.api_token)


def me() -> Agent:
    return current_token().agent


def token_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("api_token") is None:
            raise Unauthorized()
        return view(*args, **kwargs)

    return cast(F, wrapped)
