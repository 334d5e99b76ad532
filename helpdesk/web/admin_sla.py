"""Admin pages for SLA policies at ``/admin/sla``: the policies in the order they are tried
(moved up and down), a policy's form (calendar, business or calendar hours, a targets table of
priorities by first response / next response / resolution, the warning, conditions as rows of
field / operator / value), delete with confirmation, and the background recompute's progress.
Routes on the ``admin`` blueprint (admins only); the rules are in helpdesk.services.sla.

Targets are typed as hours and minutes, ``H:MM`` ("4:00", "0:30", "48:00"); "4h", "30m" and
"4h 30m" are read too, so a pasted value is not refused for its spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from helpdesk.extensions import db
from helpdesk.i18n import _, _l, localize
from helpdesk.models import Agent, Calendar, CustomField, FieldObject, SlaPolicy
from helpdesk.models.sla import TARGETS
from helpdesk.services import conditions, sla
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.admin import admin_required, bp
from helpdesk.web.forms import choices

PRIORITY_LABELS = {
    "low": _l("Low"),
    "normal": _l("Normal"),
    "high": _l("High"),
    "urgent": _l("Urgent"),
}
TARGET_LABELS = {
    "first_response": _l("First response"),
    "next_response": _l("Next response"),
    "resolution": _l("Resolution"),
}
FIELD_LABELS = {
    "status": _l("Status"),
    "priority": _l("Priority"),
    "channel": _l("Channel"),
    "team": _l("Team"),
    "assignee": _l("Assignee"),
    "tags": _l("Tags"),
    "organization": _l("Organization"),
    "customer": _l("Customer's email"),
    "customer_domain": _l("Customer's email domain"),
    "subject": _l("Subject"),
    "text": _l("First message's text"),
    "language": _l("Language (bn/en)"),
    "within_business_hours": _l("Within business hours"),
    "actor": _l("Who acted"),
    "changed": _l("Fields changed"),
    "sla_target": _l("SLA target"),
}
OP_LABELS = {
    "is": _l("is"),
    "is_not": _l("is not"),
    "contains": _l("contains"),
    "not_contains": _l("does not contain"),
    "matches": _l("matches (regular expression)"),
    "in": _l("is one of (comma separated)"),
    "not_in": _l("is none of (comma separated)"),
    "gt": _l("greater than"),
    "lt": _l("less than"),
    "gte": _l("at least"),
    "lte": _l("at most"),
    "is_set": _l("is set"),
    "is_empty": _l("is empty"),
}
# Fields an SLA policy's conditions can use (the others describe an event, which a policy has
# none of).
POLICY_FIELDS = tuple(f for f in conditions.FIELDS if f not in ("actor", "changed", "sla_target"))
_DURATION = re.compile(r"^\s*(?:(\d{1,5})\s*h)?\s*(?:(\d{1,6})\s*m(?:in)?)?\s*$", re.IGNORECASE)
_CLOCK = re.compile(r"^\s*(\d{1,5}):([0-5]\d)\s*$")


class PolicyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    calendar = SelectField(_l("Calendar"), choices=[], default="")
    hours = SelectField(
        _l("Count"),
        choices=choices(
            [
                ("business", _l("Business hours (the calendar's open hours)")),
                ("calendar", _l("Calendar hours (every hour of the clock)")),
            ]
        ),
        default="business",
    )
    warning_minutes = IntegerField(
        _l("Warn this many minutes before a due time"),
        default=30,
        validators=[Optional(), NumberRange(0, 24 * 60)],
    )
    active = BooleanField(_l("Active"), default=True)


@dataclass
class ConditionRow:
    field: str
    op: str
    value: str


def _me() -> Agent:
    user: Agent = current_user._get_current_object()
    return user


def _policy(policy_id: int) -> SlaPolicy:
    policy = db.session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound(_("SLA policy not found."))
    return policy


def parse_duration(text: str) -> int | None:
    """Minutes from "4:00", "4h", "30m", "4h 30m"; None for an empty box; -1 if unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    clock = _CLOCK.match(text)
    if clock:
        return int(clock[1]) * 60 + int(clock[2])
    spelled = _DURATION.match(text)
    if spelled and (spelled[1] or spelled[2]):
        return int(spelled[1] or 0) * 60 + int(spelled[2] or 0)
    return -1


