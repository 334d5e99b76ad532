"""Admin pages for automation rules at ``/admin/rules``: the triggers grouped by event and the
time rules, each list in the order it runs (moved up and down), with an active toggle, how
often a rule fired and when last; a rule's form (name, the event or "hours after the last
update", conditions and actions as rows, stop), a Preview button that lists the tickets the
conditions match now, and delete with confirmation. Routes on the ``admin`` blueprint (admins
only); the rules themselves are helpdesk.services.rules, which the API's ``/api/v1/triggers``
and ``/api/v1/time-rules`` call too.

The conditions editor is the SLA policies' (the same fields and operators, the same labels);
actions are rows of a type and a value, and a mail action has its own boxes (recipient, subject
and text in English and Bengali).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import LazyString
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from helpdesk.extensions import db
from helpdesk.i18n import _, _l
from helpdesk.models import Agent, Rule, RuleKind, Ticket
from helpdesk.services import conditions, rules
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.admin import admin_required, bp
from helpdesk.web.admin_sla import (
    FIELD_LABELS,
    OP_LABELS,
    ConditionRow,
    _conditions_in,
    _field_choices,
)
from helpdesk.web.forms import choices

EVENT_LABELS: dict[str, LazyString] = {
    "ticket.created": _l("A ticket is created"),
    "ticket.updated": _l("A ticket is updated"),
    "message.created": _l("A message is added"),
    "sla.warning": _l("An SLA target is about to be missed"),
    "sla.breached": _l("An SLA target is missed"),
}
TIME = "time"
ACTION_LABELS: dict[str, LazyString] = {
    "set_status": _l("Set the status"),
    "set_priority": _l("Set the priority"),
    "set_team": _l("Move to the team"),
    "assign": _l("Assign to"),
    "add_tags": _l("Add tags"),
    "remove_tags": _l("Remove tags"),
    "set_custom": _l("Set a custom field"),
    "add_note": _l("Add an internal note"),
    "send_email": _l("Send an email"),
    "webhook": _l("Call a webhook"),
    "apply_macro": _l("Apply a macro"),
}
# What the value box of each action takes (shown beside the editor).
ACTION_HELP: dict[str, LazyString] = {
    "set_status": _l("new, open, pending, resolved or closed"),
    "set_priority": _l("low, normal, high or urgent"),
    "set_team": _l("The team's name (none: no team)"),
    "assign": _l("An agent's email, round_robin (the team's turn) or none"),
    "add_tags": _l("Tags, comma separated"),
    "remove_tags": _l("Tags, comma separated"),
    "set_custom": _l("key=value, like plan=gold"),
    "add_note": _l("The note's text (placeholders work)"),
    "send_email": _l("Choose the recipient and write the subject and text below"),
    "webhook": _l("The webhook's number (Admin → Webhooks)"),
    "apply_macro": _l("The macro's number"),
}
RECIPIENT_LABELS: dict[str, LazyString] = {
    "customer": _l("The customer"),
    "assignee": _l("The assignee"),
    "team": _l("The team's members"),
}
PLACEHOLDERS = (
    "{{ ticket.number }}",
    "{{ ticket.subject }}",
    "{{ customer.name }}",
    "{{ customer.email }}",
    "{{ agent.name }}",
    "{{ agent.email }}",
)
_PRIORITY_NAMES = {rank: name for name, rank in conditions.PRIORITY_NAMES.items()}
# A service error's code -> the part of the form it is about.
_PART_OF_CODE = {
    "name_required": "name",
    "name_taken": "name",
    "invalid_event": "when",
    "invalid_after_hours": "when",
    "invalid_kind": "when",
    "invalid_conditions": "conditions",
    "invalid_actions": "actions",
}


class RuleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    when = SelectField(_l("When"), choices=[])
    after_hours = IntegerField(
        _l("Hours after the last update"),
        validators=[Optional(), NumberRange(1, rules.MAX_AFTER_HOURS)],
        description=_l("Active tickets quiet this long; each is looked at once per quiet period."),
    )
    stop = BooleanField(
        _l("Stop here"), description=_l("When this rule fires, the later rules of the event don't.")
    )
    active = BooleanField(_l("Active"), default=True)


@dataclass
class ActionRow:
    type: str
    value: str = ""
    to: str = "customer"
    subject: dict[str, str] = field(default_factory=lambda: {"en": "", "bn": ""})
    body: dict[str, str] = field(default_factory=lambda: {"en": "", "bn": ""})


def _me() -> Agent:
    user: Agent = current_user._get_current_object()
    return user


def _rule(rule_id: int) -> Rule:
    rule = db.session.get(Rule, rule_id)
    if rule is None:
        raise NotFound(_("Rule not found."))
    return rule


def _when_choices(rule: Rule | None) -> list[tuple[str, str]]:
    events = [(e, str(EVENT_LABELS[e])) for e in rules.EVENTS]
    time = [(TIME, str(_("Hours after the last update (a time rule)")))]
    if rule is None:
        return events + time
    return time if rule.kind == RuleKind.TIME else events


def _form(rule: Rule | None) -> RuleForm:
    data: dict[str, Any] | None = None
    if request.method == "GET" and rule is not None:
        data = {
            "name": rule.name,
            "when": TIME if rule.kind == RuleKind.TIME else rule.event,
            "after_hours": rule.after_hours,
            "stop": rule.stop,
            "active": rule.active,
        }
    elif request.method == "GET" and request.args.get("kind") == TIME:
        data = {"when": TIME, "after_hours": 72, "active": True}
    form = RuleForm(data=data)
    form.when.choices = choices(_when_choices(rule))
    return form


def _value_text(kind: str, value: Any) -> str:
    if kind == "set_priority" and isinstance(value, int):
        return _PRIORITY_NAMES.get(value, str(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def _actions_in(rule: Rule | None) -> list[ActionRow]:
    """The action rows: what was posted (every row has every box, so the lists line up), else
    the rule's."""
    if request.method == "POST":
        form = request.form
        columns = [
            form.getlist(name)
            for name in ("a.type", "a.value", "a.to", "a.subject_en", "a.subject_bn")
        ] + [form.getlist("a.body_en"), form.getlist("a.body_bn")]
        out = []
        for kind, value, to, s_en, s_bn, b_en, b_bn in zip(*columns, strict=False):
            if kind.strip():
                out.append(
                    ActionRow(kind, value, to, {"en": s_en, "bn": s_bn}, {"en": b_en, "bn": b_bn})
                )
        return out
    rows = []
    for action in (rule.actions if rule is not None else None) or []:
        kind, value = str(action.get("type")), action.get("value")
        if kind == "send_email" and isinstance(value, dict):
            rows.append(
                ActionRow(
                    kind,
                    "",
                    str(value.get("to") or "customer"),
                    dict(value.get("subject") or {}),
                    dict(value.get("body") or {}),
                )
            )
        else:
            rows.append(ActionRow(kind, _value_text(kind, value)))
    return rows


