"""Business hours: calendars (a weekly schedule in a time zone, closed days) and the arithmetic
on them that SLA targets and time rules need.

- :func:`add_business_minutes`: when a target of N business minutes, started at a moment, is
  due ("4 business hours from Thursday 16:00 on a Sun–Thu 9–17 calendar" is Sunday 12:00).
- :func:`business_minutes_between`: how many business minutes passed between two moments (a
  pending ticket's paused time is taken off its clock with it).
- :func:`is_open`: whether a calendar is open at a moment.

All three walk the calendar's open intervals day by day in its zone (:func:`open_intervals`),
in UTC; a day's intervals come from the weekly schedule unless the day is a holiday. A
calendar that is never open gives ``None`` for a due time instead of looping.

The default calendar is Bangladesh's working week: Sunday to Thursday, 09:00–17:00, in
Asia/Dhaka, with the year's public holidays copied from the `holidays` package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Agent, Calendar, CalendarHoliday
from helpdesk.models.calendars import DAYS
from helpdesk.services import stream
from helpdesk.services.errors import Conflict, ServiceError

DEFAULT_TIMEZONE = "Asia/Dhaka"
DEFAULT_HOURS: dict[str, list[list[str]]] = {
    day: [["09:00", "17:00"]] for day in ("sun", "mon", "tue", "wed", "thu")
}
DEFAULT_COUNTRY = "BD"
# A due time further than this is no due time (a calendar open one hour a year...).
MAX_DAYS = 3 * 366
MAX_HOLIDAYS = 1000
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


# --- the schedule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A calendar as plain values (what the arithmetic reads; cheap to keep per request)."""

    zone: ZoneInfo
    # weekday (0 = Monday) -> ((start minute, end minute), ...) in local time
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    closed: frozenset[date]

    @classmethod
    def of(cls, calendar: Calendar) -> Schedule:
        return cls(
            zone=ZoneInfo(calendar.timezone),
            weekly=tuple(
                tuple((_minutes(a), _minutes(b)) for a, b in (calendar.hours or {}).get(day, []))
                for day in DAYS
            ),
            closed=frozenset(h.day for h in calendar.holidays),
        )

    @property
    def ever_open(self) -> bool:
        return any(self.weekly)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """Local ``day`` at ``minute`` past midnight (24:00 is the next midnight), as UTC."""
    # Wall-clock arithmetic, then the zone: right across a DST change too.
    wall = datetime.combine(day, time(0)) + timedelta(minutes=minute)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def open_intervals(schedule: Schedule, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The calendar's open intervals (UTC) from the local day of ``start`` on, in order, for
    at most :data:`MAX_DAYS` days (the first may begin before ``start``)."""
    day = start.astimezone(schedule.zone).date()
    for _offset in range(MAX_DAYS):
        if day not in schedule.closed:
            for a, b in schedule.weekly[day.weekday()]:
                yield _local(day, a, schedule.zone), _local(day, b, schedule.zone)
        day += timedelta(days=1)


def add_business_minutes(schedule: Schedule, start: datetime, minutes: float) -> datetime | None:
    """The moment ``minutes`` business minutes after ``start`` (None: the calendar is not open
    that much in :data:`MAX_DAYS` days). Zero minutes is ``start`` moved to the next opening."""
    if not schedule.ever_open:
        return None
    left = timedelta(minutes=max(0.0, minutes))
    for a, b in open_intervals(schedule, start):
        if b <= start:
            continue
        begin = max(a, start)
        if begin + left <= b:
            return begin + left
        left -= b - begin
    return None


def business_minutes_between(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Business minutes in [start, end) (0 when end is not after start)."""
    if end <= start or not schedule.ever_open:
        return 0.0
    total = timedelta(0)
    for a, b in open_intervals(schedule, start):
        if a >= end:
            break
        if b <= start:
            continue
        total += min(b, end) - max(a, start)
    return total.total_seconds() / 60


def is_open(schedule: Schedule, when: datetime) -> bool:
    local = when.astimezone(schedule.zone)
    if local.date() in schedule.closed:
        return False
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(a <= minute < b for a, b in schedule.weekly[local.weekday()])


def add_minutes(
    schedule: Schedule | None, start: datetime, minutes: float, *, business: bool
) -> datetime | None:
    """A due time in business minutes on ``schedule``, or calendar (wall-clock) minutes."""
    if not business or schedule is None:
        return start + timedelta(minutes=minutes)
    return add_business_minutes(schedule, start, minutes)


# --- checking what an admin writes ---------------------------------------------------------------


def clean_timezone(name: str | None) -> str:
    name = (name or "").strip() or DEFAULT_TIMEZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(
            _("Unknown time zone: %(zone)s", zone=name[:64]), code="invalid_timezone"
        ) from None
    return name


def clean_hours(raw: Mapping[str, Any] | None) -> dict[str, list[list[str]]]:
    """``{"sun": [["09:00", "17:00"]], ...}`` (or ``"09:00-13:00, 14:00-17:00"`` per day, as
    the form writes it) checked: known days, HH:MM, each interval forward, none overlapping;
    sorted. Days left out are closed."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ServiceError(_("Business hours are not valid."), code="invalid_hours")
    out: dict[str, list[list[str]]] = {}
    for day, ranges in raw.items():
        if day not in DAYS:
            raise ServiceError(
                _("Unknown day: %(day)s (use mon, tue, ... sun).", day=str(day)[:10]),
                code="invalid_hours",
            )
        if isinstance(ranges, str):
            ranges = [[p.strip() for p in r.split("-", 1)] for r in ranges.split(",") if r.strip()]
        pairs: list[list[str]] = []
        for pair in ranges or []:
            if (
                not isinstance(pair, (list, tuple))
                or len(pair) != 2
                or not all(isinstance(p, str) and _HHMM.match(p.strip()) for p in pair)
            ):
                raise ServiceError(
                    _("%(day)s: write hours like 09:00-17:00.", day=day), code="invalid_hours"
                )
            a, b = pair[0].strip(), pair[1].strip()
            if _minutes(a) >= _minutes(b):
                raise ServiceError(
                    _("%(day)s: an interval must end after it starts.", day=day),
                    code="invalid_hours",
                )
            pairs.append([a, b])
        pairs.sort(key=lambda p: _minutes(p[0]))
        for (_a1, b1), (a2, _b2) in pairwise(pairs):
            if _minutes(a2) < _minutes(b1):
                raise ServiceError(
                    _("%(day)s: the intervals overlap.", day=day), code="invalid_hours"
                )
        if pairs:
            out[day] = pairs
    return out


def clean_days(raw: Iterable[Any] | None) -> list[date]:
    days: set[date] = set()
    for item in raw or []:
        try:
            days.add(item if isinstance(item, date) else date.fromisoformat(str(item).strip()))
        except ValueError:
            raise ServiceError(
                _("%(value)s is not a date (YYYY-MM-DD).", value=str(item)[:20]),
                code="invalid_holiday",
            ) from None
    if len(days) > MAX_HOLIDAYS:
        raise ServiceError(_("Too many holidays."), code="invalid_holiday")
    return sorted(days)


# --- public holidays -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicHoliday:
    day: date
    name: str
    name_bn: str
    estimated: bool


def public_holidays(country: str, years: Sequence[int]) -> list[PublicHoliday]:
    """A country's public holidays in ``years`` from the `holidays` package, with their English
    and (where the package has them) Bengali names; Islamic holidays computed ahead of the
    moon's sighting are marked estimated."""
    import holidays

    def names(language: str | None) -> dict[date, str]:
        try:
            found = holidays.country_holidays(country, years=list(years), language=language)
        except NotImplementedError:
            raise ServiceError(
                _("No public holidays are known for %(country)s.", country=country[:8]),
                code="unknown_country",
            ) from None
        return dict(found.items())

    english = names("en_US")
    try:
        bengali = names("bn")
    except ServiceError:
        bengali = {}
    out = []
    for day, name in sorted(english.items()):
        estimated = "estimated" in name.lower()
        clean = name.replace(" (estimated)", "").replace("(estimated)", "").strip()
        # The package says "estimated" in the Bengali name too: the flag says it once, and a
        # date the admin confirms keeps no stale "(estimated)" in either language.
        bn = bengali.get(day, "").replace("(আনুমানিক)", "").strip()
        out.append(PublicHoliday(day, clean[:200], bn[:200], estimated))
    return out


# --- calendars -----------------------------------------------------------------------------------


def _state(calendar: Calendar) -> dict[str, Any]:
    return {
        "name": calendar.name,
        "timezone": calendar.timezone,
        "hours": calendar.hours,
        "holidays": [
            {"date": h.day.isoformat(), "name": h.name, "name_bn": h.name_bn}
            for h in calendar.holidays
        ],
    }


def _clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())[:120]
    if not name:
        raise ServiceError(_("A calendar needs a name."), code="name_required")
    return name


