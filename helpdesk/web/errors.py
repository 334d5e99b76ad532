"""Error pages: HTML for browsers, JSON for the API; never a stack trace for the user."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from helpdesk.i18n import _
from helpdesk.services.errors import Conflict, NotFound, ServiceError


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _respond(code: int, message: str) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify({"error": message, "status": code}), code
    return render_template("errors/error.html", code=code, message=message), code


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[Response | str, int]:
        return _respond(
            400,
            _("Your session expired or the form was tampered with. Reload the page and try again."),
        )

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> tuple[Response | str, int]:
        return _respond(404, str(exc))

    @app.errorhandler(Conflict)
    def conflict(exc: Conflict) -> tuple[Response | str, int]:
        return _respond(409, str(exc))

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> tuple[Response | str, int]:
        return _respond(400, str(exc))

    @app.errorhandler(HTTPException)
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
        return _respond(code, messages.get(code, _("Something went wrong.")))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response | str, int]:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, _("Something went wrong on our side. The team has been notified."))
