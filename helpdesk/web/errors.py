"""Error pages: HTML for browsers, JSON for the API; never a stack trace for the user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from helpdesk.i18n import _
from helpdesk.services.errors import Conflict, Forbidden, NotFound, ServiceError

# Parts of the site with a JSON error shape of their own (the token API, helpdesk/api/errors.py):
# (does it apply to this request?, the response for the exception).
_json_shapes: list[tuple[Callable[[], bool], Callable[[Exception], Response]]] = []
H = TypeVar("H", bound=Callable[..., Any])


def register_json_shape(
    applies: Callable[[], bool], render: Callable[[Exception], Response]
) -> None:
    """Errors of requests ``applies()`` says are its own are rendered by ``render(exc)``."""
    if (applies, render) not in _json_shapes:
        _json_shapes.append((applies, render))


def _shaped(handler: H) -> H:
    def wrapped(exc: Exception) -> Any:
        for applies, render in _json_shapes:
            if applies():
                return render(exc)
        return handler(exc)

    wrapped.__name__ = handler.__name__
    return wrapped  # type: ignore[return-value]


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _respond(code: int, message: str, name: str | None = None) -> tuple[Response | str, int]:
    """``name``: the machine-readable code JSON clients branch on (``message`` is translated)."""
    if _wants_json():
        return jsonify({"error": message, "code": name or f"http_{code}", "status": code}), code
    return render_template("errors/error.html", code=code, message=message), code


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def refuse_nul_characters() -> None:
    """No text with NUL characters gets in, by any form, query or JSON body: PostgreSQL refuses
    them in text (so the same input would store on SQLite and fail with a 500 on PostgreSQL),
    and no person types one."""
    values: list[Any] = [*request.args.values(), *request.args.keys()]
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        values += [*request.form.values(), *request.form.keys()]
        values += [f.filename or "" for f in request.files.values()]
        if request.is_json:
            values.append(request.get_json(silent=True))
    if any(_has_nul(v) for v in values):
        raise ServiceError(_("Text may not contain NUL characters."), code="nul_character")


def register(app: Flask) -> None:
    app.before_request(refuse_nul_characters)

    @app.errorhandler(CSRFError)
    @_shaped
    def csrf_error(exc: CSRFError) -> tuple[Response | str, int]:
        return _respond(
            400,
            _("Your session expired or the form was tampered with. Reload the page and try again."),
            "csrf",
        )

    @app.errorhandler(NotFound)
    @_shaped
    def not_found(exc: NotFound) -> tuple[Response | str, int]:
        return _respond(404, str(exc), exc.code)

    @app.errorhandler(Forbidden)
    @_shaped
    def forbidden(exc: Forbidden) -> tuple[Response | str, int]:
        return _respond(403, str(exc), exc.code)

    @app.errorhandler(Conflict)
    @_shaped
    def conflict(exc: Conflict) -> tuple[Response | str, int]:
        return _respond(409, str(exc), exc.code)

    @app.errorhandler(ServiceError)
    @_shaped
    def service_error(exc: ServiceError) -> tuple[Response | str, int]:
        return _respond(400, str(exc), exc.code)

    @app.errorhandler(HTTPException)
    @_shaped
    def http_error(exc: HTTPException) -> tuple[Response | str, int]:
        code = exc.code or 500
        messages = {
            400: _("The request was not understood."),
            403: _("You do not have access to this page."),
            404: _("Page not found."),
            405: _("This action is not allowed here."),
            413: _("The upload is too large."),
            429: _("Too many attempts. Please wait a minute and try again."),
        }
        names = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "rate_limited"}
        return _respond(code, messages.get(code, _("Something went wrong.")), names.get(code))

    @app.errorhandler(Exception)
    @_shaped
    def unexpected(exc: Exception) -> tuple[Response | str, int]:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(
            500, _("Something went wrong on our side. The team has been notified."), "internal"
        )
