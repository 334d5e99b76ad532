"""``GET /api/v1/attachments/<id>``: a file, to a token whose agent may see its ticket (the
same rule as the agent's pages: ``access_attachment``), with the same safe headers."""

from __future__ import annotations

from flask import Response, send_file
from flask_smorest import Blueprint

from helpdesk.api.auth import me
from helpdesk.api.errors import ErrorSchema
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.services.access import access_attachment
from helpdesk.services.attachments import path_for
from helpdesk.services.errors import NotFound

blp = Blueprint(
    "api_attachments",
    __name__,
    url_prefix="/api/v1/attachments",
    description="Attachments of messages, downloaded with the token.",
)


@blp.route("/<int:attachment_id>", methods=["GET"])
@blp.doc(
    responses={
        "200": {
            "description": "The file",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    }
)
@blp.alt_response(404, schema=ErrorSchema, description="An error")
def download(attachment_id: int) -> Response:
    """The file's bytes (`Content-Disposition: attachment` with its name)."""
    attachment = access_attachment(db.session, me(), attachment_id)
    path = path_for(attachment.sha256)
    if not path.exists():
        raise NotFound(_("Attachment not found."))
    response = send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=attachment.filename,
        conditional=True,
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
