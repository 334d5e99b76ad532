"""Saved queue views and each agent's remembered last view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class SavedView(Base):
    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    owner_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    # Shared with a team's agents when set; personal otherwise.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # The queue's query arguments (QueueFilter.as_args()): view, filters and sort.
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_saved_views_owner_id", SavedView.owner_id)
Index("ix_saved_views_team_id", SavedView.team_id)


class AgentPreference(Base):
    """Small per-agent settings remembered across devices (the last queue view)."""

    __tablename__ = "agent_preferences"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    last_queue_args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TicketCount(Base):
    """How many tickets have each (status, assignee); 0 stands for "unassigned".

    Kept exact in the same flush as every ticket change (helpdesk.services.counts), so the
    queue's view counts are a sum over a few dozen rows instead of a scan of a million.
    """

    __tablename__ = "ticket_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    assignee_key: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(default=0)
