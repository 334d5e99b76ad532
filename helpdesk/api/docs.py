"""``/api/docs``: the browsable reference (Swagger UI) of the generated OpenAPI document, from
local files only (installations may be offline): the Swagger UI build shipped in the
``flask-swagger-ui`` package, started by our own script (no inline script: the pages' strict
Content-Security-Policy holds, helpdesk/web/security.py)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, render_template, send_from_directory
from werkzeug.wrappers import Response

DIST = Path(flask_swagger_ui.__file__).parent / "dist"
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "LICENSE"}

bp = Blueprint("api_docs_ui", __name__, url_prefix="/api/docs")


@bp.get("")
def reference() -> str:
    return render_template("api/docs.html")


@bp.get("/assets/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        from werkzeug.exceptions import NotFound

        raise NotFound()
    response = send_from_directory(DIST, name, max_age=86400)
    if name == "LICENSE":
        response.mimetype = "text/plain"
    return response


def init_app(app: Flask) -> None:
    if "api_docs_ui" not in app.blueprints:
        app.register_blueprint(bp)
