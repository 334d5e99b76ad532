"""HTTP side of the chat (adapter): the widget script, visitor uploads and downloads.

Uploads are HTTP (a socket message carries only the returned upload id). They are authenticated by
the visitor token in the form, not by a cookie, so CSRF cannot apply (no ambient credential) and
the blueprint is exempt; cross-origin pages listed in the channel's allowed origins may read the
answer (CORS).
"""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file
from flask_babel import force_locale

from channels.chat.lifecycle import find_chat
from channels.chat.lines import store_upload
from channels.chat.namespace import origin_allowed
from channels.chat.settings import chat_settings
from channels.chat.strings import catalog
from channels.chat.tokens import read_token
from helpdesk.extensions import csrf, db, limiter
from helpdesk.i18n import _
from helpdesk.models import Attachment
from helpdesk.services.attachments import path_for
from helpdesk.services.errors import ServiceError

bp = Blueprint(
    "chat", __name__, url_prefix="/chat", static_folder="static", static_url_path="/static"
)
csrf.exempt(bp)

STATIC = Path(__file__).parent / "static"
VENDOR_SOCKETIO = Path(__file__).resolve().parents[2] / "helpdesk/static/vendor/socket.io.min.js"
_bundle_lock = threading.Lock()
_bundle: dict[str, bytes] = {}


def build_widget(app: Any) -> bytes:
    """The one-file widget: the Socket.IO client (kept private: no global ``io`` on the host
    page), the CSS, the strings in every language, and the widget code."""
    with _bundle_lock:
        if "js" not in _bundle:
            client = VENDOR_SOCKETIO.read_text()
            css = (STATIC / "widget.css").read_text()
            # The rating offered at a chat's end is a file of its own, in the same scope.
            code = (STATIC / "widget.js").read_text() + (STATIC / "widget_rating.js").read_text()
            strings = json.dumps(catalog(app), ensure_ascii=False, separators=(",", ":"))
            _bundle["js"] = (
                "(function(){var module={exports:{}},exports=module.exports;\n"
                + client
                + "\nvar HD_IO=module.exports;var HD_CSS="
                + json.dumps(" ".join(css.split()))
                + ";var HD_STRINGS="
                + strings
                + ";\n"
                + code
                + "\n})();\n"
            ).encode()
            _bundle["gz"] = gzip.compress(_bundle["js"], 9)
        return _bundle["js"]


@bp.get("/widget.js")
def widget() -> Response:
    body = build_widget(current_app._get_current_object())  # type: ignore[attr-defined]
    gz = "gzip" in request.headers.get("Accept-Encoding", "")
    response = Response(_bundle["gz"] if gz else body, mimetype="application/javascript")
    if gz:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/demo")
def demo() -> str:
    """A plain page with the one-tag embed, as a customer's site would have it."""
    return render_template("chat/demo.html", lang=request.args.get("lang", "en"))


def _cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    settings = chat_settings(db.session)
    if origin and origin_allowed(origin, settings.allowed_origins, request.host_url):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


def _upload_limit() -> str:
    return str(current_app.config.get("RATELIMIT_CHAT_UPLOAD", "30 per hour"))


@bp.post("/api/upload")
@limiter.limit(_upload_limit)
def upload() -> tuple[Response, int]:
    lang = request.form.get("language") if request.form.get("language") in ("en", "bn") else "en"
    with force_locale(lang):
        visitor = read_token(request.form.get("token"))
        file = request.files.get("file")
        if visitor is None:
            body = {"ok": False, "code": "not_found", "error": _("Chat not found.")}
            return _cors(jsonify(body)), 404
        if file is None or not file.filename:
            body = {"ok": False, "code": "missing", "error": _("Choose a file.")}
            return _cors(jsonify(body)), 400
        settings = chat_settings(db.session)
        try:
            data = file.read(settings.upload_max_bytes + 1)
        finally:
            file.close()  # big uploads are spooled to a temporary file: free it now
        try:
            upload = store_upload(db.session, settings, visitor, file.filename, file.mimetype, data)
        except ServiceError as exc:
            db.session.rollback()
            return _cors(jsonify({"ok": False, "code": exc.code, "error": str(exc)})), 400
        db.session.commit()
        body = {"ok": True, "id": upload.id, "filename": upload.filename, "size": upload.size}
        return _cors(jsonify(body)), 200


@bp.get("/api/attachments/<int:attachment_id>")
def attachment(attachment_id: int) -> Response | tuple[Response, int]:
    """A file of the visitor's own chat (token in the query: links are opened by the browser)."""
    visitor = read_token(request.args.get("token"))
    att = db.session.get(Attachment, attachment_id)
    chat = find_chat(db.session, att.message.ticket_id) if att else None
    if (
        att is None
        or chat is None
        or visitor is None
        or chat.visitor_id != visitor
        or (att.message.internal)
    ):
        body = {"ok": False, "code": "not_found", "error": _("Attachment not found.")}
        return jsonify(body), 404
    response = send_file(
        path_for(att.sha256), mimetype="application/octet-stream", as_attachment=True,
        download_name=att.filename,
    )  # fmt: skip
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
