"""Custom fields on the agent's pages: the values box of the ticket, customer and organization
pages (templates/agent/_custom_fields.html) and reading its form back.

The form names each field's input ``cf-<key>`` and lists the keys it showed in ``cf-shown``: only
those are set, so a field an admin adds while the page is open is not cleared by a save, and an
unticked checkbox (which a browser does not send) is read as False only when it was on the form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, flash, g
from flask_babel import get_locale
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Agent, Customer, CustomField, FieldType, Organization, Ticket
from helpdesk.services import custom_fields
from helpdesk.services.custom_fields import FieldErrors
from helpdesk.web import audit_labels

PREFIX = "cf-"
SHOWN = "cf-shown"


def language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "en"


def posted(fields: Sequence[CustomField], form: MultiDict[str, str]) -> dict[str, Any]:
    """The raw values the agent sent, by key, for the fields the form showed: a multi-select's
    ticked options as a list, a checkbox as True/False, anything else as typed."""
    shown = set(form.get(SHOWN, "").split(","))
    out: dict[str, Any] = {}
    for field in fields:
        if field.key not in shown:
            continue
        name = PREFIX + field.key
        if field.type == FieldType.MULTI_SELECT:
            out[field.key] = [v for v in form.getlist(name) if v]
        elif field.type == FieldType.CHECKBOX:
            out[field.key] = name in form
        else:
            out[field.key] = form.get(name, "")
    return out


def save(
    session: Session,
    obj: Ticket | Customer | Organization,
    fields: Sequence[CustomField],
    form: MultiDict[str, str],
    actor: Agent,
) -> FieldErrors | None:
    """Set the posted values through the one verb; on bad values roll back and flash what is
    wrong (each field named in the reader's language) and return the errors, so the page is
    shown again with what the agent typed."""
    try:
        custom_fields.set_values(
            session, obj, posted(fields, form), actor, fields=fields, strict_keys=False
        )
    except FieldErrors as exc:
        session.rollback()
        flash(str(exc), "error")
        return exc
    return None


def input_value(field: CustomField, value: Any) -> Any:
    """A stored value as its input holds it: machine formats (a date's YYYY-MM-DD, a number's
    digits), not the localized text :func:`custom_fields.display` writes."""
    if value is None:
        return [] if field.type == FieldType.MULTI_SELECT else ""
    if field.type == FieldType.MULTI_SELECT:
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if field.type == FieldType.CHECKBOX:
        return value is True
    return str(value)


def box(
    fields: Sequence[CustomField],
    values: Mapping[str, Any] | None,
    typed: Mapping[str, Any] | None = None,
    errors: FieldErrors | None = None,
) -> dict[str, Any]:
    """What the values box shows: each field with its value as read (``display``, empty ones
    "—" in the template) and what its input holds (the typed text after an error)."""
    values = values or {}
    lang = language()
    rows = []
    for field in fields:
        stored = values.get(field.key)
        held = typed[field.key] if typed is not None and field.key in typed else None
        rows.append(
            {
                "field": field,
                "key": field.key,
                "label": field.label(lang),
                "display": custom_fields.display(field, stored, lang),
                "input": held if held is not None else input_value(field, stored),
                "options": [
                    (str(o["value"]), field.option_label(str(o["value"]), lang))
                    for o in field.options or []
                ],
                "error": errors.fields.get(field.key) if errors is not None else None,
            }
        )
    return {"rows": rows, "shown": ",".join(f.key for f in fields)}


def filter_text(fields: Sequence[CustomField], key: str, value: str) -> tuple[str, str]:
    """A queue filter chip's words: the field's label and the value as read (an option's
    label, Yes/No), or the key and value as given for a field the bar does not offer."""
    lang = language()
    field = next((f for f in fields if f.key == key), None)
    if field is None:
        return key, value
    if field.type == FieldType.CHECKBOX:
        try:
            truth = custom_fields.clean_value(field, value) is True
        except FieldErrors:
            return field.label(lang), value
        return field.label(lang), custom_fields.display(field, truth, lang)
    return field.label(lang), field.option_label(value, lang)


def without(args: Mapping[str, str], key: str) -> dict[str, str]:
    """The queue's arguments less one custom field's filter (a chip's remove link)."""
    return {k: v for k, v in args.items() if k != f"cf.{key}"}


def _ticket_field(key: str) -> CustomField | None:
    """A ticket field by key for history lines (archived ones too): read once per request."""
    if "cf_ticket_fields" not in g:
        every = custom_fields.fields_for(db.session, "ticket", archived=True)
        g.cf_ticket_fields = {f.key: f for f in every}
    found: CustomField | None = g.cf_ticket_fields.get(key)
    return found


def _history(data: Mapping[str, Any]) -> str:
    """A ``ticket.custom`` history line: the field by its label, the values as read (a field
    deleted since: its key and the stored values)."""
    key = str(data.get("key") or "")
    field = _ticket_field(key)
    lang = language()
    before, after = data.get("from"), data.get("to")
    if field is not None:
        name = field.label(lang)
        before = custom_fields.display(field, before, lang)
        after = custom_fields.display(field, after, lang)
    else:
        name = key
        before = "" if before is None else str(before)
        after = "" if after is None else str(after)
    if not after:
        return _("cleared %(field)s", field=name)
    if not before:
        return _("set %(field)s to %(value)s", field=name, value=after)
    return _("changed %(field)s from %(old)s to %(new)s", field=name, old=before, new=after)


def register(bp: Blueprint) -> None:
    """Template helpers of the queue's filter bar and chips, and the history's line."""
    audit_labels.register("ticket.custom", _history)
    bp.add_app_template_global(filter_text, "cf_filter_text")
    bp.add_app_template_global(without, "cf_without")
    bp.add_app_template_global(language, "cf_language")
