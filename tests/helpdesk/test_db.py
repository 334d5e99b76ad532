"""Database plumbing: UTC datetimes, effects after commit, SQLite under concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from helpdesk.db import HelpdeskSession, make_engine
from helpdesk.extensions import db
from helpdesk.models import Ticket
from helpdesk.services.effects import on_commit
from tests.conftest import AgentClient, MakeTicket


def test_datetimes_come_back_aware_utc(session: Session, make_ticket: MakeTicket) -> None:
    t = make_ticket().ticket
    dhaka = timezone(timedelta(hours=6))
    t.first_response_at = datetime(2026, 1, 2, 9, 30, tzinfo=dhaka)
    session.commit()
    session.expire_all()
    got = session.get(Ticket, t.id)
    assert got is not None and got.first_response_at == datetime(2026, 1, 2, 3, 30, tzinfo=UTC)
    assert got.first_response_at.tzinfo is not None and got.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(session: Session, make_ticket: MakeTicket) -> None:
    t = make_ticket().ticket
    t.resolved_at = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()
    session.rollback()


def test_effects_run_after_the_outer_commit_only(app: Flask) -> None:
    ran: list[str] = []
    with app.app_context():
        factory = db.sessionmaker(app)
        with factory() as s:
            s.begin()
            on_commit(s, lambda: ran.append("kept"))
            with s.begin_nested():
                pass  # releasing a savepoint is not a commit
            assert ran == []
            try:
                with s.begin_nested():
                    on_commit(s, lambda: ran.append("inner"))
                    raise ValueError
            except ValueError:
                pass
            s.commit()
            # What the rolled-back savepoint registered went with it.
            assert ran == ["kept"]
            s.begin()
            on_commit(s, lambda: ran.append("dropped"))
            s.rollback()
            s.begin()
            s.commit()
    assert ran == ["kept"]


def test_a_failing_effect_does_not_stop_the_others(app: Flask) -> None:
    ran: list[int] = []
    with app.app_context(), db.transaction(app) as s:
        on_commit(s, lambda: 1 / 0)
        on_commit(s, lambda: ran.append(1))
    assert ran == [1]


def test_sqlite_is_wal_and_concurrent_writers_never_see_database_locked(tmp_path: Path) -> None:
    """The web process and the worker write at once: BEGIN IMMEDIATE + busy_timeout serialise
    them instead of failing with "database is locked" half-way through a transaction."""
    import helpdesk.models  # noqa: F401
    from helpdesk.db import Base

    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1

    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for _round in range(40):
                with HelpdeskSession(bind=engine) as s, s.begin():
                    # Read first, then write: the pattern that deadlocks with deferred BEGIN.
                    current = s.execute(
                        text("SELECT value FROM ticket_counter WHERE id = 1")
                    ).scalar()
                    s.execute(
                        text("UPDATE ticket_counter SET value = :v WHERE id = 1"),
                        {"v": int(current or 0) + 1},
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        # No lost update either: every read-modify-write was serialised.
        assert conn.execute(text("SELECT value FROM ticket_counter")).scalar() == 1000 + 4 * 40
    engine.dispose()


def test_writers_of_one_process_queue_and_the_next_one_starts_when_the_first_commits(
    tmp_path: Path,
) -> None:
    """A write waits behind another thread's open write transaction (no "database is locked",
    no SQLite busy-polling), and every way a transaction ends lets the next writer in."""
    import helpdesk.models  # noqa: F401
    from helpdesk.db import Base

    path = tmp_path / "gate.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    bump = text("UPDATE ticket_counter SET value = value + 1 WHERE id = 1")

    def counter() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT value FROM ticket_counter")).scalar_one())

    holder = HelpdeskSession(bind=engine)
    holder.execute(bump)  # holds the write lock until it commits
    entered, done = threading.Event(), threading.Event()

    def second_writer() -> None:
        entered.set()
        with HelpdeskSession(bind=engine) as s, s.begin():
            s.execute(bump)
        done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    assert entered.wait(5)
    assert not done.wait(0.3)  # still queued behind the open transaction
    holder.commit()
    assert done.wait(5)
    thread.join()
    assert counter() == 1002

    # Rolled back, failed half-way, closed with a transaction open, or the connection thrown
    # away: the next writer gets in at once each time.
    ways: list[tuple[str, Callable[[Session], None]]] = [
        ("rollback", lambda s: s.rollback()),
        ("close", lambda s: s.close()),
        ("invalidate", lambda s: s.connection().invalidate()),
    ]
    for name, end in ways:
        s = HelpdeskSession(bind=engine)
        s.execute(bump)
        end(s)
        s.close()
        with HelpdeskSession(bind=engine) as other, other.begin():
            other.execute(bump)
        assert counter() == 1003 + [w for w, _ in ways].index(name), name
    with pytest.raises(OperationalError), HelpdeskSession(bind=engine) as s, s.begin():
        s.execute(text("UPDATE no_such_table SET x = 1"))
    with HelpdeskSession(bind=engine) as s, s.begin():
        s.execute(bump)
    assert counter() == 1006
    engine.dispose()


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError):
        make_engine("sqlite:///:memory:")


def test_ticket_numbers_are_unique_under_concurrency(app: Flask, db_backend: str) -> None:
    from helpdesk.inbound import InboundMessage
    from helpdesk.services.inbound import receive

    errors: list[BaseException] = []

    def open_some(n: int) -> None:
        try:
            with app.app_context():
                for i in range(5):
                    with db.transaction(app) as s:
                        receive(
                            s, InboundMessage("email", f"c{n}-{i}@example.com", "hi", subject="x")
                        )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_some, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context(), db.transaction(app) as s:
        numbers = s.scalars(select(Ticket.number).order_by(Ticket.number)).all()
    assert numbers == list(range(1001, 1021))


@pytest.mark.only_on("sqlite")  # PostgreSQL has no BEGIN modes
def test_reads_begin_deferred_and_writes_immediate(
    app: Flask, db_backend: str, agent_client: AgentClient, ticket: Ticket
) -> None:
    """A GET never takes SQLite's write lock; a POST (and background work) takes it up front."""
    from sqlalchemy import event

    engine = db.engine(app)
    agent_client.token()  # fetch the CSRF token before recording
    db.session.close()  # the test's own session would otherwise keep its transaction open
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert agent_client.get(f"/agent/tickets/{ticket.number}").status_code == 200
        reads = list(seen)
        db.session.close()
        response = agent_client.post(f"/agent/tickets/{ticket.number}/note", {"note-body": "hi"})
        assert response.status_code == 302
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert reads == ["BEGIN DEFERRED"]
    assert seen[len(reads) :] == ["BEGIN IMMEDIATE"]


