"""Custom fields: typed fields an admin defines for tickets, customers or organizations.

A definition lives here; the values live on the object itself, in its ``custom`` JSON column
(``{"plan": "gold", "seats": 12}``), so reading a ticket never joins another table and the API's
``custom`` is that column. A queue filter on a dropdown or checkbox field of tickets walks an
expression index the service creates with the field (services/custom_fields.py), shaped like
the queue's other indexes: (value, updated_at, id).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.models._types import str_enum


class FieldObject(enum.StrEnum):
    """What a field belongs to."""

    TICKET = "ticket"
    CUSTOMER = "customer"
    ORGANIZATION = "organization"


class FieldType(enum.StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    NUMBER = "number"
    DATE = "date"
    DROPDOWN = "dropdown"
    MULTI_SELECT = "multi_select"
    CHECKBOX = "checkbox"
    URL = "url"

    @property
    def has_options(self) -> bool:
        return self in (FieldType.DROPDOWN, FieldType.MULTI_SELECT)

    @property
    def indexed(self) -> bool:
        """A ticket field of this type is a queue filter through its own index."""
        return self in (FieldType.DROPDOWN, FieldType.CHECKBOX)


class CustomField(Base):
    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("object_type", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[FieldObject] = mapped_column(str_enum(FieldObject, "field_object"))
    # The name in the API, CSV headers and the JSON column: [a-z][a-z0-9_]*, never changes.
    key: Mapped[str] = mapped_column(String(40))
    type: Mapped[FieldType] = mapped_column(str_enum(FieldType, "field_type"))
    label_en: Mapped[str] = mapped_column(String(120))
    label_bn: Mapped[str] = mapped_column(String(120), default="")
    # Dropdown and multi-select: [{"value": "gold", "en": "Gold", "bn": "সোনা"}, ...] in order.
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Tickets: an agent cannot resolve the ticket while this field is empty.
    required_on_resolve: Mapped[bool] = mapped_column(default=False)
    # Shown to the customer (portal) or to agents only.
    visible_to_customers: Mapped[bool] = mapped_column(default=False)
    # Asked on the portal's contact form and the chat's pre-chat form (customer-visible
    # ticket and customer fields), then required there when ``required_on_forms``.
    on_portal_form: Mapped[bool] = mapped_column(default=False)
    on_prechat_form: Mapped[bool] = mapped_column(default=False)
    required_on_forms: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)
    # An archived field is hidden everywhere and refuses new values; its values are kept.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def label(self, language: str | None) -> str:
        """The label in ``language`` (Bengali falls back to English while it has none)."""
        if language == "bn" and self.label_bn:
            return self.label_bn
        return self.label_en

    def option_label(self, value: str, language: str | None) -> str:
        for option in self.options or []:
            if option.get("value") == value:
                if language == "bn" and option.get("bn"):
                    return str(option["bn"])
                return str(option.get("en") or value)
        return value

    @property
    def option_values(self) -> list[str]:
        return [str(o["value"]) for o in self.options or []]
