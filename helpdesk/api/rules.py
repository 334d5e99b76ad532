"""``/api/v1/triggers`` and ``/api/v1/time-rules``: the automation rules (``services.rules``,
the verbs of Admin -> Rules, so the events ``rule.created``/``updated``/``deleted`` are the
same). Any agent's token reads them (an integration may want to know what will happen to a
ticket); only an admin's admin token creates, changes or deletes them, and previews conditions
(``POST /api/v1/triggers/preview``: it reads every active ticket, whoever may see it).

Triggers run on an event of the stream, time rules from the worker on tickets quiet for
``after_hours``; both have conditions (``services/conditions.py``) and actions
(``services/rules.py``). The service's refusals are 422 naming the field, with its code
(``invalid_conditions``, ``invalid_actions``, ``invalid_event``, ``invalid_after_hours``); a
taken name is 409 ``name_taken``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import errors_doc, refusals
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Rule, RuleKind, TokenScope
from helpdesk.services import rules as verbs
from helpdesk.services.conditions import FIELDS, OPS
from helpdesk.services.errors import NotFound

blp = Blueprint(
    "api_triggers",
    __name__,
    url_prefix="/api/v1/triggers",
    description="Triggers: rules that run on an event (a ticket created or updated, a message, "
    "an SLA warning or breach) when their conditions hold, in order.",
)
time_blp = Blueprint(
    "api_time_rules",
    __name__,
    url_prefix="/api/v1/time-rules",
    description="Time rules: rules the worker runs on active tickets whose last update is "
    "`after_hours` old (once per quiet period).",
)

CONDITIONS_DOC = (
    'All must hold: `[{"field", "op", "value"}]`; fields '
    + ", ".join(f"`{f}`" for f in FIELDS)
    + ", `custom.<key>`; ops "
    + ", ".join(f"`{o}`" for o in OPS)
    + " (docs/automation.md)"
)
ACTIONS_DOC = (
    'In order: `[{"type", "value"}]`; types '
    + ", ".join(f"`{a}`" for a in verbs.ACTIONS)
    + ' (`send_email`: `{"to": "customer"|"assignee"|"team", "subject": {"en", "bn"}, '
    '"body": {"en", "bn"}}`; `webhook`: a webhook\'s id)'
)


# The service refuses an unknown one (422 ``invalid_event``).
_EVENT_DOC = {"description": "One of " + ", ".join(f"`{e}`" for e in verbs.EVENTS)}

# --- schemas -------------------------------------------------------------------------------------


class ConditionIn(ma.Schema):
    field = ma.fields.String(required=True, validate=validate.Length(1, 60))
    op = ma.fields.String(
        validate=validate.Length(max=30),
        metadata={"description": "Default `is`; one of " + ", ".join(OPS)},
    )
    value = ma.fields.Raw(allow_none=True, metadata={"description": "Text, number, list, bool"})


class ActionIn(ma.Schema):
    type = ma.fields.String(
        required=True,
        validate=validate.Length(max=40),
        metadata={"description": "One of " + ", ".join(verbs.ACTIONS)},
    )
    value = ma.fields.Raw(allow_none=True)


def _conditions(**kw: Any) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Nested(ConditionIn), metadata={"description": CONDITIONS_DOC}, **kw
    )


def _actions(**kw: Any) -> ma.fields.List:
    return ma.fields.List(ma.fields.Nested(ActionIn), metadata={"description": ACTIONS_DOC}, **kw)


def _position() -> ma.fields.Integer:
    return ma.fields.Integer(
        validate=validate.Range(0, 2**31 - 1),
        metadata={"description": "Lower runs first (0 is first); default: after the others"},
    )


def _after_hours(**kw: Any) -> ma.fields.Integer:
    # The range is the service's to refuse (422 ``invalid_after_hours``).
    return ma.fields.Integer(
        metadata={
            "description": f"Hours since the ticket's last update, 1 to {verbs.MAX_AFTER_HOURS}"
        },
        **kw,
    )


class ConditionOut(ma.Schema):
    field = ma.fields.String(required=True)
    op = ma.fields.String(required=True)
    value = ma.fields.Raw(required=True, allow_none=True)


class ActionOut(ma.Schema):
    type = ma.fields.String(required=True)
    value = ma.fields.Raw(required=True, allow_none=True)


class _RuleOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    conditions = ma.fields.List(ma.fields.Nested(ConditionOut), required=True)
    actions = ma.fields.List(ma.fields.Nested(ActionOut), required=True)
    position = ma.fields.Integer(required=True)
    active = ma.fields.Boolean(required=True)
    run_count = ma.fields.Integer(
        required=True, metadata={"description": "How often it fired (once per ticket)"}
    )
    last_run_at = date_time(required=True, allow_none=True)
    created_at = date_time(required=True)
    updated_at = date_time(required=True)


class TriggerOut(_RuleOut):
    event = ma.fields.String(required=True)
    stop = ma.fields.Boolean(
        required=True, metadata={"description": "When it fires, the later rules don't run"}
    )


class TimeRuleOut(_RuleOut):
    after_hours = ma.fields.Integer(required=True)


class TriggerList(ma.Schema):
    triggers = ma.fields.List(ma.fields.Nested(TriggerOut), required=True)


class TimeRuleList(ma.Schema):
    time_rules = ma.fields.List(ma.fields.Nested(TimeRuleOut), required=True)


class TriggerCreate(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 120))
    event = ma.fields.String(required=True, validate=validate.Length(max=40), metadata=_EVENT_DOC)
    conditions = _conditions()
    actions = _actions(required=True)
    position = _position()
    stop = ma.fields.Boolean()
    active = ma.fields.Boolean()


class TriggerPatch(ma.Schema):
    name = ma.fields.String(validate=validate.Length(1, 120))
    event = ma.fields.String(validate=validate.Length(max=40), metadata=_EVENT_DOC)
    conditions = _conditions()
    actions = _actions()
    position = _position()
    stop = ma.fields.Boolean()
    active = ma.fields.Boolean()


class TimeRuleCreate(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 120))
    after_hours = _after_hours(required=True)
    conditions = _conditions()
    actions = _actions(required=True)
    position = _position()
    active = ma.fields.Boolean()


class TimeRulePatch(ma.Schema):
    name = ma.fields.String(validate=validate.Length(1, 120))
    after_hours = _after_hours()
    conditions = _conditions()
    actions = _actions()
    position = _position()
    active = ma.fields.Boolean()


class PreviewIn(ma.Schema):
    conditions = _conditions(required=True)


class PreviewTicket(ma.Schema):
    number = ma.fields.Integer(required=True)
    subject = ma.fields.String(required=True)
    status = ma.fields.String(required=True)


class PreviewOut(ma.Schema):
    tickets = ma.fields.List(
        ma.fields.Nested(PreviewTicket),
        required=True,
        metadata={"description": "Up to 50 matching tickets, most recently updated first"},
    )
    looked_at = ma.fields.Integer(
        required=True,
        metadata={"description": "Active tickets looked at (the 2,000 most recently updated)"},
    )


# --- JSON ----------------------------------------------------------------------------------------


def rule_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule.id,
        "name": rule.name,
        "conditions": list(rule.conditions or []),
        "actions": list(rule.actions or []),
        "position": rule.position,
        "active": bool(rule.active),
        "run_count": rule.run_count or 0,
        "last_run_at": iso(rule.last_run_at),
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }
    if rule.kind == RuleKind.EVENT:
        out.update(event=rule.event, stop=bool(rule.stop))
    else:
        out["after_hours"] = rule.after_hours
    return out


def rule_payload(session: Session, rule_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a rule: as GET returns it, with its ``kind`` (None: deleted)."""
    rule = session.get(Rule, rule_id)
    return {"kind": rule.kind.value, **rule_json(rule)} if rule is not None else None


