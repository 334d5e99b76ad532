"""Alembic environment: uses the app's engine; batch mode so SQLite tables can be altered."""

from __future__ import annotations

from alembic import context

# The core's tables; create_app, which helpdesk.migrate runs first, adds the channels' and the
# KB's (channels.registry, kb).
import helpdesk.models  # noqa: F401
from helpdesk.db import Base
from helpdesk.migrate import include_object

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from helpdesk.extensions import db

        engine = db.engine(config.attributes["app"])
        with engine.begin() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
