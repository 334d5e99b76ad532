"""``/api/v1/satisfaction``: customer satisfaction ratings (read-only; any agent's token).

One row per survey: a ticket's resolution asked about (``round`` counts them), answered or not
yet (``score`` null). ``score`` is 1–5 (a good/bad survey stores 5 or 1; ``scale`` says which was
offered). Newest first by id, keyset cursor. The surveys are opened and answered by
``helpdesk.services.satisfaction``; their events (``satisfaction.requested``,
``satisfaction.rated``) carry this shape to webhooks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.api.common import Invalid, errors_doc, id_page, next_cursor
from helpdesk.api.schemas import ID, date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Agent, SatisfactionRating, Ticket
from helpdesk.services import satisfaction

blp = Blueprint(
    "api_satisfaction",
    __name__,
    url_prefix="/api/v1/satisfaction",
    description="Customer satisfaction: a survey per resolution of a ticket, the agent it was "
    "assigned to, the customer's score (1–5; good is 5, bad is 1) and comment.",
)

_CURSOR = "satisfaction"


class RatingTicket(ma.Schema):
    id = ma.fields.Integer(required=True)
    number = ma.fields.Integer(required=True)


class RatingAgent(ma.Schema):
    id = ma.fields.Integer(required=True)
    email = ma.fields.String(required=True)


class RatingOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    ticket = ma.fields.Nested(RatingTicket, required=True)
    round = ma.fields.Integer(
        required=True, metadata={"description": "1 for the first resolution, 2 after a reopen…"}
    )
    agent = ma.fields.Nested(
        RatingAgent,
        required=True,
        allow_none=True,
        metadata={"description": "The agent the ticket was assigned to when it was resolved"},
    )
    customer_id = ma.fields.Integer(required=True)
    scale = ma.fields.String(required=True, validate=validate.OneOf(satisfaction.SCALES))
    score = ma.fields.Integer(
        required=True, allow_none=True, metadata={"description": "1–5; null: not answered yet"}
    )
    comment = ma.fields.String(required=True)
    channel = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Where it was answered: email (a link), portal or chat"},
    )
    requested_at = date_time(required=True)
    rated_at = date_time(required=True, allow_none=True)


class RatingPage(ma.Schema):
    ratings = ma.fields.List(ma.fields.Nested(RatingOut), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


# "from" is a keyword in Python: the schema is made from a dict.
RatingQuery = ma.Schema.from_dict(
    {
        "from": ma.fields.String(
            validate=validate.Length(1, 64),
            metadata={"description": "Rated on or after this date (YYYY-MM-DD, UTC) or time"},
        ),
        "to": ma.fields.String(
            validate=validate.Length(1, 64),
            metadata={"description": "Rated on or before this date (YYYY-MM-DD, UTC) or time"},
        ),
        "agent": ma.fields.String(
            validate=validate.Length(1, 320), metadata={"description": "An agent's email or id"}
        ),
        "ticket": ma.fields.Integer(validate=ID, metadata={"description": "A ticket's number"}),
        "score": ma.fields.Integer(validate=validate.Range(1, 5)),
        "answered": ma.fields.Boolean(),
        "limit": ma.fields.Integer(validate=validate.Range(1, 100), load_default=25),
        "cursor": ma.fields.String(validate=validate.Length(1, 500)),
    },
    name="RatingQuery",
)


def rating_json(r: SatisfactionRating, ticket: Ticket, agent: Agent | None) -> dict[str, Any]:
    return {
        "id": r.id,
        "ticket": {"id": ticket.id, "number": ticket.number},
        "round": r.round,
        "agent": None if agent is None else {"id": agent.id, "email": agent.email},
        "customer_id": r.customer_id,
        "scale": r.scale,
        "score": r.score,
        "comment": r.comment or "",
        "channel": r.channel,
        "requested_at": iso(r.requested_at),
        "rated_at": iso(r.rated_at),
    }


def rating_payload(session: Session, rating_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a survey: as the list returns it (None: gone)."""
    r = session.get(SatisfactionRating, rating_id)
    if r is None:
        return None
    ticket = session.get(Ticket, r.ticket_id)
    if ticket is None:
        return None
    return rating_json(r, ticket, session.get(Agent, r.agent_id) if r.agent_id else None)


def _bound(value: str, name: str, *, end: bool) -> datetime:
    """A date (its whole day, UTC) or a time with an offset; 422 naming the field otherwise."""
    raw = value.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime.combine(day, time(), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(raw)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("naive")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(
            {
                name: _(
                    "A date like 2026-12-08, or a time with an offset like "
                    "2026-12-08T09:00:00+06:00."
                )
            }
        ) from None


def _agent_id(value: str) -> int:
    raw = value.strip()
    if raw.isdigit():
        number = int(raw)
        found = db.session.get(Agent, number) if 0 < number < 2**31 else None
    else:
        found = db.session.scalar(select(Agent).where(func.lower(Agent.email) == raw.lower()))
    if found is None:
        raise Invalid({"agent": _("No agent with this email or id.")})
    return found.id


@blp.route("", methods=["GET"])
@blp.arguments(RatingQuery, location="query", as_kwargs=True)
@blp.response(200, RatingPage)
@errors_doc(blp, 400, 401, 422, 429)
def list_ratings(**args: Any) -> dict[str, Any]:
    """Ratings, newest survey first; filter by when they were given (`from`, `to`: dates or
    times, on `rated_at`), agent (email or id), ticket (number), score, answered or not."""
    limit = int(args["limit"])
    q = (
        select(SatisfactionRating, Ticket, Agent)
        .join(Ticket, Ticket.id == SatisfactionRating.ticket_id)
        .outerjoin(Agent, Agent.id == SatisfactionRating.agent_id)
    )
    if args.get("from"):
        q = q.where(SatisfactionRating.rated_at >= _bound(args["from"], "from", end=False))
    if args.get("to"):
        bound = _bound(args["to"], "to", end=True)
        # A date's whole day counts; a time is inclusive.
        to_day = len(args["to"].strip()) == 10
        q = q.where(
            SatisfactionRating.rated_at < bound if to_day else SatisfactionRating.rated_at <= bound
        )
    if args.get("agent"):
        q = q.where(SatisfactionRating.agent_id == _agent_id(args["agent"]))
    if args.get("ticket"):
        q = q.where(Ticket.number == args["ticket"])
    if args.get("score"):
        q = q.where(SatisfactionRating.score == args["score"])
    if args.get("answered") is not None:
        answered = SatisfactionRating.rated_at.is_not(None)
        q = q.where(answered if args["answered"] else SatisfactionRating.rated_at.is_(None))
    q = id_page(q, SatisfactionRating.id, _CURSOR, args.get("cursor"), limit)  # type: ignore[arg-type]
    rows = list(db.session.execute(q))
    ratings = [row[0] for row in rows]
    return {
        "ratings": [rating_json(row[0], row[1], row[2]) for row in rows[:limit]],
        "next_cursor": next_cursor(ratings, _CURSOR, limit),
    }