def _check_name(session: Session, name: str, own_id: int | None = None) -> None:
    other = session.scalar(select(Calendar.id).where(Calendar.name == name))
    if other is not None and other != own_id:
        raise Conflict(_("A calendar named %(name)s exists already.", name=name), code="name_taken")


def create_calendar(
    session: Session,
    actor: Agent | None,
    *,
    name: str,
    timezone: str | None = None,
    hours: Mapping[str, Any] | None = None,
    holidays: Iterable[Any] | None = None,
    country: str | None = None,
    years: Sequence[int] | None = None,
    is_default: bool = False,
) -> Calendar:
    """A new calendar. ``country`` (e.g. "BD") copies that country's public holidays of
    ``years`` (this year and the next by default) in as a starting list; ``holidays`` adds the
    business's own days."""
    name = _clean_name(name)
    _check_name(session, name)
    calendar = Calendar(
        name=name,
        timezone=clean_timezone(timezone),
        hours=clean_hours(hours) if hours is not None else dict(DEFAULT_HOURS),
        country=(country or "").upper() or None,
        is_default=False,
    )
    session.add(calendar)
    for day in clean_days(holidays):
        calendar.holidays.append(CalendarHoliday(day=day, source="custom"))
    if calendar.country:
        this_year = utcnow().astimezone(ZoneInfo(calendar.timezone)).year
        add_public_holidays(session, calendar, years or (this_year, this_year + 1), record=False)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            _("A calendar named %(name)s exists already.", name=name), code="name_taken"
        ) from None
    stream.record(session, "calendar.created", "calendar", calendar.id, actor, **_state(calendar))
    if is_default:
        make_default(session, calendar, actor)
    return calendar


