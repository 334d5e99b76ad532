"""``/api/v1/sla-policies``: SLA policies (targets per priority for first response, next
response and resolution, on a calendar's business hours or the clock, chosen by conditions).
Any agent's token reads them (an integration showing a due time needs the targets); only an
admin's admin token creates, changes or deletes them. Through ``services.sla``, the verbs of
Admin -> SLA policies, so the events (``sla_policy.created``/``updated``/``deleted``) and the
background recompute of open tickets' due times are the same."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy.orm import Session

from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import errors_doc, refusals
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import SlaPolicy, TokenScope
from helpdesk.services import conditions
from helpdesk.services import sla as verbs
from helpdesk.services.errors import NotFound

blp = Blueprint(
    "api_sla_policies",
    __name__,
    url_prefix="/api/v1/sla-policies",
    description="SLA policies: response and resolution targets per priority, in business or "
    "calendar hours, chosen for a ticket by conditions (the first active match by position).",
)

TARGETS_DOC = (
    'Per priority (`low`, `normal`, `high`, `urgent`, or `1`-`4`): `{"urgent": '
    '{"first_response_minutes": 60, "next_response_minutes": 120, "resolution_minutes": 480}}`; '
    "a priority or target left out is not measured"
)
CONDITIONS_DOC = (
    'All must hold, `[{"field": "channel", "op": "is", "value": "email"}]` (fields: '
    + ", ".join(f"`{f}`" for f in conditions.FIELDS)
    + ", `custom.<key>`; ops: "
    + ", ".join(f"`{o}`" for o in conditions.OPS)
    + "); empty: every ticket"
)


# --- schemas -------------------------------------------------------------------------------------


class TargetMinutes(ma.Schema):
    first_response_minutes = ma.fields.Integer(
        validate=validate.Range(1, verbs.MAX_MINUTES), allow_none=True
    )
    next_response_minutes = ma.fields.Integer(
        validate=validate.Range(1, verbs.MAX_MINUTES), allow_none=True
    )
    resolution_minutes = ma.fields.Integer(
        validate=validate.Range(1, verbs.MAX_MINUTES), allow_none=True
    )


class Condition(ma.Schema):
    field = ma.fields.String(required=True, validate=validate.Length(1, 60))
    op = ma.fields.String(required=True, validate=validate.Length(1, 30))
    value = ma.fields.Raw(allow_none=True)


def _targets(description: str = TARGETS_DOC, **kw: Any) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=validate.Length(1, 20)),
        values=ma.fields.Nested(TargetMinutes),
        metadata={"description": description},
        **kw,
    )


def _conditions(**kw: Any) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Nested(Condition),
        validate=validate.Length(max=conditions.MAX_CONDITIONS),
        metadata={"description": CONDITIONS_DOC},
        **kw,
    )


def _warning(**kw: Any) -> ma.fields.Integer:
    return ma.fields.Integer(
        validate=validate.Range(0, 24 * 60),
        metadata={"description": "An `sla.warning` event this many minutes before a due time"},
        **kw,
    )


class PolicyOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    calendar_id = ma.fields.Integer(
        required=True, allow_none=True, metadata={"description": "None: the default calendar"}
    )
    business_hours = ma.fields.Boolean(
        required=True, metadata={"description": "Targets count business hours (else the clock)"}
    )
    targets = _targets(required=True)
    conditions = _conditions(required=True)
    position = ma.fields.Integer(required=True, metadata={"description": "0 is first"})
    warning_minutes = _warning(required=True)
    active = ma.fields.Boolean(required=True)
    created_at = date_time(required=True)
    updated_at = date_time(required=True)


class PolicyList(ma.Schema):
    sla_policies = ma.fields.List(ma.fields.Nested(PolicyOut), required=True)


class PolicyCreate(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 120))
    calendar_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "Default: the default calendar"}
    )
    business_hours = ma.fields.Boolean(metadata={"description": "Default true"})
    targets = _targets(required=True)
    conditions = _conditions()
    position = ma.fields.Integer(
        validate=validate.Range(0, 10_000), metadata={"description": "Default: last"}
    )
    warning_minutes = _warning()
    active = ma.fields.Boolean(metadata={"description": "Default true"})


class PolicyPatch(ma.Schema):
    name = ma.fields.String(validate=validate.Length(1, 120))
    calendar_id = ma.fields.Integer(allow_none=True)
    business_hours = ma.fields.Boolean()
    targets = _targets(TARGETS_DOC + "; replaces all targets")
    conditions = _conditions()
    position = ma.fields.Integer(validate=validate.Range(0, 10_000))
    warning_minutes = _warning()
    active = ma.fields.Boolean()


# --- JSON ----------------------------------------------------------------------------------------


def policy_json(p: SlaPolicy) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "calendar_id": p.calendar_id,
        "business_hours": bool(p.business_hours),
        "targets": {k: dict(v) for k, v in (p.targets or {}).items()},
        "conditions": [dict(c) for c in (p.conditions or [])],
        "position": p.position,
        "warning_minutes": p.warning_minutes,
        "active": bool(p.active),
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


def policy_payload(session: Session, policy_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a policy: as GET returns it (None: deleted)."""
    policy = session.get(SlaPolicy, policy_id)
    return policy_json(policy) if policy is not None else None


