"""The ticket search index: one row per ticket, written in the same transaction as the ticket.

Its shape differs per database, so it is created with DDL rather than declared as a ``Table``:

* SQLite: an FTS5 virtual table ``ticket_search(number, subject, people, body)`` whose rowid is
  the ticket id. It holds *analyzed* terms (stemmed, stopwords removed, NFC) separated by
  spaces, so its own tokenizer must only split on spaces: the ``ascii`` tokenizer treats every
  non-ASCII code point as part of a word (Bengali vowel signs, virama, ZWJ/ZWNJ stay inside
  the word, where ``unicode61`` would split ``গ্রাহক`` apart) and ``_`` is made a word character
  because the analyzer keeps connector punctuation in words.
* PostgreSQL: ``ticket_search(ticket_id PK -> tickets ON DELETE CASCADE, document tsvector)``
  with a GIN index. The tsvector is built from the same analyzed terms as a literal with
  positions and weights (no text search configuration touches it), so both databases match
  exactly the same words.

Alembic autogenerate does not see this table: the migration that introduces it runs
:data:`SQLITE_DDL` / :data:`POSTGRESQL_DDL` (``op.execute``), and ``include_object`` in the
migration environment must skip the names in :func:`is_search_table`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, inspect, text

from helpdesk.db import Base

TABLE = "ticket_search"
# What the index was written with (``analyzer``: the text analysis's version), so an upgrade that
# changes the analysis rebuilds it (``helpdesk init``). Created with the index, outside Alembic.
META = "ticket_search_meta"
_META_DDL = (
    f"CREATE TABLE IF NOT EXISTS {META} (name VARCHAR(64) PRIMARY KEY, value VARCHAR(200) NOT NULL)"
)

SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
    "number, subject, people, body, tokenize = \"ascii tokenchars '_'\")",
    _META_DDL,
)
POSTGRESQL_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " ticket_id INTEGER PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,"
    " document TSVECTOR NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_document ON {TABLE} USING gin (document)",
    _META_DDL,
)

# FTS5 keeps its data in shadow tables named after the virtual table.
_FTS5_SHADOWS = ("data", "idx", "content", "docsize", "config")


def is_search_table(name: str) -> bool:
    """True for the index table and SQLite's FTS5 shadow tables (for migration filters)."""
    return name in (TABLE, META) or name in {f"{TABLE}_{s}" for s in _FTS5_SHADOWS}


def ddl_for(dialect: str) -> tuple[str, ...]:
    return SQLITE_DDL if dialect == "sqlite" else POSTGRESQL_DDL


def create_search_schema(connection: Connection) -> None:
    """Create the index table if it is missing (idempotent)."""
    for statement in ddl_for(connection.dialect.name):
        connection.exec_driver_sql(statement)


def drop_search_schema(connection: Connection) -> None:
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {META}")


def read_meta(connection: Connection, name: str) -> str | None:
    """A value recorded with the index; ``None`` if never recorded (or an index from before
    the record existed)."""
    if not inspect(connection).has_table(META):
        return None
    value = connection.execute(
        text(f"SELECT value FROM {META} WHERE name = :name"), {"name": name}  # noqa: S608
    ).scalar()
    return None if value is None else str(value)


def write_meta(connection: Connection, name: str, value: str) -> None:
    connection.exec_driver_sql(_META_DDL)
    connection.execute(text(f"DELETE FROM {META} WHERE name = :name"), {"name": name})  # noqa: S608
    connection.execute(
        text(f"INSERT INTO {META} (name, value) VALUES (:name, :value)"),  # noqa: S608
        {"name": name, "value": value},
    )


def search_schema_exists(connection: Connection) -> bool:
    return bool(inspect(connection).has_table(TABLE))


def _after_create(_target: Any, connection: Connection, **_kw: Any) -> None:
    create_search_schema(connection)


def _before_drop(_target: Any, connection: Connection, **_kw: Any) -> None:
    drop_search_schema(connection)


# Databases built from the metadata (tests, `create_all`) get the index with the tables.
event.listen(Base.metadata, "after_create", _after_create)
event.listen(Base.metadata, "before_drop", _before_drop)