def update_calendar(
    session: Session,
    calendar: Calendar,
    actor: Agent | None,
    *,
    name: str | None = None,
    timezone: str | None = None,
    hours: Mapping[str, Any] | None = None,
    holidays: Iterable[Any] | None = None,
) -> dict[str, Any]:
    """Change what is given; ``holidays`` is the whole new list of days (names of days kept
    stay). Returns the changes of ``calendar.updated`` (SLA due times follow it)."""
    before = _state(calendar)
    if name is not None:
        # Checked before it is set: the look-up would flush a taken name into the unique index.
        new_name = _clean_name(name)
        _check_name(session, new_name, calendar.id)
        calendar.name = new_name
    if timezone is not None:
        calendar.timezone = clean_timezone(timezone)
    if hours is not None:
        calendar.hours = clean_hours(hours)
    if holidays is not None:
        wanted = set(clean_days(holidays))
        keep = [h for h in calendar.holidays if h.day in wanted]
        have = {h.day for h in keep}
        calendar.holidays = keep
        session.flush()
        calendar.holidays = sorted(
            keep + [CalendarHoliday(day=d, source="custom") for d in wanted - have],
            key=lambda h: h.day,
        )
    session.flush()
    after = _state(calendar)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changes:
        stream.record(session, "calendar.updated", "calendar", calendar.id, actor, changes=changes)
    return changes


