"""Applying Alembic migrations from code (``helpdesk init``) and from tests."""

from __future__ import annotations

import logging
from pathlib import Path

# Alembic logs plugin set-up and context details at INFO when imported and run; for
# `helpdesk init` that is noise. Warnings still show.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from flask import Flask  # noqa: E402

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """What migrations manage: everything but the ticket search index, which is created with
    per-database DDL (FTS5 / tsvector) and has FTS5 shadow tables autogenerate must not see."""
    from helpdesk.models.search import is_search_table

    return not (type_ == "table" and name is not None and is_search_table(name))


def alembic_config(app: Flask) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["app"] = app
    return cfg


def upgrade(app: Flask, revision: str = "head") -> None:
    from helpdesk.extensions import db

    with app.app_context(), db.engine(app).begin() as connection:
        cfg = alembic_config(app)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
