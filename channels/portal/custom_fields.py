"""Custom fields on the portal: the contact form's extra inputs (which ones and the checking of
answers: ``helpdesk.services.customer_forms``) and a ticket's customer-visible values.

An input is named ``<group>.<key>`` (``custom.product``, ``customer_custom.tier``); a
multi-select is a group of checkboxes sharing that name, a checkbox sends ``y`` when ticked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from helpdesk.models import Customer, CustomField, FieldObject, FieldType, Ticket
from helpdesk.services.custom_fields import display, fields_for
from helpdesk.services.customer_forms import CUSTOMER_GROUP, FormField


def read_answers(fields: Sequence[FormField], form: MultiDict[str, Any]) -> dict[str, Any]:
    """The posted answers as typed, by input name (what the form shows again on an error)."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.field.type == FieldType.MULTI_SELECT:
            out[f.name] = form.getlist(f.name)
        elif f.field.type == FieldType.CHECKBOX:
            out[f.name] = "y" if form.get(f.name) else None
        else:
            out[f.name] = form.get(f.name)
    return out


def grouped(fields: Sequence[FormField], answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"custom": {key: answer}, "customer_custom": {...}}`` for ``check_answers``."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields:
        if f.name in answers:
            out.setdefault(f.group, {})[f.field.key] = answers[f.name]
    return out


def prefilled(fields: Sequence[FormField], customer: Customer | None) -> dict[str, Any]:
    """A signed-in customer's own values for the form's customer fields, as inputs show them."""
    held = (customer.custom or {}) if customer is not None else {}
    out: dict[str, Any] = {}
    for f in fields:
        value = held.get(f.field.key) if f.group == CUSTOMER_GROUP else None
        if value is None:
            continue
        if f.field.type == FieldType.CHECKBOX:
            out[f.name] = "y" if value is True else None
        elif isinstance(value, list):
            out[f.name] = [str(v) for v in value]
        else:
            out[f.name] = str(value)
    return out


def visible_values(session: Session, ticket: Ticket, language: str) -> list[tuple[str, str]]:
    """(label, value) of the ticket's customer-visible fields that hold a value; agent-only
    fields never leave the agents' side."""
    held = ticket.custom or {}
    if not held:
        return []
    out: list[tuple[str, str]] = []
    field: CustomField
    for field in fields_for(session, FieldObject.TICKET):
        if not field.visible_to_customers or field.key not in held:
            continue
        shown = display(field, held[field.key], language)
        if shown:
            out.append((field.label(language), shown))
    return out