# --- errors --------------------------------------------------------------------------------------


_FIELD_OF_CODE = {
    "name_required": "name",
    "invalid_targets": "targets",
    "invalid_conditions": "conditions",
    "unknown_calendar": "calendar_id",
}


def _refusals() -> AbstractContextManager[None]:
    return refusals(_FIELD_OF_CODE)


def _policy(policy_id: int) -> SlaPolicy:
    policy = db.session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound(_("SLA policy not found."))
    return policy


def _answer(policy: SlaPolicy, status: int) -> Any:
    db.session.flush()
    db.session.refresh(policy)
    return commit_response(policy_json(policy), status)


# --- views ---------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.response(200, PolicyList)
@errors_doc(blp, 401, 429)
def list_policies() -> dict[str, Any]:
    """Every policy in the order they are tried (position, then id), inactive ones too."""
    return {"sla_policies": [policy_json(p) for p in verbs.policies(db.session)]}


@blp.route("/<int:policy_id>", methods=["GET"])
@blp.response(200, PolicyOut)
@errors_doc(blp, 401, 404, 429)
def get_policy(policy_id: int) -> dict[str, Any]:
    """One policy."""
    return policy_json(_policy(policy_id))


@blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(PolicyCreate)
@blp.response(201, PolicyOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_policy(data: dict[str, Any]) -> Any:
    """Create a policy (admin). 422 naming the field: `invalid_targets`,
    `invalid_conditions`, `unknown_calendar`; 409 `name_taken`. Open tickets' due times are
    recomputed in the background. Event `sla_policy.created`."""
    with _refusals():
        policy = verbs.create_policy(
            db.session,
            me(),
            name=data["name"],
            targets=data["targets"],
            calendar_id=data.get("calendar_id"),
            business_hours=data.get("business_hours", True),
            conditions_=data.get("conditions"),
            position=data.get("position"),
            warning_minutes=data.get("warning_minutes", 30),
        )
        if data.get("active") is False:
            verbs.update_policy(db.session, policy, me(), active=False)
    return _answer(policy, 201)


@blp.route("/<int:policy_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(PolicyPatch)
@blp.response(200, PolicyOut)
@errors_doc(blp, 400, 401, 403, 404, 409, 422, 429)
def update_policy(changes: dict[str, Any], policy_id: int) -> Any:
    """Change what is given (admin); `targets` replaces all targets. Open tickets' due times
    follow in the background. Event `sla_policy.updated` with `changes`."""
    policy = _policy(policy_id)
    with _refusals():
        verbs.update_policy(db.session, policy, me(), **changes)
    return _answer(policy, 200)


@blp.route("/<int:policy_id>", methods=["DELETE"])
@requires_scope(TokenScope.ADMIN)
@blp.response(204)
@errors_doc(blp, 401, 403, 404, 429)
def delete_policy(policy_id: int) -> Any:
    """Delete a policy (admin); its tickets are given the next matching policy, or none, in
    the background. Event `sla_policy.deleted`."""
    verbs.delete_policy(db.session, _policy(policy_id), me())
    db.session.commit()
    return "", 204
