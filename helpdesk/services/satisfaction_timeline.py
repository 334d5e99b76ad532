"""Satisfaction ratings on the customer timeline (:mod:`helpdesk.services.timeline`): one entry
per answered survey, at the time it was answered (a changed answer moves to its new time), with
the channel it was answered on (email link, portal, chat), the score and comment and the agent
rated. Registered by ``create_app`` through ``timeline.register_source``, like the chat's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Agent, SatisfactionRating, Ticket
from helpdesk.services import timeline
from helpdesk.services.timeline import Entry, Query, TicketRef

SOURCE = "satisfaction"
KIND = "satisfaction"


def ratings(session: Session, q: Query) -> list[Entry]:
    stmt = (
        select(
            SatisfactionRating.id,
            SatisfactionRating.rated_at,
            SatisfactionRating.channel,
            SatisfactionRating.scale,
            SatisfactionRating.score,
            SatisfactionRating.comment,
            SatisfactionRating.round,
            SatisfactionRating.ticket_id,
            Ticket.number,
            Ticket.subject,
            Agent.name.label("agent_name"),
        )
        .join(Ticket, Ticket.id == SatisfactionRating.ticket_id)
        .outerjoin(Agent, Agent.id == SatisfactionRating.agent_id)
        .where(
            SatisfactionRating.customer_id.in_(q.customer_ids),
            SatisfactionRating.rated_at.is_not(None),
        )
    )
    if q.channel is not None:
        stmt = stmt.where(SatisfactionRating.channel == q.channel)
    below = q.below(SOURCE, SatisfactionRating.rated_at, SatisfactionRating.id)
    if below is not None:
        stmt = stmt.where(below)
    stmt = stmt.order_by(SatisfactionRating.rated_at.desc(), SatisfactionRating.id.desc()).limit(
        q.limit + 1
    )
    return [
        Entry(
            KIND,
            row.rated_at,
            SOURCE,
            row.id,
            row.channel,
            TicketRef(row.ticket_id, row.number, row.subject),
            {
                "scale": row.scale,
                "score": row.score,
                "comment": row.comment or "",
                "round": row.round,
                "agent": row.agent_name,
            },
        )
        for row in session.execute(stmt)
    ]


def register() -> None:
    timeline.register_source(SOURCE, (KIND,), ratings, channels=timeline.CHANNELS)
