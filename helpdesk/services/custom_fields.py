"""Custom fields: defining them, checking and storing their values, filtering by them.

An admin defines a field for tickets, customers or organizations (:func:`define_field`); its
values live in the object's ``custom`` JSON column by key. Every value goes through
:func:`clean_value` on every path (agent UI, API, portal and pre-chat forms, CSV import), which
returns what is stored or raises :class:`FieldErrors` with a message per key in the reader's
language naming the field by its label in that language.

What is stored, per type: text, long text, URL and date (``YYYY-MM-DD``) as strings, a number
as a JSON number, a dropdown as its option's value, a multi-select as a list of option values
in the options' order, a checkbox as true/false. An empty value clears the field (no key).

A dropdown or checkbox field of tickets is a queue filter: defining it creates an expression
index on (the value, updated_at, id), the shape of the queue's other indexes, so "plan is gold"
at a million tickets is one index range walked in the queue's order (:func:`filter_clause`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    ColumnElement,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import (
    Agent,
    Customer,
    CustomField,
    FieldObject,
    FieldType,
    Organization,
    Ticket,
    TicketStatus,
)
from helpdesk.services import audit, stream
from helpdesk.services.announcements import announce
from helpdesk.services.audit import Actor
from helpdesk.services.errors import Conflict, ServiceError
from helpdesk.services.messages import touch

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_FIELDS = 100  # per object type, archived ones included
MAX_OPTIONS = 500
MAX_OPTION_VALUE = 100
MAX_LABEL = 120
MAX_LENGTH = {FieldType.TEXT: 1000, FieldType.LONG_TEXT: 20_000, FieldType.URL: 2000}
# JSON numbers every client parses exactly (JavaScript's safe integers).
MAX_NUMBER = 2**53 - 1

OBJECT_MODELS: dict[FieldObject, type[Ticket] | type[Customer] | type[Organization]] = {
    FieldObject.TICKET: Ticket,
    FieldObject.CUSTOMER: Customer,
    FieldObject.ORGANIZATION: Organization,
}
_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


class FieldErrors(ServiceError):
    """One or more values are not valid: ``fields`` maps each key to what is wrong with it (in
    the reader's language); ``str(err)`` is all of them in one sentence for a flash message."""

    code = "invalid_custom_field"

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__(" ".join(self.fields.values()))


def _language() -> str:
    from flask_babel import get_locale

    try:
        locale = get_locale()
    except (RuntimeError, AttributeError):  # outside a request or app context
        locale = None
    return locale.language if locale is not None else "en"


# --- definitions ---------------------------------------------------------------------------------


def fields_for(
    session: Session, object_type: FieldObject | str, *, archived: bool = False
) -> list[CustomField]:
    """The fields of one object type in their order (active ones unless ``archived``)."""
    q = select(CustomField).where(CustomField.object_type == FieldObject(object_type))
    if not archived:
        q = q.where(CustomField.active.is_(True))
    return list(session.scalars(q.order_by(CustomField.position, CustomField.id)))


def all_fields(session: Session, *, archived: bool = False) -> list[CustomField]:
    """Every field: tickets', then customers', then organizations', each in its order (sorted
    here: the enum column sorts differently on SQLite and PostgreSQL)."""
    q = select(CustomField)
    if not archived:
        q = q.where(CustomField.active.is_(True))
    order = {kind: i for i, kind in enumerate(FieldObject)}
    return sorted(session.scalars(q), key=lambda f: (order[f.object_type], f.position, f.id))


def clean_key(raw: str | None) -> str:
    key = (raw or "").strip()
    if not KEY.match(key):
        raise ServiceError(
            _(
                "A key is 1 to 40 lower-case letters, digits and underscores, starting with a"
                " letter (e.g. contract_plan)."
            ),
            code="invalid_key",
        )
    return key


def _clean_label(raw: str | None, *, required: bool) -> str:
    label = " ".join((raw or "").split())[:MAX_LABEL]
    if required and not label:
        raise ServiceError(_("A field needs an English label."), code="label_required")
    return label


def clean_options(raw: Any) -> list[dict[str, str]]:
    """Options as given by a form (one per line, ``value | English | Bengali`` or just a
    label) or the API (strings, or ``{"value", "label": {"en", "bn"}}`` / ``{"value", "en",
    "bn"}`` objects): a list of ``{"value", "en", "bn"}`` with distinct values."""
    if raw is None:
        return []
    if isinstance(raw, str):
        items: list[Any] = [line for line in raw.splitlines() if line.strip()]
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        raise ServiceError(_("Options must be a list."), code="invalid_options")
    if len(items) > MAX_OPTIONS:
        raise ServiceError(
            _("A field has at most %(n)d options.", n=MAX_OPTIONS), code="invalid_options"
        )
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            parts = [p.strip() for p in item.split("|")]
            if len(parts) == 1:
                value, en, bn = parts[0], parts[0], ""
            else:
                value, en, bn = parts[0], parts[1] if len(parts) > 1 else "", [*parts, ""][2]
        elif isinstance(item, Mapping):
            label = item.get("label")
            value = str(item.get("value") or "").strip()
            if isinstance(label, Mapping):
                en, bn = str(label.get("en") or ""), str(label.get("bn") or "")
            else:
                en, bn = str(label or item.get("en") or ""), str(item.get("bn") or "")
        else:
            raise ServiceError(_("Options must be a list."), code="invalid_options")
        value = " ".join(value.split())[:MAX_OPTION_VALUE]
        en = " ".join(en.split())[:MAX_LABEL] or value
        bn = " ".join(bn.split())[:MAX_LABEL]
        if not value:
            raise ServiceError(_("An option needs a value."), code="invalid_options")
        if value in seen:
            raise ServiceError(
                _("The option %(value)s appears twice.", value=value), code="invalid_options"
            )
        seen.add(value)
        out.append({"value": value, "en": en, "bn": bn})
    return out


def _state(field: CustomField) -> dict[str, Any]:
    return {
        "label_en": field.label_en,
        "label_bn": field.label_bn,
        "options": list(field.options or []),
        "required_on_resolve": field.required_on_resolve,
        "visible_to_customers": field.visible_to_customers,
        "on_portal_form": field.on_portal_form,
        "on_prechat_form": field.on_prechat_form,
        "required_on_forms": field.required_on_forms,
        "position": field.position,
        "active": field.active,
    }


def _check_flags(field: CustomField) -> None:
    if field.type.has_options and not field.options:
        raise ServiceError(_("A dropdown or multi-select field needs options."), code="no_options")
    if not field.type.has_options and field.options:
        field.options = []
    if field.object_type != FieldObject.TICKET:
        field.required_on_resolve = False
    if field.on_portal_form or field.on_prechat_form:
        if field.object_type == FieldObject.ORGANIZATION:
            raise ServiceError(
                _("Organization fields cannot be asked on the customers' forms."),
                code="not_on_forms",
            )
        if not field.visible_to_customers:
            raise ServiceError(
                _("A field asked on the customers' forms must be visible to customers."),
                code="not_visible",
            )
    else:
        field.required_on_forms = False


def define_field(
    session: Session,
    actor: Agent | None,
    *,
    object_type: FieldObject | str,
    key: str,
    type: FieldType | str,
    label_en: str,
    label_bn: str = "",
    options: Any = None,
    required_on_resolve: bool = False,
    visible_to_customers: bool = False,
    on_portal_form: bool = False,
    on_prechat_form: bool = False,
    required_on_forms: bool = False,
    position: int | None = None,
) -> CustomField:
    """A new field, last in its object's order unless ``position`` says otherwise."""
    try:
        object_type = FieldObject(object_type)
        field_type = FieldType(type)
    except ValueError as exc:
        raise ServiceError(str(exc), code="invalid_type") from None
    key = clean_key(key)
    if session.scalar(
        select(CustomField.id).where(CustomField.object_type == object_type, CustomField.key == key)
    ):
        raise Conflict(_("A field with the key %(key)s exists already.", key=key), code="key_taken")
    count, last = session.execute(
        select(func.count(), func.max(CustomField.position)).where(
            CustomField.object_type == object_type
        )
    ).one()
    if count >= MAX_FIELDS:
        raise ServiceError(
            _("At most %(n)d fields per kind of record.", n=MAX_FIELDS), code="too_many_fields"
        )
    field = CustomField(
        object_type=object_type,
        key=key,
        type=field_type,
        label_en=_clean_label(label_en, required=True),
        label_bn=_clean_label(label_bn, required=False),
        options=clean_options(options) if field_type.has_options else [],
        required_on_resolve=bool(required_on_resolve),
        visible_to_customers=bool(visible_to_customers),
        on_portal_form=bool(on_portal_form),
        on_prechat_form=bool(on_prechat_form),
        required_on_forms=bool(required_on_forms),
        position=int(position) if position is not None else (last or 0) + 1,
        active=True,
    )
    _check_flags(field)
    session.add(field)
    session.flush()
    ensure_index(session, field)
    stream.record(
        session,
        "custom_field.created",
        "custom_field",
        field.id,
        actor,
        object=object_type.value,
        key=key,
        type=field_type.value,
    )
    return field


_UNSET: Any = object()


def update_field(
    session: Session,
    field: CustomField,
    actor: Agent | None,
    *,
    label_en: str | None = None,
    label_bn: str | None = None,
    options: Any = _UNSET,
    required_on_resolve: bool | None = None,
    visible_to_customers: bool | None = None,
    on_portal_form: bool | None = None,
    on_prechat_form: bool | None = None,
    required_on_forms: bool | None = None,
    position: int | None = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Change what is given (the object, key and type never change: they are in stored values
    and integrations). Values of a removed option stay on their records, shown as stored.
    Returns the changes recorded in ``custom_field.updated``."""
    before = _state(field)
    if label_en is not None:
        field.label_en = _clean_label(label_en, required=True)
    if label_bn is not None:
        field.label_bn = _clean_label(label_bn, required=False)
    if options is not _UNSET and field.type.has_options:
        field.options = clean_options(options)
    for name, value in (
        ("required_on_resolve", required_on_resolve),
        ("visible_to_customers", visible_to_customers),
        ("on_portal_form", on_portal_form),
        ("on_prechat_form", on_prechat_form),
        ("required_on_forms", required_on_forms),
        ("active", active),
    ):
        if value is not None:
            setattr(field, name, bool(value))
    if position is not None:
        field.position = int(position)
    _check_flags(field)
    after = _state(field)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changes:
        session.flush()
        stream.record(
            session,
            "custom_field.updated",
            "custom_field",
            field.id,
            actor,
            object=field.object_type.value,
            key=field.key,
            changes=changes,
        )
    return changes


def move_field(session: Session, field: CustomField, actor: Agent | None, step: int) -> None:
    """Move a field one place up (-1) or down (+1) among its object's fields."""
    siblings = fields_for(session, field.object_type, archived=True)
    index = next(i for i, f in enumerate(siblings) if f.id == field.id)
    other = index + (1 if step > 0 else -1)
    if not 0 <= other < len(siblings):
        return
    siblings[index], siblings[other] = siblings[other], siblings[index]
    for position, each in enumerate(siblings, start=1):
        if each.position != position:
            update_field(session, each, actor, position=position)


def delete_field(session: Session, field: CustomField, actor: Agent | None) -> int:
    """Remove a field and every value of it (archive it instead to keep them); returns how many
    records lost a value. The index goes with it."""
    model = OBJECT_MODELS[field.object_type]
    column = model.__table__.c.custom
    holders = list(
        session.execute(
            select(model.__table__.c.id, column).where(has_value(session, column, field.key))
        )
    )
    for row_id, values in holders:
        rest = {k: v for k, v in (values or {}).items() if k != field.key}
        session.execute(
            update(model)
            .where(model.id == row_id)
            .values(custom=rest or None)
            .execution_options(synchronize_session=False)
        )
    # Records this session holds read their values afresh (the UPDATEs above bypassed them).
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj, ["custom"])
    drop_index(session, field)
    stream.record(
        session,
        "custom_field.deleted",
        "custom_field",
        field.id,
        actor,
        object=field.object_type.value,
        key=field.key,
        values_removed=len(holders),
    )
    session.delete(field)
    session.flush()
    return len(holders)


# --- values --------------------------------------------------------------------------------------


def _error(field: CustomField, message: str) -> FieldErrors:
    return FieldErrors({field.key: message})


def clean_value(field: CustomField, raw: Any) -> Any:
    """What to store for ``raw`` (None: clear the field), or FieldErrors naming the field."""
    label = field.label(_language())
    if raw is None or raw == "" or raw == [] or (isinstance(raw, str) and not raw.strip()):
        return False if field.type == FieldType.CHECKBOX and raw is not None else None
    kind = field.type
    if kind in (FieldType.TEXT, FieldType.LONG_TEXT, FieldType.URL):
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise _error(field, _("%(field)s must be text.", field=label))
        value = str(raw).strip() if kind != FieldType.LONG_TEXT else str(raw).strip("\n ")
        if kind == FieldType.TEXT:
            value = " ".join(value.split())
        limit = MAX_LENGTH[kind]
        if len(value) > limit:
            raise _error(
                field, _("%(field)s is longer than %(n)d characters.", field=label, n=limit)
            )
        if kind == FieldType.URL:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
                raise _error(
                    field,
                    _("%(field)s must be a web address starting with https://.", field=label),
                )
        return value
    if kind == FieldType.NUMBER:
        if isinstance(raw, bool):
            raise _error(field, _("%(field)s must be a number.", field=label))
        try:
            number = Decimal(str(raw).strip().replace(",", "")) if isinstance(raw, str) else raw
            number = Decimal(str(number))
        except (InvalidOperation, ValueError):
            raise _error(field, _("%(field)s must be a number.", field=label)) from None
        if not number.is_finite() or abs(number) > MAX_NUMBER:
            raise _error(field, _("%(field)s must be a number.", field=label))
        if number == number.to_integral_value():
            return int(number)
        as_float = float(number)
        if math.isinf(as_float):
            raise _error(field, _("%(field)s must be a number.", field=label))
        return as_float
    if kind == FieldType.DATE:
        try:
            day = raw if isinstance(raw, date) else date.fromisoformat(str(raw).strip()[:10])
            if not isinstance(raw, date) and len(str(raw).strip()) != 10:
                raise ValueError
        except ValueError:
            raise _error(field, _("%(field)s must be a date (YYYY-MM-DD).", field=label)) from None
        return day.isoformat()
    if kind == FieldType.CHECKBOX:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _error(field, _("%(field)s must be yes or no.", field=label))
    allowed = field.option_values
    if kind == FieldType.DROPDOWN:
        if not isinstance(raw, (str, int)) or isinstance(raw, bool) or str(raw) not in allowed:
            raise _error(
                field,
                _("%(value)s is not an option of %(field)s.", value=str(raw)[:100], field=label),
            )
        return str(raw)
    # multi-select: a list, or one string of values separated by commas (CSV cells)
    items = [s.strip() for s in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise _error(field, _("%(field)s must be a list of options.", field=label))
    chosen = {i for i in items if i}
    wrong = sorted(chosen - set(allowed))
    if wrong:
        raise _error(
            field,
            _(
                "%(value)s is not an option of %(field)s.",
                value=", ".join(wrong)[:100],
                field=label,
            ),
        )
    return [v for v in allowed if v in chosen] or None


def clean_values(
    fields: Sequence[CustomField], raw: Mapping[str, Any], *, strict_keys: bool = True
) -> dict[str, Any]:
    """``raw``'s values by key, cleaned (None: clear); every error at once. An unknown or
    archived key is an error when ``strict_keys`` (the API), ignored otherwise (forms)."""
    by_key = {f.key: f for f in fields}
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        field = by_key.get(key)
        if field is None or not field.active:
            if strict_keys:
                errors[key] = _("There is no field %(key)s.", key=str(key)[:50])
            continue
        try:
            out[key] = clean_value(field, value)
        except FieldErrors as exc:
            errors.update(exc.fields)
    if errors:
        raise FieldErrors(errors)
    return out


def is_empty(field: CustomField, value: Any) -> bool:
    """No answer: nothing stored, or a required checkbox left unticked ("I have read the
    terms" is answered by ticking it)."""
    if field.type == FieldType.CHECKBOX:
        return value is not True
    return value is None or value == "" or value == []


def require(fields: Iterable[CustomField], values: Mapping[str, Any]) -> None:
    """Each of ``fields`` must have a value (a form's required fields); FieldErrors otherwise."""
    language = _language()
    errors = {
        f.key: _("%(field)s is required.", field=f.label(language))
        for f in fields
        if is_empty(f, values.get(f.key))
    }
    if errors:
        raise FieldErrors(errors)


def _merged(current: Mapping[str, Any] | None, cleaned: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(current or {})
    for key, value in cleaned.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def set_values(
    session: Session,
    obj: Ticket | Customer | Organization,
    raw: Mapping[str, Any],
    actor: Actor,
    *,
    fields: Sequence[CustomField] | None = None,
    strict_keys: bool = True,
) -> dict[str, dict[str, Any]]:
    """Set (or clear, with None) custom values of a ticket, customer or organization; returns
    the changes, ``{"custom.<key>": {"from", "to"}}``, which go into the object's
    ``*.updated`` event (and the ticket's history)."""
    object_type = _object_type(obj)
    if fields is None:
        fields = fields_for(session, object_type)
    cleaned = clean_values(fields, raw, strict_keys=strict_keys)
    before = dict(obj.custom or {})
    after = _merged(before, cleaned)
    changes = {
        f"custom.{key}": {"from": before.get(key), "to": after.get(key)}
        for key in cleaned
        if before.get(key) != after.get(key)
    }
    if not changes:
        return {}
    obj.custom = after or None  # a new dict: the JSON column sees the change
    if isinstance(obj, Ticket):
        touch(obj)
        for name, change in changes.items():
            audit.record(
                session,
                obj,
                actor,
                "ticket.custom",
                key=name.removeprefix("custom."),
                **{"from": change["from"], "to": change["to"]},
            )
            stream.ticket_changed(session, obj.id, actor, name, change["from"], change["to"])
        announce(session, obj)
    else:
        session.flush()
        name = "customer.updated" if isinstance(obj, Customer) else "organization.updated"
        stream.record(session, name, object_type.value, obj.id, actor, changes=changes)
    return changes


def initial_values(
    fields: Sequence[CustomField], raw: Mapping[str, Any], *, strict_keys: bool = False
) -> dict[str, Any] | None:
    """Cleaned values for a record being created (a form's answers): the dict to store as its
    ``custom``, None when there are none."""
    return _merged({}, clean_values(fields, raw, strict_keys=strict_keys)) or None


def _object_type(obj: object) -> FieldObject:
    if isinstance(obj, Ticket):
        return FieldObject.TICKET
    if isinstance(obj, Customer):
        return FieldObject.CUSTOMER
    return FieldObject.ORGANIZATION


# --- resolving -----------------------------------------------------------------------------------


def missing_for_resolve(session: Session, ticket: Ticket) -> list[CustomField]:
    """The ticket's fields required on resolve that it has no value for."""
    required = session.scalars(
        select(CustomField)
        .where(
            CustomField.object_type == FieldObject.TICKET,
            CustomField.active.is_(True),
            CustomField.required_on_resolve.is_(True),
        )
        .order_by(CustomField.position, CustomField.id)
    )
    values = ticket.custom or {}
    return [f for f in required if is_empty(f, values.get(f.key))]


def check_resolvable(session: Session, ticket: Ticket, status: TicketStatus, actor: Actor) -> None:
    """An agent resolving (or closing) a ticket must first fill its required fields. Customers
    ("this solved my problem"), automation and merges are not held up."""
    if status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return
    if not isinstance(actor, Agent) or not ticket.status.active:
        return
    missing = missing_for_resolve(session, ticket)
    if missing:
        language = _language()
        raise FieldErrors(
            {
                f.key: _(
                    "%(field)s must be filled in before the ticket is resolved.",
                    field=f.label(language),
                )
                for f in missing
            }
        )


# --- showing -------------------------------------------------------------------------------------


def display(field: CustomField, value: Any, language: str | None = None) -> str:
    """A stored value as a person reads it: option labels, yes/no, the date and number in the
    reader's locale."""
    from helpdesk.i18n import format_date, format_number

    if value is None or value == [] or value == "":
        return ""
    language = language or _language()
    if field.type == FieldType.CHECKBOX:
        return _("Yes") if value is True else _("No")
    if field.type == FieldType.DROPDOWN:
        return field.option_label(str(value), language)
    if field.type == FieldType.MULTI_SELECT and isinstance(value, list):
        return ", ".join(field.option_label(str(v), language) for v in value)
    if field.type == FieldType.NUMBER and isinstance(value, (int, float)):
        return format_number(value)
    if field.type == FieldType.DATE:
        try:
            return format_date(date.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    return str(value)


def export_value(field: CustomField, value: Any) -> str:
    """A stored value in a CSV cell: machine-readable (option values, ISO dates, true/false), so
    the file imports back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- querying ------------------------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def value_expr(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """The SQL of ``column``'s value at ``key``, written exactly as the expression index is
    (the path a literal, not a parameter: only then does SQLite's planner match the index)."""
    if not KEY.match(key):
        raise ServiceError(_("There is no field %(key)s.", key=key[:50]))
    if dialect == "postgresql":
        return column.op("->>")(literal_column(f"'{key}'"))
    return func.json_extract(column, literal_column(f"'$.{key}'"))


def has_value(session: Session, column: Any, key: str) -> ColumnElement[bool]:
    return value_expr(_dialect(session), column, key).is_not(None)


def filter_clause(
    session: Session, field: CustomField, value: Any, column: Any = None
) -> ColumnElement[bool]:
    """``WHERE`` the record's ``field`` is ``value``: a dropdown's option, a checkbox's
    true/false (false matches never set), one option of a multi-select, or any other type's
    exact stored value."""
    dialect = _dialect(session)
    model = OBJECT_MODELS[field.object_type]
    column = column if column is not None else model.__table__.c.custom
    expr = value_expr(dialect, column, field.key)
    if field.type == FieldType.CHECKBOX:
        truth = clean_value(field, value) is True
        stored: Any = ("true" if truth else "false") if dialect == "postgresql" else int(truth)
        if truth:
            return expr == literal(stored)
        return or_(expr == literal(stored), expr.is_(None))
    if field.type == FieldType.MULTI_SELECT:
        option = clean_value(field, [value])[0] if value not in (None, "") else None
        if option is None:
            raise _error(field, _("%(field)s must be a list of options.", field=field.label_en))
        if dialect == "postgresql":
            import json

            held = cast(column.op("->")(literal_column(f"'{field.key}'")), JSONB)
            return held.op("@>")(cast(literal(json.dumps([option])), JSONB))
        each = func.json_each(column, literal_column(f"'$.{field.key}'")).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(each.c.value == option))
    cleaned = clean_value(field, value)
    if cleaned is None:
        return expr.is_(None)
    if field.type == FieldType.NUMBER and dialect == "postgresql":
        return expr == literal(str(cleaned))
    return expr == literal(cleaned)


def index_name(field: CustomField) -> str:
    return f"ix_tickets_cf_{field.key}"


def ensure_index(session: Session, field: CustomField) -> bool:
    """Create the queue's index for a filterable ticket field (if it should have one); True if
    it did. DDL in the admin's transaction: on PostgreSQL it holds writes to tickets while the
    index builds (seconds at a million tickets), and goes if the transaction rolls back."""
    if field.object_type != FieldObject.TICKET or not field.type.indexed:
        return False
    dialect = _dialect(session)
    if dialect == "postgresql":
        expr = f"(custom ->> '{field.key}')"
    else:
        expr = f"json_extract(custom, '$.{field.key}')"
    session.execute(
        text(f"CREATE INDEX IF NOT EXISTS {index_name(field)} ON tickets ({expr}, updated_at, id)")
    )
    return True


def drop_index(session: Session, field: CustomField) -> None:
    if field.object_type == FieldObject.TICKET and field.type.indexed:
        session.execute(text(f"DROP INDEX IF EXISTS {index_name(field)}"))
