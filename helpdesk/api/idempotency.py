"""``Idempotency-Key`` on POST: the same key, token and request replay the first response
(same status, same body, ``Idempotent-Replayed: true``); the same key with another request
is a 422 ``idempotency_key_reused``. The response is stored in the same transaction as what the
request changed (:func:`commit_response`), so a retry after a lost answer, or a crash between
commit and answer, never creates a second ticket. Two requests racing with one key: the second
waits for the first (``api_tokens.find_idempotent`` holds the key) and replays its response; the
key's unique constraint backs that up (a loser's commit fails and it replays the winner)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, g, jsonify, request
from sqlalchemy.exc import IntegrityError

from helpdesk.api.auth import current_token
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.services import api_tokens
from helpdesk.services.errors import ServiceError

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"
DOC_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Retry-safe POST: the same key replays the first response for 24 hours",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _replay(stored: api_tokens.StoredResponse) -> Response:
    response = jsonify(stored.body)
    response.status_code = stored.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise ServiceError(
                _("The Idempotency-Key must be 1 to 255 printable characters."),
                code="invalid_idempotency_key",
            )
        fingerprint = api_tokens.request_fingerprint(
            request.method, request.path, request.get_data(cache=True)
        )
        stored = api_tokens.find_idempotent(db.session, current_token(), key, fingerprint)
        if stored is not None:
            return _replay(stored)
        g.idempotency = (key, fingerprint)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def commit_response(body: Any, status: int = 200) -> tuple[Any, int]:
    """Commit the request's work, with its response when an Idempotency-Key came along."""
    pending = g.pop("idempotency", None)
    if pending is None:
        db.session.commit()
        return body, status
    key, fingerprint = pending
    token = current_token()
    api_tokens.remember_response(db.session, token, key, fingerprint, status, body)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request with this key committed first: answer as it did.
        db.session.rollback()
        stored = api_tokens.find_idempotent(db.session, token, key, fingerprint)
        if stored is None:
            raise
        return _replay(stored), stored.status_code
    return body, status