# --- errors --------------------------------------------------------------------------------------


_FIELD_OF_CODE = {
    "name_required": "name",
    "invalid_conditions": "conditions",
    "invalid_actions": "actions",
    "invalid_event": "event",
    "invalid_after_hours": "after_hours",
}


def _refusals() -> AbstractContextManager[None]:
    return refusals(_FIELD_OF_CODE)


def _rule(rule_id: int, kind: RuleKind) -> Rule:
    rule = db.session.get(Rule, rule_id)
    if rule is None or rule.kind != kind:
        raise NotFound(_("Rule not found."))
    return rule


def _answer(rule: Rule, status: int) -> Any:
    db.session.flush()
    db.session.refresh(rule)
    return commit_response(rule_json(rule), status)


def _listed(kind: RuleKind) -> list[dict[str, Any]]:
    q = select(Rule).where(Rule.kind == kind)
    if kind == RuleKind.EVENT:
        q = q.order_by(Rule.event, Rule.position, Rule.id)
    else:
        q = q.order_by(Rule.position, Rule.id)
    return [rule_json(r) for r in db.session.scalars(q)]


# --- triggers ------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.response(200, TriggerList)
@errors_doc(blp, 401, 429)
def list_triggers() -> dict[str, Any]:
    """Every trigger, by event and then in the order they run."""
    return {"triggers": _listed(RuleKind.EVENT)}


@blp.route("/<int:rule_id>", methods=["GET"])
@blp.response(200, TriggerOut)
@errors_doc(blp, 401, 404, 429)
def get_trigger(rule_id: int) -> dict[str, Any]:
    """One trigger, with how often it fired and when last."""
    return rule_json(_rule(rule_id, RuleKind.EVENT))


@blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(TriggerCreate)
@blp.response(201, TriggerOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_trigger(data: dict[str, Any]) -> Any:
    """Create a trigger (admin). 422 naming the field (`invalid_conditions`, `invalid_actions`,
    `invalid_event`); 409 `name_taken`. Event `rule.created`."""
    with _refusals():
        rule = verbs.create_rule(
            db.session,
            me(),
            name=data["name"],
            kind=RuleKind.EVENT,
            event=data["event"],
            conditions_=data.get("conditions"),
            actions=data["actions"],
            position=data.get("position"),
            stop=bool(data.get("stop", False)),
            active=bool(data.get("active", True)),
        )
    return _answer(rule, 201)


@blp.route("/<int:rule_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(TriggerPatch)
@blp.response(200, TriggerOut)
@errors_doc(blp, 400, 401, 403, 404, 409, 422, 429)
def update_trigger(changes: dict[str, Any], rule_id: int) -> Any:
    """Change what is given (admin; conditions and actions as whole lists). Event
    `rule.updated` with `changes`."""
    rule = _rule(rule_id, RuleKind.EVENT)
    with _refusals():
        verbs.update_rule(db.session, rule, me(), **changes)
    return _answer(rule, 200)


@blp.route("/<int:rule_id>", methods=["DELETE"])
@requires_scope(TokenScope.ADMIN)
@blp.response(204)
@errors_doc(blp, 401, 403, 404, 429)
def delete_trigger(rule_id: int) -> Any:
    """Delete a trigger (admin). Event `rule.deleted`."""
    verbs.delete_rule(db.session, _rule(rule_id, RuleKind.EVENT), me())
    db.session.commit()
    return "", 204


@blp.route("/preview", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(PreviewIn)
@blp.response(200, PreviewOut)
@errors_doc(blp, 400, 401, 403, 422, 429)
def preview(data: dict[str, Any]) -> dict[str, Any]:
    """The active tickets the conditions match now (admin; of triggers and time rules alike):
    what a rule would act on. Changes nothing."""
    with _refusals():
        found, looked_at = verbs.preview(db.session, data["conditions"])
    return {
        "tickets": [
            {"number": t.number, "subject": t.subject, "status": t.status.value} for t in found
        ],
        "looked_at": looked_at,
    }


# --- time rules ----------------------------------------------------------------------------------


@time_blp.route("", methods=["GET"])
@time_blp.response(200, TimeRuleList)
@errors_doc(time_blp, 401, 429)
def list_time_rules() -> dict[str, Any]:
    """Every time rule, in the order they run."""
    return {"time_rules": _listed(RuleKind.TIME)}


@time_blp.route("/<int:rule_id>", methods=["GET"])
@time_blp.response(200, TimeRuleOut)
@errors_doc(time_blp, 401, 404, 429)
def get_time_rule(rule_id: int) -> dict[str, Any]:
    """One time rule, with how often it fired and when last."""
    return rule_json(_rule(rule_id, RuleKind.TIME))


@time_blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@time_blp.arguments(TimeRuleCreate)
@time_blp.response(201, TimeRuleOut)
@time_blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(time_blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_time_rule(data: dict[str, Any]) -> Any:
    """Create a time rule (admin): it runs on active tickets `after_hours` after their last
    update, once per quiet period. 422 naming the field (`invalid_conditions`,
    `invalid_actions`, `invalid_after_hours`); 409 `name_taken`. Event `rule.created`."""
    with _refusals():
        rule = verbs.create_rule(
            db.session,
            me(),
            name=data["name"],
            kind=RuleKind.TIME,
            after_hours=data["after_hours"],
            conditions_=data.get("conditions"),
            actions=data["actions"],
            position=data.get("position"),
            active=bool(data.get("active", True)),
        )
    return _answer(rule, 201)


@time_blp.route("/<int:rule_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@time_blp.arguments(TimeRulePatch)
@time_blp.response(200, TimeRuleOut)
@errors_doc(time_blp, 400, 401, 403, 404, 409, 422, 429)
def update_time_rule(changes: dict[str, Any], rule_id: int) -> Any:
    """Change what is given (admin; conditions and actions as whole lists). Event
    `rule.updated` with `changes`."""
    rule = _rule(rule_id, RuleKind.TIME)
    with _refusals():
        verbs.update_rule(db.session, rule, me(), **changes)
    return _answer(rule, 200)


@time_blp.route("/<int:rule_id>", methods=["DELETE"])
@requires_scope(TokenScope.ADMIN)
@time_blp.response(204)
@errors_doc(time_blp, 401, 403, 404, 429)
def delete_time_rule(rule_id: int) -> Any:
    """Delete a time rule (admin). Event `rule.deleted`."""
    verbs.delete_rule(db.session, _rule(rule_id, RuleKind.TIME), me())
    db.session.commit()
    return "", 204
