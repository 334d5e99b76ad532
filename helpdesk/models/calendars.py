"""Business-hours calendars: a weekly schedule in a time zone, and the days it is closed.

SLA targets in business hours, teams' hours and the chat's opening hours all read a calendar
(services/business_hours.py does the arithmetic). Holidays are rows the admin edits: a year's
public holidays are copied in from the `holidays` package as a starting list (Bangladesh's
Islamic holidays move every year and are announced when the moon is sighted, so the admin
corrects them), plus the business's own days.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow

# Weekday keys as the API writes them, Monday first (date.weekday()'s order).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Calendar(Base):
    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Dhaka")
    # {"sun": [["09:00", "17:00"]], "mon": [...], ...}: open intervals per weekday, local time,
    # sorted and not overlapping; a day without intervals is closed. "24:00" ends a day.
    hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)
    # The public holidays' country (ISO code) the starting list came from, if any.
    country: Mapped[str | None] = mapped_column(String(8))
    # The installation's default: SLA policies and teams without a calendar use it.
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    holidays: Mapped[list[CalendarHoliday]] = relationship(
        back_populates="calendar",
        cascade="all, delete-orphan",
        order_by="CalendarHoliday.day",
    )


class CalendarHoliday(Base):
    """A whole day the calendar is closed (in the calendar's time zone)."""

    __tablename__ = "calendar_holidays"
    __table_args__ = (UniqueConstraint("calendar_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    day: Mapped[date]
    name: Mapped[str] = mapped_column(String(200), default="")
    name_bn: Mapped[str] = mapped_column(String(200), default="")
    # "custom" (the admin's) or the country code it was copied from ("BD"); an estimated date
    # (an Islamic holiday before the moon is sighted) says so, for the admin to confirm.
    source: Mapped[str] = mapped_column(String(16), default="custom")
    estimated: Mapped[bool] = mapped_column(default=False)

    calendar: Mapped[Calendar] = relationship(back_populates="holidays")