def _posted_actions() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in _actions_in(None):
        value: Any = row.value.strip()
        if row.type == "send_email":
            value = {
                "to": row.to,
                "subject": {k: v.strip() for k, v in row.subject.items()},
                "body": {k: v.strip() for k, v in row.body.items()},
            }
        elif row.type == "set_custom":
            pairs = [p.partition("=") for p in row.value.split(";") if p.strip()]
            value = {k.strip(): v.strip() for k, _sep, v in pairs if k.strip()}
        out.append({"type": row.type, "value": value})
    return out


def _posted_conditions() -> list[dict[str, Any]]:
    return [
        {"field": row.field.strip(), "op": row.op.strip(), "value": row.value.strip()}
        for row in _conditions_in(None)
    ]


def _conditions_rows(rule: Rule | None) -> list[ConditionRow]:
    # The SLA form's reader of posted rows and of a saved list (a rule has the same shape).
    return _conditions_in(rule)  # type: ignore[arg-type]


def _fields() -> list[tuple[str, str]]:
    """Every field of the condition language (a trigger's event ones too: who acted, what
    changed, the SLA target), then the tickets' custom fields as the SLA form lists them."""
    base = [(f, str(FIELD_LABELS.get(f, f))) for f in conditions.FIELDS]
    return base + [c for c in _field_choices() if c[0].startswith("custom.")]


def _render_form(
    form: RuleForm,
    rule: Rule | None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    preview: tuple[list[Ticket], int] | None = None,
) -> tuple[str, int]:
    page = render_template(
        "admin/rule_form.html",
        form=form,
        rule=rule,
        conditions=_conditions_rows(rule),
        actions=_actions_in(rule),
        fields=_fields(),
        ops=list(OP_LABELS.items()),
        action_labels=ACTION_LABELS,
        action_help=ACTION_HELP,
        recipients=RECIPIENT_LABELS,
        placeholders=PLACEHOLDERS,
        time_value=TIME,
        errors=errors or {},
        preview=preview,
    )
    return page, status


def _groups() -> list[tuple[str, list[Rule]]]:
    """The triggers by event (in the services' order of events), then the time rules."""
    every = rules.rules(db.session)
    groups = [
        (str(EVENT_LABELS[e]), [r for r in every if r.kind == RuleKind.EVENT and r.event == e])
        for e in rules.EVENTS
    ]
    return [g for g in groups if g[1]]