def add_holiday(
    session: Session,
    calendar: Calendar,
    actor: Agent | None,
    day: date | str,
    name: str = "",
    name_bn: str = "",
) -> CalendarHoliday:
    """Close the calendar on ``day`` (renames the day if it is closed already)."""
    (when,) = clean_days([day])
    existing = next((h for h in calendar.holidays if h.day == when), None)
    before = _state(calendar)
    if existing is None:
        existing = CalendarHoliday(day=when, source="custom")
        calendar.holidays.append(existing)
    existing.name = " ".join(name.split())[:200]
    existing.name_bn = " ".join(name_bn.split())[:200]
    existing.estimated = False  # the admin has said which day it is
    session.flush()
    _record_holidays(session, calendar, before, actor)
    return existing


def remove_holiday(
    session: Session, calendar: Calendar, actor: Agent | None, day: date | str
) -> None:
    (when,) = clean_days([day])
    before = _state(calendar)
    calendar.holidays = [h for h in calendar.holidays if h.day != when]
    session.flush()
    _record_holidays(session, calendar, before, actor)


def add_public_holidays(
    session: Session,
    calendar: Calendar,
    years: Sequence[int],
    *,
    country: str | None = None,
    actor: Agent | None = None,
    record: bool = True,
) -> int:
    """Copy a country's public holidays of ``years`` in (days already in the calendar are
    left as the admin has them); returns how many days were added."""
    country = (country or calendar.country or DEFAULT_COUNTRY).upper()
    before = _state(calendar)
    have = {h.day for h in calendar.holidays}
    added = 0
    for holiday in public_holidays(country, years):
        if holiday.day in have:
            continue
        calendar.holidays.append(
            CalendarHoliday(
                day=holiday.day,
                name=holiday.name,
                name_bn=holiday.name_bn,
                source=country,
                estimated=holiday.estimated,
            )
        )
        have.add(holiday.day)
        added += 1
    calendar.country = country
    if record and added:
        session.flush()
        _record_holidays(session, calendar, before, actor)
    return added


def _record_holidays(
    session: Session, calendar: Calendar, before: dict[str, Any], actor: Agent | None
) -> None:
    after = _state(calendar)
    if before["holidays"] != after["holidays"]:
        stream.record(
            session,
            "calendar.updated",
            "calendar",
            calendar.id,
            actor,
            changes={"holidays": {"from": before["holidays"], "to": after["holidays"]}},
        )


def make_default(session: Session, calendar: Calendar, actor: Agent | None = None) -> None:
    """Make ``calendar`` the default. Both calendars whose role changed get a
    ``calendar.updated`` (``changes.default``): everything without a calendar of its own now
    runs on another schedule (SLA due times follow the event)."""
    if calendar.is_default:
        return
    for other in session.scalars(select(Calendar).where(Calendar.is_default.is_(True))):
        other.is_default = False
        stream.record(
            session,
            "calendar.updated",
            "calendar",
            other.id,
            actor,
            changes={"default": {"from": True, "to": False}},
        )
    calendar.is_default = True
    session.flush()
    stream.record(
        session,
        "calendar.updated",
        "calendar",
        calendar.id,
        actor,
        changes={"default": {"from": False, "to": True}},
    )


def default_calendar(session: Session) -> Calendar:
    """The installation's default calendar, made on first use: Sunday to Thursday 09:00–17:00
    in Asia/Dhaka with Bangladesh's public holidays of this year and the next."""
    found = session.scalar(select(Calendar).where(Calendar.is_default.is_(True)))
    if found is not None:
        return found
    first = session.scalar(select(Calendar).order_by(Calendar.id).limit(1))
    if first is not None:
        make_default(session, first)
        return first
    return create_calendar(
        session,
        None,
        # Not translated: the request that happens to make it must not fix its language.
        name="Business hours",
        timezone=DEFAULT_TIMEZONE,
        hours=DEFAULT_HOURS,
        country=DEFAULT_COUNTRY,
        is_default=True,
    )


def delete_calendar(session: Session, calendar: Calendar, actor: Agent | None) -> None:
    if calendar.is_default:
        raise Conflict(
            _("The default calendar cannot be deleted; make another the default first."),
            code="calendar_is_default",
        )
    stream.record(session, "calendar.deleted", "calendar", calendar.id, actor, name=calendar.name)
    session.delete(calendar)
    session.flush()
