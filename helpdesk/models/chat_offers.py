"""Missed chat offers: how many offers in a row an agent let time out.

Kept apart from :class:`~helpdesk.models.chat.AgentPresence` so the count survives in its own row
(one per agent who ever missed an offer); it is reset when the agent accepts a chat or chooses
*Online* again, and the chat service sets the agent *away* when it reaches the channel's
``away_after_missed``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class MissedOffers(Base):
    __tablename__ = "chat_missed_offers"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    # Offers missed since the agent last accepted a chat or chose Online.
    in_a_row: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    last_missed_at: Mapped[datetime] = mapped_column(default=utcnow)
