"""Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from helpdesk import create_app
from helpdesk.db import Base
from helpdesk.extensions import db
from helpdesk.migrate import include_object, upgrade


@pytest.fixture
def empty_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if db_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'm.sqlite3'}"
    cluster = request.getfixturevalue("postgres")
    name = f"migr_{abs(hash(request.node.name)) % 10**8}"
    cluster.create_database(name)
    request.addfinalizer(lambda: cluster.drop_database(name))
    return str(cluster.url(name))


def test_upgrade_from_nothing_matches_the_models(empty_url: str, tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": empty_url})
    upgrade(app)
    upgrade(app)  # idempotent
    engine = db.engine(app)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": include_object}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        assert diff == []
        assert conn.execute(text("SELECT value FROM ticket_counter WHERE id = 1")).scalar() == 1000
    assert "tickets" in inspect(engine).get_table_names()
    engine.dispose()