def format_duration(minutes: int | None) -> str:
    """``H:MM`` as the form shows a target."""
    if not minutes:
        return ""
    return f"{minutes // 60}:{minutes % 60:02d}"


def _field_choices() -> list[tuple[str, str]]:
    fields = [(f, str(FIELD_LABELS.get(f, f))) for f in POLICY_FIELDS]
    custom = db.session.scalars(
        select(CustomField)
        .where(CustomField.object_type == FieldObject.TICKET, CustomField.active.is_(True))
        .order_by(CustomField.position, CustomField.id)
    )
    language = str(get_locale() or "en")[:2]
    fields += [(f"custom.{c.key}", _("Field: %(label)s", label=c.label(language))) for c in custom]
    return fields


def _form(policy: SlaPolicy | None) -> PolicyForm:
    data: dict[str, Any] | None = None
    if request.method == "GET" and policy is not None:
        data = {
            "name": policy.name,
            "calendar": str(policy.calendar_id or ""),
            "hours": "business" if policy.business_hours else "calendar",
            "warning_minutes": policy.warning_minutes,
            "active": policy.active,
        }
    form = PolicyForm(data=data)
    calendars = db.session.scalars(select(Calendar).order_by(Calendar.name))
    form.calendar.choices = choices(
        [("", _("The default calendar"))] + [(str(c.id), c.name) for c in calendars]
    )
    return form


def _targets_in(policy: SlaPolicy | None) -> dict[str, dict[str, str]]:
    """The targets table's boxes: what was posted, else the policy's as ``H:MM``."""
    if request.method == "POST":
        return {
            p: {t: request.form.get(f"t.{p}.{t}", "")[:20] for t in TARGETS}
            for p in PRIORITY_LABELS
        }
    targets = (policy.targets if policy is not None else None) or {
        "normal": {"first_response_minutes": 240, "resolution_minutes": 1440}
    }
    return {
        p: {t: format_duration((targets.get(p) or {}).get(f"{t}_minutes")) for t in TARGETS}
        for p in PRIORITY_LABELS
    }


def _conditions_in(policy: SlaPolicy | None) -> list[ConditionRow]:
    if request.method == "POST":
        fields = request.form.getlist("c.field")
        ops = request.form.getlist("c.op")
        values = request.form.getlist("c.value")
        return [
            ConditionRow(f, o, v) for f, o, v in zip(fields, ops, values, strict=False) if f.strip()
        ]
    rows = []
    for c in (policy.conditions if policy is not None else None) or []:
        value = c.get("value")
        text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value or "")
        rows.append(ConditionRow(str(c.get("field")), str(c.get("op")), text))
    return rows


def _progress() -> str | None:
    found = sla.recompute_progress(db.session)
    if found is None:
        return None
    done, total = found
    return _("Recomputing due times: %(done)d of %(total)d tickets", done=done, total=total)


