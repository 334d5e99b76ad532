"""Business hours: due times in business minutes over weekends, Bangladesh's holidays (Eid
moves every year) and several intervals a day; elapsed business time; calendars as an admin
keeps them (the default one, public holidays copied in, custom days, checked input)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from helpdesk.models import Agent, Calendar, CalendarHoliday
from helpdesk.services import business_hours as bh
from helpdesk.services import stream
from helpdesk.services.errors import Conflict, ServiceError

DHAKA = ZoneInfo("Asia/Dhaka")


def dhaka(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=DHAKA)


def _schedule(
    hours: dict[str, list[list[str]]] | None = None, closed: tuple[date, ...] | list[date] = ()
) -> bh.Schedule:
    calendar = Calendar(name="x", timezone="Asia/Dhaka", hours=hours or bh.DEFAULT_HOURS)
    calendar.holidays = [CalendarHoliday(day=d) for d in closed]
    return bh.Schedule.of(calendar)


def test_four_business_hours_from_thursday_afternoon_are_due_sunday_noon() -> None:
    # Thursday 2026-12-03 16:00 in Dhaka; Friday and Saturday are the weekend.
    due = bh.add_business_minutes(_schedule(), dhaka(2026, 12, 3, 16, 0), 4 * 60)
    assert due == dhaka(2026, 12, 6, 12, 0)
    assert due is not None and due.tzinfo is not None


def test_the_same_over_eid_ul_fitr_from_the_holidays_package() -> None:
    eid = [h for h in bh.public_holidays("BD", [2026]) if "Eid al-Fitr" in h.name]
    assert [h.day for h in eid] == [date(2026, 3, 21), date(2026, 3, 22), date(2026, 3, 23)]
    assert all(h.name_bn for h in eid)  # Bengali names from the package
    schedule = _schedule(closed=[h.day for h in bh.public_holidays("BD", [2026])])
    # Thursday 19 March 16:00: Fri/Sat weekend, Sat-Mon Eid → Tuesday 24 March 12:00.
    assert bh.add_business_minutes(schedule, dhaka(2026, 3, 19, 16, 0), 240) == dhaka(
        2026, 3, 24, 12, 0
    )
    # Eid al-Fitr moves: 2027's is about eleven days earlier, and marked estimated.
    eid_2027 = [h for h in bh.public_holidays("BD", [2027]) if "Eid al-Fitr" in h.name]
    assert eid_2027[0].day < date(2027, 3, 21) and eid_2027[0].estimated
    assert eid_2027[0].name == "Eid al-Fitr" and eid_2027[0].name_bn == "ঈদুল ফিতর"


def test_starting_outside_hours_counts_from_the_next_opening() -> None:
    schedule = _schedule({"sun": [["09:00", "13:00"], ["14:00", "17:00"]]})
    # Saturday night → next Sunday 09:00; 5 hours with a lunch break → 15:00.
    assert bh.add_business_minutes(schedule, dhaka(2026, 12, 5, 22, 0), 300) == dhaka(
        2026, 12, 6, 15, 0
    )
    # exactly at closing: the rest goes to next week's Sunday
    assert bh.add_business_minutes(schedule, dhaka(2026, 12, 6, 17, 0), 30) == dhaka(
        2026, 12, 13, 9, 30
    )
    assert bh.add_business_minutes(schedule, dhaka(2026, 12, 6, 10, 0), 0) == dhaka(
        2026, 12, 6, 10, 0
    )


def test_elapsed_business_minutes_and_open_or_closed() -> None:
    schedule = _schedule()
    # Thursday 16:00 → Sunday 10:00: one hour Thursday, one hour Sunday
    assert (
        bh.business_minutes_between(schedule, dhaka(2026, 12, 3, 16), dhaka(2026, 12, 6, 10)) == 120
    )
    assert (
        bh.business_minutes_between(schedule, dhaka(2026, 12, 6, 10), dhaka(2026, 12, 3, 16)) == 0
    )
    assert bh.is_open(schedule, dhaka(2026, 12, 6, 9, 0))
    assert not bh.is_open(schedule, dhaka(2026, 12, 6, 17, 0))
    assert not bh.is_open(schedule, dhaka(2026, 12, 4, 11, 0))  # Friday
    assert not bh.is_open(_schedule(closed=[date(2026, 12, 16)]), dhaka(2026, 12, 16, 11))


def test_a_calendar_never_open_has_no_due_time_and_calendar_minutes_are_wall_clock() -> None:
    closed = bh.Schedule(zone=DHAKA, weekly=((),) * 7, closed=frozenset())
    assert bh.add_business_minutes(closed, dhaka(2026, 12, 3, 16), 60) is None
    start = datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert bh.add_minutes(closed, start, 90, business=False) == start + timedelta(minutes=90)


def test_a_zone_with_daylight_saving_keeps_wall_clock_hours() -> None:
    calendar = Calendar(name="x", timezone="Europe/London", hours={"mon": [["09:00", "17:00"]]})
    calendar.holidays = []
    schedule = bh.Schedule.of(calendar)
    london = ZoneInfo("Europe/London")
    # Monday 30 March 2026 is after the clocks went forward: 09:00 local is 08:00 UTC
    due = bh.add_business_minutes(schedule, datetime(2026, 3, 27, 12, tzinfo=london), 60)
    assert due == datetime(2026, 3, 30, 10, tzinfo=london)
    assert due is not None and due.astimezone(UTC).hour == 9


@pytest.mark.usefixtures("db_backend")
def test_the_default_calendar_is_bangladesh_s_working_week(session: Session) -> None:
    calendar = bh.default_calendar(session)
    session.commit()
    assert calendar.is_default and calendar.timezone == "Asia/Dhaka"
    assert set(calendar.hours) == {"sun", "mon", "tue", "wed", "thu"}
    days = {h.day: h for h in calendar.holidays}
    year = datetime.now(DHAKA).year
    assert date(year, 12, 16) in days and days[date(year, 12, 16)].name == "Victory Day"
    assert days[date(year, 12, 16)].name_bn  # বিজয় দিবস
    assert date(year + 1, 2, 21) in days  # next year's too
    assert bh.default_calendar(session).id == calendar.id  # made once


@pytest.mark.usefixtures("db_backend")
def test_a_new_default_is_an_update_of_both_calendars(session: Session, admin: Agent) -> None:
    # What runs on the default (SLA policies and teams without a calendar) changes schedule:
    # the SLA's recompute and webhooks hear it.
    first = bh.create_calendar(session, admin, name="Head office", is_default=True)
    second = bh.create_calendar(session, admin, name="Branch")
    session.commit()
    start = stream.last_id(session)
    bh.make_default(session, second, admin)
    bh.make_default(session, second, admin)  # already the default: nothing happens
    session.commit()
    events = [(e.name, e.subject_id, e.data["changes"]) for e in stream.read(session, after=start)]
    assert events == [
        ("calendar.updated", first.id, {"default": {"from": True, "to": False}}),
        ("calendar.updated", second.id, {"default": {"from": False, "to": True}}),
    ]


@pytest.mark.usefixtures("db_backend")
def test_an_admin_keeps_a_calendar(session: Session, admin: Agent) -> None:
    start = stream.last_id(session)
    calendar = bh.create_calendar(
        session,
        admin,
        name="Dhaka support",
        hours={"sun": "09:00-13:00, 14:00-18:00", "thu": [["10:00", "16:00"]]},
        holidays=["2027-01-01"],
    )
    session.commit()
    assert calendar.hours == {
        "sun": [["09:00", "13:00"], ["14:00", "18:00"]],
        "thu": [["10:00", "16:00"]],
    }
    assert bh.add_public_holidays(session, calendar, [2027], country="BD", actor=admin) > 10
    bh.add_holiday(session, calendar, admin, "2027-03-10", "Eid (moon sighted)", "ঈদ")
    bh.remove_holiday(session, calendar, admin, "2027-01-01")
    session.commit()
    eid = next(h for h in calendar.holidays if h.day == date(2027, 3, 10))
    assert eid.name == "Eid (moon sighted)" and not eid.estimated
    assert date(2027, 1, 1) not in {h.day for h in calendar.holidays}
    names = [e.name for e in stream.read(session, after=start)]
    assert names[0] == "calendar.created" and names.count("calendar.updated") == 3
    with pytest.raises(Conflict):
        bh.create_calendar(session, admin, name="Dhaka support")
    session.rollback()
    for bad in (
        {"hours": {"fri": "17:00-09:00"}},
        {"hours": {"funday": "09:00-10:00"}},
        {"hours": {"sun": "09:00-12:00, 11:00-13:00"}},
        {"hours": {"sun": "9am-5pm"}},
        {"timezone": "Mars/Olympus"},
        {"holidays": ["2027-02-30"]},
    ):
        with pytest.raises(ServiceError):
            bh.update_calendar(session, calendar, admin, **bad)
        session.rollback()
    with pytest.raises(Conflict):
        bh.delete_calendar(session, bh.default_calendar(session), admin)
