"""Serving attachments and raw mail, to whoever may see the ticket, with safe headers."""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_file
from flask_login import current_user

from helpdesk.extensions import db
from helpdesk.models import Agent, Message
from helpdesk.services.access import access_attachment, access_ticket
from helpdesk.services.attachments import path_for

bp = Blueprint("attachments", __name__)

# Types a browser may show inline without risk of running script in our origin.
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
}


def _viewer() -> object | None:
    return current_user._get_current_object() if current_user.is_authenticated else None


def _harden(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Even a file we got wrong cannot run script or reach our cookies.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
    )
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/attachments/<int:attachment_id>/<path:filename>")
def download(attachment_id: int, filename: str) -> Response:
    attachment = access_attachment(db.session, _viewer(), attachment_id)  # type: ignore[arg-type]
    path = path_for(attachment.sha256)
    if not path.exists():
        abort(404)
    inline = attachment.content_type.lower() in INLINE_TYPES
    response = send_file(
        path,
        mimetype=attachment.content_type if inline else "application/octet-stream",
        as_attachment=not inline,
        download_name=attachment.filename,
        conditional=True,
    )
    return _harden(response)


@bp.get("/agent/messages/<int:message_id>/raw")
def raw_message(message_id: int) -> Response:
    viewer = _viewer()
    if not isinstance(viewer, Agent):
        abort(404)
    message = db.session.get(Message, message_id)
    if message is None or not message.raw_sha256:
        abort(404)
    access_ticket(db.session, viewer, message.ticket_id)
    response = send_file(
        path_for(message.raw_sha256),
        mimetype="message/rfc822",
        as_attachment=True,
        download_name=f"message-{message.id}.eml",
    )
    return _harden(response)