def _render_form(
    form: PolicyForm,
    policy: SlaPolicy | None,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> tuple[str, int]:
    page = render_template(
        "admin/sla_policy_form.html",
        form=form,
        policy=policy,
        targets=_targets_in(policy),
        conditions=_conditions_in(policy),
        priorities=PRIORITY_LABELS,
        target_labels=TARGET_LABELS,
        fields=_field_choices(),
        ops=list(OP_LABELS.items()),
        errors=errors or {},
        progress=_progress(),
    )
    return page, status


def _posted_targets() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for priority in PRIORITY_LABELS:
        for target in TARGETS:
            minutes = parse_duration(request.form.get(f"t.{priority}.{target}", ""))
            if minutes is None:
                continue
            if minutes <= 0:
                raise ServiceError(
                    _(
                        "%(priority)s, %(target)s: write hours and minutes like 4:00 or 0:30.",
                        priority=PRIORITY_LABELS[priority],
                        target=TARGET_LABELS[target],
                    ),
                    code="invalid_targets",
                )
            out.setdefault(priority, {})[f"{target}_minutes"] = minutes
    return out


def _posted_conditions() -> list[dict[str, Any]]:
    return [
        {"field": row.field.strip(), "op": row.op.strip(), "value": row.value.strip()}
        for row in _conditions_in(None)
    ]


@bp.get("/sla")
@admin_required
def sla_policies() -> str:
    rows = sla.policies(db.session)
    calendars = {c.id: c.name for c in db.session.scalars(select(Calendar))}
    return render_template(
        "admin/sla_policies.html",
        rows=rows,
        calendars=calendars,
        priorities=PRIORITY_LABELS,
        target_labels=TARGET_LABELS,
        format_duration=lambda m: localize(format_duration(m)),
        progress=_progress(),
    )


@bp.route("/sla/new", methods=["GET", "POST"])
@bp.route("/sla/<int:policy_id>", methods=["GET", "POST"])
@admin_required
def sla_policy_edit(policy_id: int | None = None) -> tuple[str, int] | Response:
    policy = _policy(policy_id) if policy_id is not None else None
    form = _form(policy)
    if request.method != "POST":
        return _render_form(form, policy)
    if not form.validate_on_submit():
        return _render_form(form, policy, 400)
    values = {
        "name": form.name.data or "",
        "calendar_id": int(form.calendar.data) if (form.calendar.data or "").isdigit() else None,
        "business_hours": form.hours.data != "calendar",
        "warning_minutes": form.warning_minutes.data if form.warning_minutes.data else 0,
    }
    try:
        values["targets"] = _posted_targets()
        values["conditions"] = _posted_conditions()
        if policy is None:
            policy = sla.create_policy(
                db.session,
                _me(),
                name=values["name"],
                targets=values["targets"],
                calendar_id=values["calendar_id"],
                business_hours=values["business_hours"],
                conditions_=values["conditions"],
                warning_minutes=values["warning_minutes"],
            )
            if not form.active.data:
                sla.update_policy(db.session, policy, _me(), active=False)
        else:
            sla.update_policy(db.session, policy, _me(), active=bool(form.active.data), **values)
    except ServiceError as exc:
        db.session.rollback()  # shown on the form, everything typed kept
        key = {
            "name_required": "name",
            "name_taken": "name",
            "invalid_targets": "targets",
            "invalid_conditions": "conditions",
            "unknown_calendar": "calendar",
        }.get(exc.code, "form")
        if key == "name":
            form.name.errors = [str(exc)]
        elif key == "calendar":
            form.calendar.errors = [str(exc)]
        policy = _policy(policy_id) if policy_id is not None else None
        return _render_form(form, policy, 400, {key: str(exc)})
    db.session.commit()
    flash(_("SLA policy %(name)s saved.", name=policy.name), "success")
    return redirect(url_for("admin.sla_policies"))


@bp.post("/sla/<int:policy_id>/move")
@admin_required
def sla_policy_move(policy_id: int) -> Response:
    """Up or down one place: the positions are written 0..n-1 in the new order."""
    ordered = sla.policies(db.session)
    index = next((i for i, p in enumerate(ordered) if p.id == policy_id), None)
    if index is None:
        raise NotFound(_("SLA policy not found."))
    other = index - 1 if request.form.get("direction") == "up" else index + 1
    if 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, p in enumerate(ordered):
            if p.position != position:
                sla.update_policy(db.session, p, _me(), position=position)
        db.session.commit()
    return redirect(url_for("admin.sla_policies"))


@bp.route("/sla/<int:policy_id>/delete", methods=["GET", "POST"])
@admin_required
def sla_policy_delete(policy_id: int) -> str | Response:
    policy = _policy(policy_id)
    form = FlaskForm()
    if request.method == "POST" and form.validate_on_submit():
        name = policy.name
        sla.delete_policy(db.session, policy, _me())
        db.session.commit()
        flash(_("SLA policy %(name)s deleted.", name=name), "success")
        return redirect(url_for("admin.sla_policies"))
    return render_template("admin/sla_policy_delete.html", policy=policy, form=form)
