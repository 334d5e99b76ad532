"""Helpers the resources share: error responses in the document, field errors raised from a
view (422 with ``fields``), keyset pages over a table's id."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from helpdesk.api import pagination
from helpdesk.api.errors import ErrorSchema, validation_fields
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.services.errors import Conflict, ServiceError


def errors_doc(blp: Blueprint, *codes: int) -> Callable[[Any], Any]:
    """Document the error responses a view may give (all in the one error shape)."""

    def deco(view: Any) -> Any:
        for code in sorted(set(codes)):
            view = blp.alt_response(code, schema=ErrorSchema, description="An error")(view)
        return view

    return deco


class Invalid(ServiceError):
    """A 422 naming the fields that cannot be used (e.g. an unknown id)."""

    code = "invalid"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(_("Some fields are not valid."))
        self.fields = fields


class FieldRefused(ServiceError):
    """A service's refusal of what was sent, its code kept, as a 422 naming the field."""

    def __init__(self, exc: ServiceError, field: str) -> None:
        super().__init__(str(exc), code=exc.code)
        self.fields = {field: str(exc)}


@contextmanager
def refusals(field_of_code: Mapping[str, str]) -> Iterator[None]:
    """The verbs' refusals as a 422 naming the field their code belongs to (``field_of_code``);
    others (a taken name's 409 among them) as they are. Nothing half-made stays in the
    session."""
    try:
        yield
    except ServiceError as exc:
        db.session.rollback()
        field = field_of_code.get(exc.code) if not isinstance(exc, Conflict) else None
        if field is None:
            raise
        raise FieldRefused(exc, field) from None


def parse_time(value: Any, name: str) -> datetime | None:
    """A field's ISO 8601 time (UTC), which must carry its offset (422 naming ``name`` if not);
    None stays None."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except (OverflowError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Invalid({name: _("An ISO 8601 time with an offset, like 2026-12-08T09:00:00+06:00.")})
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Invalid(
            {name: _("An ISO 8601 time with an offset, like 2026-12-08T09:00:00+06:00.")}
        ) from None


def load(schema: ma.Schema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return dict(schema.load(data))
    except ma.ValidationError as exc:
        raise Invalid(validation_fields(exc.messages)) from None


def id_page(
    q: Select[Any], column: InstrumentedAttribute[int], kind: str, cursor: str | None, limit: int
) -> Select[Any]:
    """Newest first by id, after ``cursor``; ``limit + 1`` rows (the extra one says there is a
    next page)."""
    if cursor:
        values = pagination.decode(cursor, kind)
        if len(values) != 1 or not isinstance(values[0], int) or not 0 < values[0] < 2**31:
            raise ServiceError(_("Invalid page cursor."), code="invalid_cursor")
        q = q.where(column < values[0])
    return q.order_by(column.desc()).limit(limit + 1)


def next_cursor(rows: list[Any], kind: str, limit: int) -> str | None:
    return pagination.encode(kind, [rows[limit - 1].id]) if len(rows) > limit else None
