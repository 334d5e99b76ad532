"""The custom fields a customer's form asks: the portal's contact form and the chat's pre-chat
form. One rule for both channels: which fields appear, and checking the answers before anything
is stored, so every error comes back beside its field instead of as one refusal of the whole
form.

A form asks the active, customer-visible ticket fields and customer fields with the form's flag
(``on_portal_form`` / ``on_prechat_form``), ticket fields first, each kind in its order. Answers
come in two groups named like :class:`~helpdesk.inbound.InboundMessage`'s: ``custom`` (for the
new ticket) and ``customer_custom`` (for the sender's customer record); a field is named
``<group>.<key>`` in forms, payloads and errors, so a ticket field and a customer field may share
a key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Customer, CustomField, FieldObject
from helpdesk.services.custom_fields import FieldErrors, clean_value, require

Form = Literal["portal", "prechat"]
TICKET_GROUP = "custom"
CUSTOMER_GROUP = "customer_custom"


@dataclass(frozen=True)
class FormField:
    """One field as a form asks it: ``group`` says which record the answer goes to."""

    group: str
    field: CustomField

    @property
    def name(self) -> str:
        return f"{self.group}.{self.field.key}"


@dataclass
class Answers:
    """Cleaned answers, ready for ``InboundMessage.custom`` / ``.customer_custom``."""

    custom: dict[str, Any] = field(default_factory=dict)
    customer_custom: dict[str, Any] = field(default_factory=dict)


def form_fields(session: Session, form: Form) -> list[FormField]:
    """The fields ``form`` asks, in the order it shows them. Agent-only fields never appear.
    One small query: the chat asks it on every connection (``chat.hello``)."""
    asked = CustomField.on_portal_form if form == "portal" else CustomField.on_prechat_form
    rows = session.scalars(
        select(CustomField)
        .where(
            CustomField.active.is_(True),
            CustomField.visible_to_customers.is_(True),
            asked.is_(True),
            CustomField.object_type.in_((FieldObject.TICKET, FieldObject.CUSTOMER)),
        )
        .order_by(CustomField.position, CustomField.id)
    )
    tickets, customers = [], []
    for f in rows:
        if f.object_type == FieldObject.TICKET:
            tickets.append(FormField(TICKET_GROUP, f))
        else:
            customers.append(FormField(CUSTOMER_GROUP, f))
    return tickets + customers


def check_answers(
    fields: Sequence[FormField],
    raw: Mapping[str, Mapping[str, Any] | None],
    customer: Customer | None = None,
    *,
    verified: bool = False,
) -> Answers:
    """Clean ``raw`` (``{"custom": {key: value}, "customer_custom": {...}}``) against the form's
    ``fields`` and require the required ones; :class:`FieldErrors` keyed by ``<group>.<key>``
    with every error at once.

    Keys the form does not ask (an agent-only field in a forged post) are ignored. An empty
    answer never clears what a customer record holds, and a sender who has not shown they are
    ``customer`` (signed in, or the same chat visitor) only fills that record's empty fields:
    anyone can type someone else's email address into a form."""
    answers = Answers()
    errors: dict[str, str] = {}
    for group, out in ((TICKET_GROUP, answers.custom), (CUSTOMER_GROUP, answers.customer_custom)):
        given = raw.get(group) or {}
        for f in (each.field for each in fields if each.group == group):
            try:
                value = clean_value(f, given.get(f.key))
                if f.required_on_forms:
                    require([f], {f.key: value})
            except FieldErrors as exc:
                errors.update({f"{group}.{key}": message for key, message in exc.fields.items()})
                continue
            if value is not None:
                out[f.key] = value
    if errors:
        raise FieldErrors(errors)
    if customer is not None and not verified:
        held = customer.custom or {}
        answers.customer_custom = {
            k: v for k, v in answers.customer_custom.items() if held.get(k) in (None, "", [])
        }
    return answers
