"""URL converters shared by every blueprint (set on the app's URL map before any route)."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

# The largest id our columns hold on every database: ids and ticket numbers are INTEGER, 32 bits
# on PostgreSQL (SQLite's are 64).
MAX_ID = 2**31 - 1


class DatabaseId(IntegerConverter):
    """``<int:...>`` bounded to what a database id can be; larger numbers do not match (404)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
