"""The one error shape of the API: ``{"error": {"code", "message", "fields"}}``.

Every 4xx and 5xx under ``/api/v1/`` answers in it: the services' errors, the library's
validation errors (422, with ``fields``), Werkzeug's 404/405 (also for a path no route matches,
through :func:`helpdesk.web.errors.register_json_shape`), the rate limit's 429 (with
``Retry-After``) and an unexpected error's 500 (logged, no traceback). ``message`` is translated
per ``Accept-Language``; ``code`` is stable for clients to branch on.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from helpdesk.i18n import _
from helpdesk.services.errors import Conflict, Forbidden, NotFound, ServiceError

PREFIX = "/api/v1/"
# Not the token API: the KB's public search (no token; its own error shape, issue 13). The
# KB's articles and categories under /api/v1/kb/ are the token API's.
_NOT_OURS = ("/api/v1/kb/search",)


class ErrorDetail(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "Stable, machine-readable"})
    message = ma.fields.String(
        required=True, metadata={"description": "For people, in the Accept-Language"}
    )
    # ("fields" is a Schema's own attribute: the JSON name comes from data_key.)
    field_errors = ma.fields.Dict(
        data_key="fields",
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "What is wrong with each field of the request, by name"},
    )


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorDetail, required=True)


def is_api_request() -> bool:
    path = request.path
    return path.startswith(PREFIX) and not path.startswith(_NOT_OURS)


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _messages() -> dict[int, tuple[str, str]]:
    return {
        400: ("bad_request", _("The request was not understood.")),
        401: ("unauthorized", _("A valid API token is required.")),
        403: ("forbidden", _("This token may not do this.")),
        404: ("not_found", _("Not found.")),
        405: ("method_not_allowed", _("This method is not allowed here.")),
        409: ("conflict", _("The request conflicts with the current state.")),
        413: ("too_large", _("The upload is too large.")),
        415: ("unsupported_media_type", _("Send JSON (or multipart form data where allowed).")),
        422: ("invalid", _("Some fields are not valid.")),
        429: ("rate_limited", _("Too many requests. Wait and try again.")),
    }


def _flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """webargs' ``{"json": {"customer": {"email": ["..."]}}}`` -> ``{"customer.email": "..."}``."""
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = " ".join(messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "_schema"] = str(messages)
    return out


def validation_fields(messages: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    if isinstance(messages, dict):
        for location, value in messages.items():
            # The location (json, query, form, files) is not part of a field's name.
            if location in ("json", "query", "form", "files", "headers", "json_or_form"):
                fields.update(_flatten(value))
            else:
                fields.update(_flatten({location: value}))
    return fields or _flatten(messages)


def http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code, message = _messages().get(status, ("http_error", _("The request failed.")))
    data = getattr(exc, "data", None) or {}
    fields: dict[str, str] | None = None
    headers: dict[str, str] = {}
    if status == 422 and (data.get("messages") or data.get("errors")):
        fields = validation_fields(data.get("messages") or data.get("errors"))
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="helpdesk"'
    if status == 429:
        headers["Retry-After"] = str(_retry_after())
    if status >= 500:
        current_app.logger.error("API error %s on %s %s", status, request.method, request.path)
        return error_response(500, "internal", _("Something went wrong on our side."))
    return error_response(status, code, message, fields, headers)


def _retry_after() -> int:
    from helpdesk.extensions import limiter

    limit = limiter.current_limit
    if limit is None:
        return 60
    import time

    return max(1, int(limit.reset_at - time.time()) + 1)


def service_error(exc: ServiceError) -> Response:
    status = 400
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Forbidden):
        status = 403
    elif isinstance(exc, Conflict):
        status = 409
    fields = getattr(exc, "fields", None)
    if fields or exc.code == "idempotency_key_reused":
        status = 422  # the request was understood, but its fields (or its key) cannot be used
    return error_response(status, exc.code, str(exc), fields)


def unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return http_error(exc)
    if isinstance(exc, ServiceError):
        return service_error(exc)
    current_app.logger.exception("unhandled API error on %s %s", request.method, request.path)
    return error_response(500, "internal", _("Something went wrong on our side."))


def register_blueprint_handlers(blueprints: list[Any]) -> None:
    """The shape for the API's own views (errors raised in them or their before_request)."""
    for bp in blueprints:
        bp.register_error_handler(HTTPException, http_error)
        bp.register_error_handler(ServiceError, service_error)
        bp.register_error_handler(Exception, unexpected)


def register_app_shape() -> None:
    """...and for paths under /api/v1/ no view matched (the app's error handlers ask)."""
    from helpdesk.web.errors import register_json_shape

    register_json_shape(is_api_request, unexpected)
