"""``GET /api/v1/events?after=<id>&limit=``: the durable event stream in id order, for
consumers that poll (remember ``last_id``, ask again with ``after=last_id``; nothing is ever
missed: ids are gap-free and increase in commit order, helpdesk/services/stream.py)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from helpdesk.api.errors import ErrorSchema
from helpdesk.api.schemas import EventPage, EventQuery
from helpdesk.extensions import db
from helpdesk.services import stream

blp = Blueprint(
    "api_events", __name__, url_prefix="/api/v1/events", description="The domain-event stream."
)


@blp.route("", methods=["GET"])
@blp.arguments(EventQuery, location="query", as_kwargs=True)
@blp.response(200, EventPage)
@blp.alt_response(401, schema=ErrorSchema, description="An error")
def list_events(after: int, limit: int) -> dict[str, Any]:
    """Events with an id above `after`, oldest first."""
    events = stream.read(db.session, after=after, limit=limit)
    return {
        "events": [e.as_dict() for e in events],
        "last_id": events[-1].id if events else after,
    }
