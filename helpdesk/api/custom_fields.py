"""``/api/v1/custom-fields``: the typed fields admins define for tickets, customers and
organizations (``services.custom_fields``, the verbs of Admin -> Custom fields). Any agent's
token reads them (an integration needs the keys, types and options to write values); only an
admin's admin token creates, changes, archives or deletes them.

Values are not here: they are the ``custom`` object of a ticket, customer or organization, read
with its GET and set with its PATCH. This module also holds what those resources share for it:
:func:`values_errors`, which names a bad value ``custom.<key>`` in the 422's ``fields``, and
:func:`check_values` (the ``custom`` schemas are ``schemas.custom_out`` / ``custom_in``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy.orm import Session

from helpdesk.api.auth import me, requires_scope
from helpdesk.api.common import Invalid, errors_doc
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import CustomField, FieldObject, FieldType, TokenScope
from helpdesk.services import custom_fields as verbs
from helpdesk.services.custom_fields import FieldErrors
from helpdesk.services.errors import NotFound, ServiceError

blp = Blueprint(
    "api_custom_fields",
    __name__,
    url_prefix="/api/v1/custom-fields",
    description="Custom fields of tickets, customers and organizations: their definitions "
    "(values are the objects' `custom`).",
)

OBJECTS = [o.value for o in FieldObject]
TYPES = [t.value for t in FieldType]
FLAGS = (
    "required_on_resolve",
    "visible_to_customers",
    "on_portal_form",
    "on_prechat_form",
    "required_on_forms",
)
IMMUTABLE = ("object", "key", "type")
FLAG_DOCS = {
    "required_on_resolve": "Tickets: an agent cannot resolve or close the ticket while empty",
    "visible_to_customers": "Shown to the customer (portal); false: agents only",
    "on_portal_form": "Asked on the portal's contact form (ticket and customer fields visible "
    "to customers)",
    "on_prechat_form": "Asked on the chat's pre-chat form (ticket and customer fields visible "
    "to customers)",
    "required_on_forms": "Required on the forms that ask it",
}
# --- schemas -------------------------------------------------------------------------------------


class Label(ma.Schema):
    en = ma.fields.String(required=True)
    bn = ma.fields.String(required=True, metadata={"description": "Empty: the English one"})


class LabelIn(ma.Schema):
    en = ma.fields.String(validate=validate.Length(max=verbs.MAX_LABEL))
    bn = ma.fields.String(validate=validate.Length(max=verbs.MAX_LABEL))


class OptionOut(ma.Schema):
    value = ma.fields.String(required=True, metadata={"description": "What is stored"})
    label = ma.fields.Nested(Label, required=True)


_OPTION_IN = {
    "oneOf": [
        {"type": "string", "description": "`value`, or `value | English | Bengali`"},
        {
            "type": "object",
            "properties": {
                "value": {"type": "string"},
                "label": {
                    "type": "object",
                    "properties": {"en": {"type": "string"}, "bn": {"type": "string"}},
                },
            },
            "required": ["value"],
        },
    ]
}


def _options_in() -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Raw(metadata=_OPTION_IN),
        validate=validate.Length(max=verbs.MAX_OPTIONS),
        metadata={"description": "Dropdown and multi-select: the options in order"},
    )


class FieldOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    object = ma.fields.String(required=True, validate=validate.OneOf(OBJECTS))
    key = ma.fields.String(
        required=True, metadata={"description": "The name in `custom`; never changes"}
    )
    type = ma.fields.String(required=True, validate=validate.OneOf(TYPES))
    label = ma.fields.Nested(Label, required=True)
    options = ma.fields.List(ma.fields.Nested(OptionOut), required=True)
    required_on_resolve = ma.fields.Boolean(
        required=True, metadata={"description": FLAG_DOCS["required_on_resolve"]}
    )
    visible_to_customers = ma.fields.Boolean(
        required=True, metadata={"description": FLAG_DOCS["visible_to_customers"]}
    )
    on_portal_form = ma.fields.Boolean(
        required=True, metadata={"description": FLAG_DOCS["on_portal_form"]}
    )
    on_prechat_form = ma.fields.Boolean(
        required=True, metadata={"description": FLAG_DOCS["on_prechat_form"]}
    )
    required_on_forms = ma.fields.Boolean(
        required=True, metadata={"description": FLAG_DOCS["required_on_forms"]}
    )
    position = ma.fields.Integer(required=True, metadata={"description": "Order (ascending)"})
    active = ma.fields.Boolean(
        required=True, metadata={"description": "false: archived (hidden, values kept)"}
    )
    created_at = date_time(required=True)
    updated_at = date_time(required=True)


class FieldList(ma.Schema):
    custom_fields = ma.fields.List(ma.fields.Nested(FieldOut), required=True)


class FieldQuery(ma.Schema):
    object = ma.fields.String(validate=validate.OneOf(OBJECTS))
    archived = ma.fields.Boolean(
        load_default=False, metadata={"description": "true: archived fields too"}
    )


class _Reject(ma.Schema):
    @ma.pre_load
    def immutable(self, data: Any, **_kw: Any) -> Any:
        if isinstance(data, dict):
            named = {
                name: [_("The %(name)s of a field cannot be changed.", name=name)]
                for name in IMMUTABLE
                if name in data
            }
            if named:
                raise ma.ValidationError(named)
        return data


def _flag(name: str) -> ma.fields.Boolean:
    return ma.fields.Boolean(metadata={"description": FLAG_DOCS[name]})


class FieldCreate(ma.Schema):
    object = ma.fields.String(required=True, validate=validate.OneOf(OBJECTS))
    key = ma.fields.String(
        required=True,
        validate=validate.Length(1, 40),
        metadata={"description": "1-40 of a-z, 0-9, _, starting with a letter; never changes"},
    )
    type = ma.fields.String(required=True, validate=validate.OneOf(TYPES))
    label = ma.fields.Nested(LabelIn, required=True, metadata={"description": "`en` required"})
    options = _options_in()
    required_on_resolve = _flag("required_on_resolve")
    visible_to_customers = _flag("visible_to_customers")
    on_portal_form = _flag("on_portal_form")
    on_prechat_form = _flag("on_prechat_form")
    required_on_forms = _flag("required_on_forms")
    position = ma.fields.Integer(
        validate=validate.Range(0, 100_000), metadata={"description": "Default: last"}
    )


class FieldPatch(_Reject):
    label = ma.fields.Nested(LabelIn)
    options = _options_in()
    required_on_resolve = _flag("required_on_resolve")
    visible_to_customers = _flag("visible_to_customers")
    on_portal_form = _flag("on_portal_form")
    on_prechat_form = _flag("on_prechat_form")
    required_on_forms = _flag("required_on_forms")
    position = ma.fields.Integer(validate=validate.Range(0, 100_000))
    active = ma.fields.Boolean(
        metadata={"description": "false archives (hidden everywhere, values kept); true restores"}
    )


# --- what the objects' resources share -------------------------------------------------------


def custom_json(values: dict[str, Any] | None) -> dict[str, Any]:
    return dict(values or {})


@contextmanager
def values_errors() -> Iterator[None]:
    """The core's FieldErrors (by key) as the API names them: ``custom.<key>``."""
    try:
        yield
    except FieldErrors as exc:
        raise FieldErrors(
            {f"custom.{key}": message for key, message in exc.fields.items()}
        ) from None


