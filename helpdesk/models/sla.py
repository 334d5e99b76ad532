"""SLA policies: response and resolution targets per priority, on a calendar, chosen by
conditions (services/sla.py keeps each ticket's due times; docs/automation.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow

if TYPE_CHECKING:
    from helpdesk.models.calendars import Calendar

TARGETS = ("first_response", "next_response", "resolution")


class SlaPolicy(Base):
    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # None: the installation's default calendar.
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="SET NULL"))
    # Targets count business hours on the calendar (True) or every hour of the clock.
    business_hours: Mapped[bool] = mapped_column(default=True)
    # {"urgent": {"first_response_minutes": 60, "next_response_minutes": 120,
    #             "resolution_minutes": 480}, "high": {...}, ...}: a priority without an entry
    # (or a target left out) is not measured.
    targets: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON, default=dict)
    # services/conditions.py: [{"field", "op", "value"}], all must hold; [] matches every ticket.
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The first active policy whose conditions match a ticket, lowest position first, applies.
    position: Mapped[int] = mapped_column(default=0)
    # A warning event this many minutes (of the clock) before a target's due time.
    warning_minutes: Mapped[int] = mapped_column(default=30)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calendar: Mapped[Calendar | None] = relationship()
