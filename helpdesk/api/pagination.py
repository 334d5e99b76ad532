"""Cursor pagination: ``limit`` (default 25, at most 100), an opaque ``cursor``, and
``next_cursor`` (null on the last page). Keyset, never OFFSET: a cursor holds the sort key of
the last row returned, so a page costs the same at ticket one and at ticket one million, and
tickets created while a client walks the list never shift it (newest-first sorts put them
before the cursor; the walk sees each older ticket exactly once).

A full-text search (``q``) is ranked, not ordered by a column: its cursor holds the next
result page of the search service (which ranks at most its newest 1,000 matches).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Select, tuple_

from helpdesk.i18n import _
from helpdesk.models import Ticket
from helpdesk.services.errors import ServiceError


def encode(kind: str, values: list[Any]) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, kind: str) -> list[Any]:
    """The values of a cursor made by :func:`encode` for the same ``kind`` (a sort, or a
    search); anything else is a 400 ``invalid_cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or not values or values[0] != kind:
        raise ServiceError(_("Invalid page cursor."), code="invalid_cursor")
    return values[1:]


def _int(value: Any) -> int:
    number = int(value)
    if not 0 <= number < 2**31:  # what an id or a priority column holds
        raise ValueError("out of range")
    return number


def _dt(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("naive")
    return parsed


def apply_sort(q: Select[Any], sort: str, cursor: list[Any] | None) -> Select[Any]:
    try:
        if sort == "created":
            if cursor:
                q = q.where(Ticket.id < _int(cursor[0]))
            return q.order_by(Ticket.id.desc())
        if sort == "oldest":
            if cursor:
                q = q.where(
                    tuple_(Ticket.updated_at, Ticket.id) > (_dt(cursor[0]), _int(cursor[1]))
                )
            return q.order_by(Ticket.updated_at.asc(), Ticket.id.asc())
        if sort == "priority":
            if cursor:
                key = (_int(cursor[0]), _dt(cursor[1]), _int(cursor[2]))
                q = q.where(tuple_(Ticket.priority, Ticket.updated_at, Ticket.id) < key)
            return q.order_by(Ticket.priority.desc(), Ticket.updated_at.desc(), Ticket.id.desc())
        if cursor:
            q = q.where(tuple_(Ticket.updated_at, Ticket.id) < (_dt(cursor[0]), _int(cursor[1])))
        return q.order_by(Ticket.updated_at.desc(), Ticket.id.desc())
    except (IndexError, TypeError, ValueError, OverflowError):
        raise ServiceError(_("Invalid page cursor."), code="invalid_cursor") from None


def cursor_after(ticket: Ticket, sort: str) -> str:
    if sort == "created":
        return encode(sort, [ticket.id])
    if sort == "priority":
        return encode(sort, [ticket.priority, ticket.updated_at.isoformat(), ticket.id])
    return encode(sort, [ticket.updated_at.isoformat(), ticket.id])
