"""Macros: canned replies with placeholders (English and Bengali) plus ticket actions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow

if TYPE_CHECKING:
    from helpdesk.models.agents import Agent


class Macro(Base):
    __tablename__ = "macros"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Reply text per language, with placeholders like {{ customer.name }}; the customer's
    # language picks the text, English is the fallback.
    body_en: Mapped[str] = mapped_column(Text, default="")
    body_bn: Mapped[str] = mapped_column(Text, default="")
    # {"status": "pending", "priority": 3, "add_tags": ["x"], "assignee": "me" | <id>,
    #  "team_id": <id>}; absent keys leave the ticket alone.
    actions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    # Shared macros are visible to every agent; personal ones to their owner only.
    shared: Mapped[bool] = mapped_column(default=False)
    usage_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[Agent | None] = relationship()


Index("ix_macros_owner_id", Macro.owner_id)
