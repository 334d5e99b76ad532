"""Customer satisfaction: one survey per resolution of a ticket (services/satisfaction.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class SatisfactionRating(Base):
    """The customer's answer to "how did we do?" for one resolution of a ticket: asked when it
    was resolved (``round`` counts the resolutions: a ticket reopened and resolved again is
    asked again), answered (``score`` 1–5, a good/bad survey storing 5 or 1) or not yet."""

    __tablename__ = "satisfaction_ratings"
    __table_args__ = (UniqueConstraint("ticket_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(default=1)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # The agent the ticket was assigned to when it was resolved (whose rating it is).
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # "good_bad" or "five": what the customer was offered.
    scale: Mapped[str] = mapped_column(String(16), default="good_bad")
    score: Mapped[int | None]
    comment: Mapped[str] = mapped_column(Text, default="")
    # Where it was answered: email (a one-click link), portal, chat.
    channel: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    rated_at: Mapped[datetime | None]


# Reports and the API list ratings by when they were given; an agent's by agent.
Index("ix_satisfaction_ratings_rated_at", SatisfactionRating.rated_at, SatisfactionRating.id)
Index(
    "ix_satisfaction_ratings_agent_rated", SatisfactionRating.agent_id, SatisfactionRating.rated_at
)
Index("ix_satisfaction_ratings_customer_id", SatisfactionRating.customer_id)
