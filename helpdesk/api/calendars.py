"""``/api/v1/calendars``: business-hours calendars (a weekly schedule in a time zone, and the
days it is closed) that teams, SLA policies and the chat's opening hours use. Any agent's token
reads them (an integration computing a due time needs the hours); only an admin's admin token
creates, changes, deletes them or copies a country's public holidays in. Through
``services.business_hours``, the verbs of Admin -> Business hours, so the events
(``calendar.created``/``updated``/``deleted``) are the same."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import errors_doc, refusals
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Calendar, TokenScope
from helpdesk.models.calendars import DAYS
from helpdesk.services import business_hours as verbs
from helpdesk.services.errors import Conflict, NotFound

blp = Blueprint(
    "api_calendars",
    __name__,
    url_prefix="/api/v1/calendars",
    description="Business-hours calendars: a weekly schedule in a time zone and the closed days "
    "(public holidays copied in, the business's own days); teams and SLA policies use them.",
)

HOURS_DOC = (
    'Open intervals per weekday in the calendar\'s local time: `{"sun": [["09:00", "17:00"]], '
    '"mon": [["09:00", "13:00"], ["14:00", "17:00"]], ...}` (keys `mon`...`sun`; `24:00` ends a '
    "day); a day left out is closed"
)
HOLIDAYS_DOC = "Closed days, `YYYY-MM-DD` (the calendar's local dates)"
MAX_YEARS = 5


# --- schemas -------------------------------------------------------------------------------------


def _hours(description: str = HOURS_DOC, **kw: Any) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=validate.OneOf(DAYS)),
        values=ma.fields.List(
            ma.fields.List(
                ma.fields.String(validate=validate.Length(max=5)), validate=validate.Length(2, 2)
            ),
            validate=validate.Length(max=24),
        ),
        metadata={"description": description},
        **kw,
    )


def _holiday_days() -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=validate.Length(1, 20), metadata={"format": "date"}),
        validate=validate.Length(max=verbs.MAX_HOLIDAYS),
        metadata={"description": HOLIDAYS_DOC},
    )


def _years(**kw: Any) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Integer(validate=validate.Range(1950, 2100)),
        validate=validate.Length(1, MAX_YEARS),
        **kw,
    )


def _country() -> ma.fields.String:
    return ma.fields.String(
        validate=validate.Regexp(r"^[A-Za-z]{2}$"),
        metadata={"description": "ISO 3166 country code of the public holidays (default BD)"},
    )


class HolidayOut(ma.Schema):
    date = ma.fields.String(required=True, metadata={"format": "date"})
    name = ma.fields.String(required=True, metadata={"description": "English"})
    name_bn = ma.fields.String(required=True, metadata={"description": "Bengali (may be empty)"})
    source = ma.fields.String(
        required=True, metadata={"description": "`custom`, or the country it was copied from"}
    )
    estimated = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "A date computed ahead (an Islamic holiday before the moon is "
            "sighted): for the admin to confirm"
        },
    )


class CalendarOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    timezone = ma.fields.String(required=True, metadata={"description": "IANA zone"})
    hours = _hours(required=True)
    holidays = ma.fields.List(ma.fields.Nested(HolidayOut), required=True)
    country = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "Of the public holidays"}
    )
    default = ma.fields.Boolean(
        required=True, metadata={"description": "Used by teams and SLA policies without one"}
    )
    created_at = date_time(required=True)
    updated_at = date_time(required=True)


class CalendarList(ma.Schema):
    calendars = ma.fields.List(ma.fields.Nested(CalendarOut), required=True)


class CalendarCreate(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 120))
    timezone = ma.fields.String(
        validate=validate.Length(1, 64), metadata={"description": "IANA zone; default Asia/Dhaka"}
    )
    hours = _hours(HOURS_DOC + "; default Sunday to Thursday 09:00-17:00")
    holidays = _holiday_days()
    country = _country()
    years = _years(
        metadata={
            "description": "With `country`: the years whose public holidays are copied in "
            "(default this year and the next)"
        }
    )
    default = ma.fields.Boolean(metadata={"description": "Make it the default calendar"})


class CalendarPatch(ma.Schema):
    name = ma.fields.String(validate=validate.Length(1, 120))
    timezone = ma.fields.String(validate=validate.Length(1, 64))
    hours = _hours(HOURS_DOC + "; replaces the whole schedule")
    holidays = ma.fields.List(
        ma.fields.String(validate=validate.Length(1, 20), metadata={"format": "date"}),
        validate=validate.Length(max=verbs.MAX_HOLIDAYS),
        metadata={
            "description": "The whole list of closed days (days kept keep their names; "
            "a day left out reopens)"
        },
    )
    default = ma.fields.Boolean(
        metadata={"description": "true makes it the default (false is refused on the default)"}
    )


class PublicHolidaysIn(ma.Schema):
    country = _country()
    years = _years(required=True)


class PublicHolidaysOut(ma.Schema):
    added = ma.fields.Integer(
        required=True, metadata={"description": "Days added (days already there are kept)"}
    )
    calendar = ma.fields.Nested(CalendarOut, required=True)


# --- JSON ----------------------------------------------------------------------------------------


def calendar_json(c: Calendar) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "timezone": c.timezone,
        "hours": {day: [list(pair) for pair in pairs] for day, pairs in (c.hours or {}).items()},
        "holidays": [
            {
                "date": h.day.isoformat(),
                "name": h.name,
                "name_bn": h.name_bn,
                "source": h.source,
                "estimated": bool(h.estimated),
            }
            for h in c.holidays
        ],
        "country": c.country,
        "default": bool(c.is_default),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
    }


def calendar_payload(session: Session, calendar_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a calendar: as GET returns it (None: deleted)."""
    calendar = session.get(Calendar, calendar_id)
    return calendar_json(calendar) if calendar is not None else None