@pytest.mark.only_on("sqlite")  # PostgreSQL has no BEGIN modes
def test_a_transaction_opened_to_write_during_a_read_only_request_begins_immediate(
    app: Flask, db_backend: str
) -> None:
    """A GET that records something (a KB search) writes in ``db.transaction``: it must queue
    for the write lock like any writer, not begin DEFERRED and wait inside SQLite (which would
    stop a gevent server's every connection)."""
    from sqlalchemy import event

    from helpdesk.db import read_only_transactions

    engine = db.engine(app)
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with app.test_request_context("/kb/search", method="GET"):
            app.preprocess_request()  # what a GET request sets up: its reads begin deferred
            with db.transaction(app) as s:
                s.execute(text("SELECT 1"))
            db.session.execute(text("SELECT 1"))  # the request's own reads stay deferred
            db.session.rollback()
            # Code that says it only reads keeps its deferred transaction.
            with read_only_transactions(), db.transaction(app) as s:
                s.execute(text("SELECT 1"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen == ["BEGIN IMMEDIATE", "BEGIN DEFERRED", "BEGIN DEFERRED"]


def test_work_of_a_session_closed_without_commit_never_runs_later(app: Flask) -> None:
    """A session closed mid-transaction (no rollback called) drops its pending work: the next
    transaction on the same session does not run it."""
    ran: list[str] = []
    with app.app_context():
        factory = db.sessionmaker(app)
        with factory() as s:
            s.begin()
            on_commit(s, lambda: ran.append("abandoned"))
            s.close()
            s.begin()
            on_commit(s, lambda: ran.append("next"))
            s.commit()
    assert ran == ["next"]


def test_nested_savepoints_keep_what_a_released_inner_one_registered_until_the_outer_decides(
    app: Flask,
) -> None:
    from helpdesk.unit_of_work import unit_of_work

    ran: list[str] = []
    undone: list[str] = []
    with app.app_context():
        factory = db.sessionmaker(app)
        with factory() as s:
            s.begin()
            outer = s.begin_nested()
            with s.begin_nested():
                on_commit(s, lambda: ran.append("inner, released"))
                unit_of_work(s).on_rollback(lambda: undone.append("inner"))
            outer.rollback()  # takes the released inner savepoint's work with it
            with s.begin_nested():
                on_commit(s, lambda: ran.append("kept"))
            s.commit()
    assert ran == ["kept"] and undone == ["inner"]