def _ordered(group: list[Rule]) -> list[Rule]:
    return sorted(group, key=lambda r: (r.position, r.id))


def _siblings(rule: Rule) -> list[Rule]:
    """The rules that run in one order with ``rule``: its event's triggers, or the time rules."""
    return _ordered(
        [
            r
            for r in rules.rules(db.session)
            if r.kind == rule.kind and (r.kind == RuleKind.TIME or r.event == rule.event)
        ]
    )


@bp.get("/rules")
@admin_required
def rules_list() -> str:
    every = rules.rules(db.session)
    return render_template(
        "admin/rules.html",
        triggers=_groups(),
        time_rules=_ordered([r for r in every if r.kind == RuleKind.TIME]),
        action_labels=ACTION_LABELS,
    )


@bp.route("/rules/new", methods=["GET", "POST"])
@bp.route("/rules/<int:rule_id>", methods=["GET", "POST"])
@admin_required
def rule_edit(rule_id: int | None = None) -> tuple[str, int] | Response:
    rule = _rule(rule_id) if rule_id is not None else None
    form = _form(rule)
    if request.method != "POST":
        return _render_form(form, rule)
    if "preview" in request.form:
        # Nothing is saved: the tickets the conditions as typed match now.
        if not form.validate_on_submit() and "csrf_token" in form.errors:
            return _render_form(form, rule, 400)
        try:
            found = rules.preview(db.session, _posted_conditions())
        except ServiceError as exc:
            return _render_form(form, rule, 400, {"conditions": str(exc)})
        return _render_form(form, rule, 200, preview=found)
    if not form.validate_on_submit():
        return _render_form(form, rule, 400)
    timed = form.when.data == TIME
    values: dict[str, Any] = {
        "name": form.name.data or "",
        "conditions": _posted_conditions(),
        "actions": _posted_actions(),
        "stop": bool(form.stop.data) and not timed,
        "active": bool(form.active.data),
    }
    if timed:
        values["after_hours"] = form.after_hours.data
    else:
        values["event"] = form.when.data
    try:
        if rule is None:
            rule = rules.create_rule(
                db.session,
                _me(),
                name=values.pop("name"),
                kind=RuleKind.TIME if timed else RuleKind.EVENT,
                conditions_=values.pop("conditions"),
                **values,
            )
        else:
            rules.update_rule(db.session, rule, _me(), **values)
    except ServiceError as exc:
        db.session.rollback()  # shown on the form, everything typed kept
        part = _PART_OF_CODE.get(exc.code, "form")
        if part == "name":
            form.name.errors = [str(exc)]
        rule = _rule(rule_id) if rule_id is not None else None
        return _render_form(form, rule, 400, {part: str(exc)})
    db.session.commit()
    flash(_("Rule %(name)s saved.", name=rule.name), "success")
    return redirect(url_for("admin.rules_list"))


@bp.post("/rules/<int:rule_id>/move")
@admin_required
def rule_move(rule_id: int) -> Response:
    """Up or down one place among the rules that run with it: their positions are written
    0..n-1 in the new order."""
    rule = _rule(rule_id)
    ordered = _siblings(rule)
    index = ordered.index(rule)
    other = index - 1 if request.form.get("direction") == "up" else index + 1
    if 0 <= other < len(ordered) and FlaskForm().validate_on_submit():
        ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, r in enumerate(ordered):
            if r.position != position:
                rules.update_rule(db.session, r, _me(), position=position)
        db.session.commit()
    return redirect(url_for("admin.rules_list"))


@bp.post("/rules/<int:rule_id>/active")
@admin_required
def rule_toggle(rule_id: int) -> Response:
    rule = _rule(rule_id)
    if FlaskForm().validate_on_submit():
        rules.update_rule(db.session, rule, _me(), active=not rule.active)
        db.session.commit()
        if rule.active:
            flash(_("Rule %(name)s is active.", name=rule.name), "success")
        else:
            flash(_("Rule %(name)s is paused.", name=rule.name), "success")
    return redirect(url_for("admin.rules_list"))


@bp.route("/rules/<int:rule_id>/delete", methods=["GET", "POST"])
@admin_required
def rule_delete(rule_id: int) -> str | Response:
    rule = _rule(rule_id)
    form = FlaskForm()
    if request.method == "POST" and form.validate_on_submit():
        name = rule.name
        rules.delete_rule(db.session, rule, _me())
        db.session.commit()
        flash(_("Rule %(name)s deleted.", name=name), "success")
        return redirect(url_for("admin.rules_list"))
    return render_template("admin/rule_delete.html", rule=rule, form=form)
