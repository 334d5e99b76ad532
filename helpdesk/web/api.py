"""The agent UI's session-cookie JSON (``/api/ui/``) for its scripts. Same rules as the pages:
an agent session is required, "missing" and "not yours" are the same 404, bad input is a 400
with a message."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.models import Message
from helpdesk.services.access import access_ticket_by_number
from helpdesk.services.queue import QueueFilter, queue_page, ticket_row
from helpdesk.web.agent import agent_required, me

# The agent UI's own JSON (the ticket page's refresh), signed in by the session cookie. Not the
# REST API v1 (helpdesk/api/, tokens only, /api/v1/), which took over its /api/v1/tickets paths.
bp = Blueprint("api", __name__, url_prefix="/api/ui")


@bp.get("/tickets")
@agent_required
def tickets() -> Response:
    flt = QueueFilter.from_args(request.args)
    try:
        limit = min(
            max(int(request.args.get("limit", current_app.config["QUEUE_PAGE_SIZE"])), 1), 500
        )
    except ValueError:
        limit = int(current_app.config["QUEUE_PAGE_SIZE"])
    page = queue_page(
        db.session, flt, agent=me(), after=request.args.get("after") or None, limit=limit
    )
    return jsonify({"tickets": [ticket_row(t) for t in page.tickets], "next": page.next_cursor})


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction.value,
        "kind": m.kind.value,
        "internal": m.internal,
        "author": m.author_name,
        "text": m.body_text,
        "created_at": m.created_at.isoformat(),
        "delivery_status": m.delivery_status.value if m.delivery_status else None,
        "delivery_error": m.delivery_error,
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in m.attachments
        ],
    }


@bp.get("/tickets/<int:number>")
@agent_required
def ticket(number: int) -> Response:
    t = access_ticket_by_number(db.session, me(), number)
    messages = db.session.scalars(
        select(Message).where(Message.ticket_id == t.id).order_by(Message.id)
    )
    return jsonify({**ticket_row(t), "messages": [message_json(m) for m in messages]})
