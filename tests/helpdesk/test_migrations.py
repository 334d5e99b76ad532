"""Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import json
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


def test_link_mails_waiting_in_portal_tokens_move_to_the_core_outbox(
    empty_url: str, tmp_path: Path
) -> None:
    """0010: a sign-in link mailed by the old portal queue but not sent yet is sent after the
    upgrade; one already sent or expired is not sent again."""
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": empty_url})
    upgrade(app, "0009")
    engine = db.engine(app)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (id, name, email, notes, created_at, updated_at)"
                " VALUES (1, 'রহিম', 'rahim@example.com', '', :now, :now)"
            ),
            {"now": "2026-12-07 10:00:00"},
        )
        rows = [
            ("waiting", "signin", None, "2099-01-01 00:00:00", 2),
            ("sent", "signin", "2026-12-07 10:01:00", "2099-01-01 00:00:00", 1),
            ("expired", "signin", None, "2020-01-01 00:00:00", 0),
            ("no-mail", None, None, "2099-01-01 00:00:00", 0),
            ("gave-up", "signin", None, "2099-01-01 00:00:00", 8),
        ]
        for nonce, mail, mailed_at, expires, attempts in rows:
            conn.execute(
                text(
                    "INSERT INTO portal_tokens (nonce, customer_id, purpose, created_at,"
                    " expires_at, mail, language, mailed_at, mail_attempts)"
                    " VALUES (:nonce, 1, 'signin', :now, :expires, :mail, 'bn', :mailed, :tries)"
                ),
                {
                    "nonce": nonce,
                    "now": "2026-12-07 10:00:00",
                    "expires": expires,
                    "mail": mail,
                    "mailed": mailed_at,
                    "tries": attempts,
                },
            )
    upgrade(app)
    with engine.connect() as conn:
        moved = conn.execute(
            text(
                "SELECT purpose, recipient, language, payload, status, attempts FROM outbound_mails"
            )
        ).all()
    assert len(moved) == 1
    purpose, recipient, language, payload, status, attempts = moved[0]
    assert (purpose, recipient, language, status, attempts) == (
        "portal.signin",
        "rahim@example.com",
        "bn",
        "queued",
        2,  # its attempts so far count towards the limit
    )
    assert (json.loads(payload) if isinstance(payload, str) else payload) == {"nonce": "waiting"}
    # And back down and up again (the downgrade restores the old columns' types).
    from alembic import command

    from helpdesk.migrate import alembic_config

    with app.app_context():
        command.downgrade(alembic_config(app), "0009")
    assert "outbound_mails" not in inspect(engine).get_table_names()
    upgrade(app)
    engine.dispose()
