"""An agent sends a file in a chat (adapter): one HTTP request is one chat line.

Files go over HTTP, not the socket (Socket.IO frames are a poor carrier for megabytes). The
request carries the agent's session cookie, so unlike the visitor's upload it is CSRF-protected
(the agent UI sends the page's token in ``X-CSRFToken``). The line is idempotent by its client
id like every chat line, stored as a reply with the file attached (the ticket keeps it), and
reaches the visitor through the outbox as ``chat.message`` with an ``attachments`` entry the
visitor opens with their own token only (``GET /chat/api/attachments/<id>?token=``).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user, login_required

from channels.chat.lifecycle import agent_chat
from channels.chat.lines import agent_message, check_upload
from channels.chat.payloads import chat_line
from channels.chat.settings import chat_settings
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Agent
from helpdesk.services.errors import NotFound, ServiceError

bp = Blueprint("chat_agent", __name__, url_prefix="/agent/chats")


def _answer(body: dict[str, object], status: int) -> tuple[Response, int]:
    return jsonify(body), status


@bp.post("/<int:ticket_id>/files")
@login_required
def send_chat_file(ticket_id: int) -> tuple[Response, int]:
    agent = current_user._get_current_object()
    if not isinstance(agent, Agent):
        return _answer({"ok": False, "code": "not_found", "error": _("Chat not found.")}, 404)
    file = request.files.get("file")
    try:
        chat = agent_chat(db.session, agent, ticket_id)
        if file is None or not file.filename:
            raise ServiceError(_("Choose a file."), code="missing")
        settings = chat_settings(db.session)
        try:
            # One byte over the limit is enough to refuse; never read a huge upload whole.
            data = file.read(settings.upload_max_bytes + 1)
        finally:
            file.close()
        ref = check_upload(settings, file.filename, file.mimetype, data)
        message, _duplicate = agent_message(
            db.session,
            chat,
            agent,
            text=request.form.get("text", "")[:20_000],
            client_id=request.form.get("client_id", "")[:64],
            attachments=[ref],
        )
        db.session.commit()
    except NotFound as exc:
        db.session.rollback()
        return _answer({"ok": False, "code": exc.code, "error": str(exc)}, 404)
    except ServiceError as exc:
        db.session.rollback()
        return _answer({"ok": False, "code": exc.code, "error": str(exc)}, 400)
    return _answer({"ok": True, "line": chat_line(message)}, 200)