def check_values(session: Session, object_type: FieldObject, raw: dict[str, Any]) -> None:
    """Refuse (422) values a record being created could not take, before anything is written."""
    with values_errors():
        verbs.clean_values(verbs.fields_for(session, object_type), raw)


# --- JSON ----------------------------------------------------------------------------------------


def field_json(f: CustomField) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": f.object_type.value,
        "key": f.key,
        "type": f.type.value,
        "label": {"en": f.label_en, "bn": f.label_bn or ""},
        "options": [
            {"value": o["value"], "label": {"en": o.get("en") or "", "bn": o.get("bn") or ""}}
            for o in f.options or []
        ],
        **{name: bool(getattr(f, name)) for name in FLAGS},
        "position": f.position,
        "active": bool(f.active),
        "created_at": iso(f.created_at),
        "updated_at": iso(f.updated_at),
    }


def field_payload(session: Session, field_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a custom field: as GET returns it (None: deleted)."""
    field = session.get(CustomField, field_id)
    return field_json(field) if field is not None else None


def _field(field_id: int) -> CustomField:
    field = db.session.get(CustomField, field_id)
    if field is None:
        raise NotFound(_("Custom field not found."))
    return field


_FIELD_OF_CODE = {
    "invalid_key": "key",
    "invalid_type": "type",
    "label_required": "label.en",
    "invalid_options": "options",
    "no_options": "options",
    "not_on_forms": "object",
    "not_visible": "visible_to_customers",
}


@contextmanager
def _definition_errors() -> Iterator[None]:
    """The verbs' refusals of a definition as 422 naming the field (a taken key stays 409)."""
    try:
        yield
    except ServiceError as exc:
        name = _FIELD_OF_CODE.get(exc.code)
        if name is None:
            raise
        raise Invalid({name: str(exc)}) from None


def _label_args(data: dict[str, Any]) -> dict[str, Any]:
    label = data.get("label") or {}
    return {
        name: label[lang]
        for lang, name in (("en", "label_en"), ("bn", "label_bn"))
        if lang in label
    }


def _answer(field: CustomField, status: int) -> Any:
    db.session.flush()
    db.session.refresh(field)
    return commit_response(field_json(field), status)


# --- views ---------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.arguments(FieldQuery, location="query", as_kwargs=True)
@blp.response(200, FieldList)
@errors_doc(blp, 400, 401, 429)
def list_custom_fields(archived: bool, object: str | None = None) -> dict[str, Any]:
    """The fields, by object (ticket, customer, organization) in their order; `archived=true`
    adds the archived ones."""
    if object:
        fields = verbs.fields_for(db.session, object, archived=archived)
    else:
        # By object in one order on both databases (PostgreSQL sorts its enum by declaration).
        fields = sorted(
            verbs.all_fields(db.session, archived=archived),
            key=lambda f: (OBJECTS.index(f.object_type.value), f.position, f.id),
        )
    return {"custom_fields": [field_json(f) for f in fields]}


@blp.route("/<int:field_id>", methods=["GET"])
@blp.response(200, FieldOut)
@errors_doc(blp, 401, 404, 429)
def get_custom_field(field_id: int) -> dict[str, Any]:
    """One field (archived ones too)."""
    return field_json(_field(field_id))


@blp.route("", methods=["POST"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(FieldCreate)
@blp.response(201, FieldOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 409, 422, 429)
@idempotent
def create_custom_field(data: dict[str, Any]) -> Any:
    """Define a field (admin): last in its object's order unless `position` is given. 409
    `key_taken` when the object has a field with the key (archived ones included). A dropdown or
    checkbox field of tickets becomes a queue filter with its own index (`cf.<key>` on
    `GET /api/v1/tickets`). Event `custom_field.created`."""
    with _definition_errors():
        field = verbs.define_field(
            db.session,
            me(),
            object_type=data["object"],
            key=data["key"],
            type=data["type"],
            options=data.get("options"),
            position=data.get("position"),
            label_en=data["label"].get("en", ""),
            label_bn=data["label"].get("bn", ""),
            **{name: data[name] for name in FLAGS if name in data},
        )
    return _answer(field, 201)


@blp.route("/<int:field_id>", methods=["PATCH"])
@requires_scope(TokenScope.ADMIN)
@blp.arguments(FieldPatch)
@blp.response(200, FieldOut)
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
def update_custom_field(changes: dict[str, Any], field_id: int) -> Any:
    """Change labels, options, flags or position, archive (`active: false`) or restore (admin;
    only what is given). `object`, `key` and `type` never change: 422 naming them. Values of a
    removed option stay on their records. Event `custom_field.updated` with `changes`."""
    field = _field(field_id)
    extra: dict[str, Any] = {"options": changes["options"]} if "options" in changes else {}
    with _definition_errors():
        verbs.update_field(
            db.session,
            field,
            me(),
            **_label_args(changes),
            **{name: changes[name] for name in (*FLAGS, "position", "active") if name in changes},
            **extra,
        )
    return _answer(field, 200)


@blp.route("/<int:field_id>", methods=["DELETE"])
@requires_scope(TokenScope.ADMIN)
@blp.response(204)
@errors_doc(blp, 401, 403, 404, 429)
def delete_custom_field(field_id: int) -> Any:
    """Delete a field **and every value of it** on every record (admin); archive it instead
    (`PATCH` `{"active": false}`) to keep the values. Event `custom_field.deleted` with
    `values_removed`."""
    verbs.delete_field(db.session, _field(field_id), me())
    db.session.commit()
    return "", 204
