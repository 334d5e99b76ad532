"""Admin page for the chat channel's settings (``/admin/chat``): pre-chat form, business hours,
routing (offer timeout, capacity, default team), widget origins, transcripts. Admins only
("not an admin" is the same 404 as a missing page); CSRF like every form; en + bn.

What each setting does: docs/chat.md#settings.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange

from channels.chat.settings import (
    AWAY_AFTER_MAX,
    DAYS,
    OFFER_TIMEOUT_MAX,
    ChatConfig,
    chat_channel,
    chat_settings,
    form_values,
    instance_timezone,
    parse_origins,
    save_chat_config,
    timezones,
)
from helpdesk.extensions import db
from helpdesk.i18n import _, _l
from helpdesk.models import Agent, Calendar, Team
from helpdesk.services.errors import ServiceError
from helpdesk.web.admin import admin_required
from helpdesk.web.forms import choices

bp = Blueprint("chat_admin", __name__, url_prefix="/admin/chat")

DAY_LABELS = {
    "mon": _l("Monday"),
    "tue": _l("Tuesday"),
    "wed": _l("Wednesday"),
    "thu": _l("Thursday"),
    "fri": _l("Friday"),
    "sat": _l("Saturday"),
    "sun": _l("Sunday"),
}
_NUMBER = _l("Enter a whole number in the allowed range.")


class ChatSettingsForm(FlaskForm):
    email_required = BooleanField(_l("Visitors must give an email address before chatting"))
    name_required = BooleanField(_l("Visitors must give their name before chatting"))
    transcript = BooleanField(_l("Visitors may ask for the transcript by email"))
    capacity = IntegerField(
        _l("Chats an agent takes at once (agents may set their own)"),
        validators=[InputRequired(_NUMBER), NumberRange(1, 50, _NUMBER)],
    )
    offer_timeout = IntegerField(
        _l("Seconds an agent has to accept a chat before it goes to the next one (0 = no limit)"),
        validators=[InputRequired(_NUMBER), NumberRange(0, OFFER_TIMEOUT_MAX, _NUMBER)],
    )
    away_after_missed = IntegerField(
        _l("Set an agent away after this many missed chats in a row (0 = never)"),
        validators=[InputRequired(_NUMBER), NumberRange(0, AWAY_AFTER_MAX, _NUMBER)],
    )
    team = SelectField(_l("Team that gets chats by default"), choices=[])
    allowed_origins = TextAreaField(
        _l("Sites that may show the widget, one per line (* = any site)"),
        validators=[Length(max=5000)],
    )
    calendar = SelectField(_l("Opening hours"), choices=[])
    timezone = SelectField(_l("Time zone of the business hours"), choices=[])
    mon = StringField(DAY_LABELS["mon"], validators=[Length(max=200)])
    tue = StringField(DAY_LABELS["tue"], validators=[Length(max=200)])
    wed = StringField(DAY_LABELS["wed"], validators=[Length(max=200)])
    thu = StringField(DAY_LABELS["thu"], validators=[Length(max=200)])
    fri = StringField(DAY_LABELS["fri"], validators=[Length(max=200)])
    sat = StringField(DAY_LABELS["sat"], validators=[Length(max=200)])
    sun = StringField(DAY_LABELS["sun"], validators=[Length(max=200)])


def _form() -> ChatSettingsForm:
    form = ChatSettingsForm()
    teams = db.session.scalars(select(Team).order_by(Team.name)).all()
    form.team.choices = choices([("", _("All agents")), *((str(t.id), t.name) for t in teams)])
    form.timezone.choices = choices((tz, tz) for tz in timezones())
    calendars = db.session.scalars(select(Calendar).order_by(Calendar.name)).all()
    form.calendar.choices = choices(
        [("", _("The hours below")), *((str(c.id), c.name) for c in calendars)]
    )
    return form


def _fill(form: ChatSettingsForm) -> None:
    channel = chat_channel(db.session)
    values = form_values(db.session, channel, chat_settings(db.session))
    form.email_required.data = values.email_required
    form.name_required.data = values.name_required
    form.transcript.data = values.transcript
    form.capacity.data = values.capacity
    form.offer_timeout.data = values.offer_timeout
    form.away_after_missed.data = values.away_after_missed
    form.team.data = str(values.team_id) if values.team_id else ""
    form.allowed_origins.data = "\n".join(values.allowed_origins)
    form.timezone.data = values.timezone
    form.calendar.data = str(values.calendar_id) if values.calendar_id else ""
    for day in DAYS:
        getattr(form, day).data = values.weekly.get(day, "")


def _page(form: ChatSettingsForm, status: int = 200) -> tuple[str, int]:
    days = [getattr(form, day) for day in DAYS]
    return render_template("admin/chat_settings.html", form=form, days=days), status


@bp.get("")
@admin_required
def settings() -> tuple[str, int]:
    form = _form()
    _fill(form)
    return _page(form)


@bp.post("")
@admin_required
def save() -> Response | tuple[str, int]:
    form = _form()
    if not form.validate_on_submit():
        # Re-shown with everything as typed: nothing the admin entered is lost.
        flash(_("Some settings need a fix; see the messages below."), "error")
        return _page(form, 400)
    try:
        config = ChatConfig(
            email_required=bool(form.email_required.data),
            name_required=bool(form.name_required.data),
            capacity=int(form.capacity.data or 0),
            offer_timeout=int(form.offer_timeout.data or 0),
            away_after_missed=int(form.away_after_missed.data or 0),
            transcript=bool(form.transcript.data),
            allowed_origins=parse_origins(form.allowed_origins.data or ""),
            timezone=form.timezone.data or instance_timezone(),
            weekly={day: getattr(form, day).data or "" for day in DAYS},
            team_id=int(form.team.data) if form.team.data else None,
            calendar_id=int(form.calendar.data) if form.calendar.data else None,
        )
        actor = current_user._get_current_object()
        assert isinstance(actor, Agent)
        labels = {day: str(label) for day, label in DAY_LABELS.items()}
        save_chat_config(db.session, actor, config, day_labels=labels)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(form, 400)
    db.session.commit()
    flash(_("Chat settings saved."), "success")
    return redirect(url_for("chat_admin.settings"))
