"""Signed visitor tokens: the widget keeps one in localStorage so a reload or a new tab resumes
the same conversation. The token only carries a random visitor id, signed with the instance
secret (itsdangerous), so it cannot be forged or pointed at someone else's chat."""

from __future__ import annotations

import secrets

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "helpdesk.chat.visitor"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def new_visitor() -> tuple[str, str]:
    """A fresh ``(visitor_id, token)``."""
    visitor_id = secrets.token_urlsafe(18)
    return visitor_id, _serializer().dumps({"v": visitor_id})


def read_token(token: object) -> str | None:
    """The visitor id inside a valid token, else ``None``."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    visitor = data.get("v") if isinstance(data, dict) else None
    return visitor if isinstance(visitor, str) and 8 <= len(visitor) <= 64 else None