# --- errors --------------------------------------------------------------------------------------


_FIELD_OF_CODE = {
    "name_required": "name",
    "invalid_timezone": "timezone",
    "invalid_hours": "hours",
    "invalid_holiday": "holidays",
    "unknown_country": "country",
}


def _refusals() -> AbstractContextManager[None]:
    return refusals(_FIELD_OF_CODE)


def _calendar(calendar_id: int) -> Calendar:
    calendar = db.session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound(_("Calendar not found."))
    return calendar


def _answer(calendar: Calendar, status: int) -> Any:
    db.session.flush()
    db.session.refresh(calendar)
    return commit_response(calendar_json(calendar), status)


# --- views ---------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.response(200, CalendarList)
@errors_doc(blp, 401, 429)
def list_calendars() -> dict[str, Any]:
    """Every calendar by name (an installation has a handful), with its holidays."""
    rows = db.session.scalars(
        select(Calendar).options(selectinload(Calendar.holidays)).order_by(Calendar.name)
    )
    return {"calendars": [calendar_json(c) for c in rows]}


@blp.route("/<int:calendar_id>", methods=["GET"])
@blp.response(200, CalendarOut)
@errors_doc(blp, 401, 404, 429)
def get_calendar(calendar_id: int) -> dict[str, Any]:
    """One calendar with its holidays."""
    return calendar_json(_calendar(calendar_id))


@blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(CalendarCreate)
@blp.response(201, CalendarOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_calendar(data: dict[str, Any]) -> Any:
    """Create a calendar (admin). `country` copies that country's public holidays of `years`
    in as a starting list (estimated dates marked); `holidays` adds the business's own days;
    `default: true` makes it the default. 422 naming the field for bad hours, time zone, dates
    or country; 409 `name_taken`. Event `calendar.created`."""
    with _refusals():
        calendar = verbs.create_calendar(
            db.session,
            me(),
            name=data["name"],
            timezone=data.get("timezone"),
            hours=data.get("hours"),
            holidays=data.get("holidays"),
            country=data.get("country"),
            years=data.get("years"),
            is_default=bool(data.get("default")),
        )
    return _answer(calendar, 201)


@blp.route("/<int:calendar_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(CalendarPatch)
@blp.response(200, CalendarOut)
@errors_doc(blp, 400, 401, 403, 404, 409, 422, 429)
def update_calendar(changes: dict[str, Any], calendar_id: int) -> Any:
    """Change the name, time zone, hours (the whole schedule) or closed days (the whole list),
    or make it the default (admin; only what is given). Event `calendar.updated` with
    `changes`."""
    calendar = _calendar(calendar_id)
    if changes.get("default") is False and calendar.is_default:
        raise Conflict(
            _("This is the default calendar; make another the default instead."),
            code="calendar_is_default",
        )
    with _refusals():
        verbs.update_calendar(
            db.session,
            calendar,
            me(),
            name=changes.get("name"),
            timezone=changes.get("timezone"),
            hours=changes.get("hours"),
            holidays=changes.get("holidays"),
        )
    if changes.get("default"):
        verbs.make_default(db.session, calendar, me())
    return _answer(calendar, 200)


@blp.route("/<int:calendar_id>", methods=["DELETE"])
@requires_scope(TokenScope.ADMIN)
@blp.response(204)
@errors_doc(blp, 401, 403, 404, 409, 429)
def delete_calendar(calendar_id: int) -> Any:
    """Delete a calendar (admin); teams using it fall back to the default. 409
    `calendar_is_default` for the default. Event `calendar.deleted`."""
    verbs.delete_calendar(db.session, _calendar(calendar_id), me())
    db.session.commit()
    return "", 204


@blp.route("/<int:calendar_id>/public-holidays", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(PublicHolidaysIn)
@blp.response(200, PublicHolidaysOut)
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
def add_public_holidays(data: dict[str, Any], calendar_id: int) -> Any:
    """Copy a country's public holidays of `years` in (admin; `country` defaults to the
    calendar's, else BD), with English and Bengali names; days already in the calendar are
    left as they are, so it is safe to repeat. Answers how many days were added."""
    calendar = _calendar(calendar_id)
    with _refusals():
        added = verbs.add_public_holidays(
            db.session, calendar, data["years"], country=data.get("country"), actor=me()
        )
    db.session.flush()
    db.session.refresh(calendar)
    return commit_response({"added": added, "calendar": calendar_json(calendar)}, 200)
