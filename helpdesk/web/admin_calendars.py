"""Admin pages for business hours: the calendars (a weekly schedule in a time zone), which one
is the default, and each calendar's closed days: public holidays copied in from the `holidays`
package (Islamic dates estimated until the moon is sighted, so the admin confirms them) and the
business's own days. Routes on the ``admin`` blueprint (admins only: everyone else gets a 404);
the rules are in helpdesk.services.business_hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import groupby
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel.dates import get_day_names
from flask import flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _, _l, format_date, localize, timezone_choices
from helpdesk.models import Agent, Calendar, CalendarHoliday
from helpdesk.models.calendars import DAYS
from helpdesk.services import business_hours
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.admin import admin_required, bp

# The form's order: the week as Bangladesh (and the default calendar) starts it.
WEEK = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELD_OF_CODE = {
    "name_required": "name",
    "name_taken": "name",
    "invalid_timezone": "timezone",
    "invalid_hours": "hours",
}


class CalendarForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    timezone = SelectField(_l("Time zone"), choices=[], validators=[DataRequired()])
    sun = StringField(validators=[Optional(), Length(max=200)])
    mon = StringField(validators=[Optional(), Length(max=200)])
    tue = StringField(validators=[Optional(), Length(max=200)])
    wed = StringField(validators=[Optional(), Length(max=200)])
    thu = StringField(validators=[Optional(), Length(max=200)])
    fri = StringField(validators=[Optional(), Length(max=200)])
    sat = StringField(validators=[Optional(), Length(max=200)])
    public_holidays = BooleanField(
        _l("Add Bangladesh's public holidays of this year and the next"), default=True
    )


class HolidayForm(FlaskForm):
    day = DateField(_l("Date"), validators=[DataRequired()])
    name = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    name_bn = StringField(_l("Name (Bengali)"), validators=[Optional(), Length(max=200)])


class PublicHolidaysForm(FlaskForm):
    country = StringField(_l("Country"), validators=[DataRequired(), Length(min=2, max=2)])
    year = SelectField(_l("Year"), coerce=int, choices=[], validators=[DataRequired()])


@dataclass(frozen=True)
class HolidayRow:
    day: date
    label: str  # the date in the reader's locale and digits
    name: str  # in the reader's language where the calendar has it
    source: str
    estimated: bool


def _me() -> Agent:
    user: Agent = current_user._get_current_object()
    return user


def _calendar(calendar_id: int) -> Calendar:
    calendar = db.session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound(_("Calendar not found."))
    return calendar


def _bengali() -> bool:
    return str(get_locale() or "en").startswith("bn")


def _day_names(width: Literal["abbreviated", "wide"] = "wide") -> dict[str, str]:
    names = get_day_names(width, locale=get_locale() or "en")
    return {key: str(names[DAYS.index(key)]) for key in WEEK}


def hours_summary(calendar: Calendar) -> list[tuple[str, str]]:
    """(day, "09:00–13:00, 14:00–17:00") for each open day, Sunday first, in the reader's
    day names and digits."""
    names = _day_names("abbreviated")
    return [
        (names[day], localize(", ".join(f"{a}–{b}" for a, b in calendar.hours[day])))
        for day in WEEK
        if (calendar.hours or {}).get(day)
    ]


def _years(calendar: Calendar) -> list[int]:
    this_year = utcnow().astimezone(ZoneInfo(calendar.timezone)).year
    return [this_year, this_year + 1]


def _holidays_by_year(calendar: Calendar) -> list[tuple[str, list[HolidayRow]]]:
    bengali = _bengali()

    def row(h: CalendarHoliday) -> HolidayRow:
        source = (
            _("Custom") if h.source == "custom" else _("Public (%(country)s)", country=h.source)
        )
        name = h.name_bn if bengali and h.name_bn else h.name
        return HolidayRow(h.day, format_date(h.day, "full"), name, source, h.estimated)

    return [
        (localize(str(year)), [row(h) for h in days])
        for year, days in groupby(
            sorted(calendar.holidays, key=lambda h: h.day), key=lambda h: h.day.year
        )
    ]


def _form(calendar: Calendar | None) -> CalendarForm:
    data: dict[str, Any] | None = None
    if request.method == "GET":
        if calendar is not None:
            data = {
                "name": calendar.name,
                "timezone": calendar.timezone,
                **{
                    day: ", ".join(f"{a}-{b}" for a, b in (calendar.hours or {}).get(day, []))
                    for day in WEEK
                },
            }
        else:
            data = {
                "timezone": business_hours.DEFAULT_TIMEZONE,
                "public_holidays": True,
                **{
                    day: ", ".join(f"{a}-{b}" for a, b in business_hours.DEFAULT_HOURS.get(day, []))
                    for day in WEEK
                },
            }
    form = CalendarForm(data=data)
    form.timezone.choices = [(zone, zone) for zone in timezone_choices()]
    return form


def _render_form(
    form: CalendarForm, calendar: Calendar | None, status: int = 200
) -> tuple[str, int]:
    extra = {}
    if calendar is not None:
        imports = PublicHolidaysForm(
            data={"country": calendar.country or business_hours.DEFAULT_COUNTRY}
        )
        imports.year.choices = [(y, localize(str(y))) for y in _years(calendar)]
        extra = {
            "holiday_form": HolidayForm(formdata=None),
            "import_form": imports,
            "years": _holidays_by_year(calendar),
        }
    page = render_template(
        "admin/calendar_form.html",
        form=form,
        calendar=calendar,
        week=list(_day_names().items()),
        **extra,
    )
    return page, status


@bp.get("/calendars")
@admin_required
def calendars_list() -> str:
    rows = [
        (c, hours_summary(c))
        for c in db.session.scalars(
            select(Calendar)
            .options(selectinload(Calendar.holidays))
            .order_by(Calendar.is_default.desc(), Calendar.name)
        )
    ]
    return render_template("admin/calendars.html", rows=rows)


@bp.route("/calendars/new", methods=["GET", "POST"])
@bp.route("/calendars/<int:calendar_id>", methods=["GET", "POST"])
@admin_required
def calendar_edit(calendar_id: int | None = None) -> tuple[str, int] | Response:
    calendar = _calendar(calendar_id) if calendar_id is not None else None
    form = _form(calendar)
    if request.method != "POST":
        return _render_form(form, calendar)
    if not form.validate_on_submit():
        return _render_form(form, calendar, 400)
    hours = {day: form[day].data or "" for day in WEEK}
    try:
        if calendar is None:
            calendar = business_hours.create_calendar(
                db.session,
                _me(),
                name=form.name.data or "",
                timezone=form.timezone.data,
                hours=hours,
                country=business_hours.DEFAULT_COUNTRY if form.public_holidays.data else None,
            )
        else:
            business_hours.update_calendar(
                db.session,
                calendar,
                _me(),
                name=form.name.data or "",
                timezone=form.timezone.data,
                hours=hours,
            )
    except ServiceError as exc:
        db.session.rollback()  # shown on the form, everything typed kept
        name = _FIELD_OF_CODE.get(exc.code, "name")
        field = form.name if name == "name" else form.timezone if name == "timezone" else None
        if field is not None:
            field.errors = [str(exc)]
        else:
            form.form_errors = [str(exc)]
        calendar = _calendar(calendar_id) if calendar_id is not None else None
        return _render_form(form, calendar, 400)
    db.session.commit()
    flash(_("Calendar %(name)s saved.", name=calendar.name), "success")
    return redirect(url_for("admin.calendar_edit", calendar_id=calendar.id))


@bp.post("/calendars/<int:calendar_id>/default")
@admin_required
def calendar_default(calendar_id: int) -> Response:
    calendar = _calendar(calendar_id)
    business_hours.make_default(db.session, calendar, _me())
    db.session.commit()
    flash(_("%(name)s is now the default calendar.", name=calendar.name), "success")
    return redirect(url_for("admin.calendars_list"))


@bp.route("/calendars/<int:calendar_id>/delete", methods=["GET", "POST"])
@admin_required
def calendar_delete(calendar_id: int) -> str | Response:
    calendar = _calendar(calendar_id)
    form = FlaskForm()
    if request.method == "POST" and form.validate_on_submit():
        name = calendar.name
        try:
            business_hours.delete_calendar(db.session, calendar, _me())
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for("admin.calendar_edit", calendar_id=calendar_id))
        db.session.commit()
        flash(_("Calendar %(name)s deleted.", name=name), "success")
        return redirect(url_for("admin.calendars_list"))
    return render_template("admin/calendar_delete.html", calendar=calendar, form=form)


@bp.post("/calendars/<int:calendar_id>/holidays")
@admin_required
def calendar_holiday_add(calendar_id: int) -> tuple[str, int] | Response:
    calendar = _calendar(calendar_id)
    form = HolidayForm()
    if not form.validate_on_submit() or form.day.data is None:
        flash(_("Choose the day to close."), "error")
        return redirect(url_for("admin.calendar_edit", calendar_id=calendar.id) + "#holidays")
    business_hours.add_holiday(
        db.session, calendar, _me(), form.day.data, form.name.data or "", form.name_bn.data or ""
    )
    db.session.commit()
    flash(_("%(day)s is a closed day.", day=format_date(form.day.data, "full")), "success")
    return redirect(url_for("admin.calendar_edit", calendar_id=calendar.id) + "#holidays")


@bp.post("/calendars/<int:calendar_id>/holidays/<day>/remove")
@admin_required
def calendar_holiday_remove(calendar_id: int, day: str) -> Response:
    calendar = _calendar(calendar_id)
    try:
        business_hours.remove_holiday(db.session, calendar, _me(), day)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(
            _("%(day)s is a working day again.", day=format_date(date.fromisoformat(day), "full")),
            "success",
        )
    return redirect(url_for("admin.calendar_edit", calendar_id=calendar.id) + "#holidays")


@bp.post("/calendars/<int:calendar_id>/public-holidays")
@admin_required
def calendar_public_holidays(calendar_id: int) -> Response:
    calendar = _calendar(calendar_id)
    form = PublicHolidaysForm()
    form.year.choices = [(y, str(y)) for y in _years(calendar)]
    target = url_for("admin.calendar_edit", calendar_id=calendar.id) + "#holidays"
    if not form.validate_on_submit() or form.year.data is None:
        flash(_("Choose a country code (like BD) and a year."), "error")
        return redirect(target)
    try:
        added = business_hours.add_public_holidays(
            db.session, calendar, [form.year.data], country=form.country.data, actor=_me()
        )
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(target)
    db.session.commit()
    flash(_("Public holidays added: %(n)d.", n=added), "success")
    return redirect(target)
