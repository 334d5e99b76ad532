"""Database plumbing: the declarative Base, UTC datetimes, engines and sessions.

The caller owns the transaction (a web request, one inbound mail, one socket event, one worker
batch); services take a ``Session`` and never commit. Use :func:`Database.transaction` outside
requests and ``db.session`` inside them.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from helpdesk import unit_of_work

if TYPE_CHECKING:
    from flask import Flask

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC and given back their UTC tzinfo on the way out. Naive datetimes are refused on the way in:
    a naive value is a bug waiting to shift someone's ticket by six hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class HelpdeskSession(Session):
    """Our session class: each transaction has a unit of work (helpdesk/unit_of_work.py)."""


unit_of_work.install(HelpdeskSession)


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------


# How SQLite transactions begin in the current context. Writers (the default) take the write
# lock up front; requests that only read (GET/HEAD) begin deferred, so in WAL mode they never
# wait for, nor hold up, a writer. A GET handler must therefore not write.
_sqlite_begin: ContextVar[str] = ContextVar("helpdesk_sqlite_begin", default="IMMEDIATE")
# True while the DEFERRED above only comes from the request being a GET, not from code that
# said it reads (:func:`read_only_transactions`): ``Database.transaction`` then writes.
_deferred_by_request: ContextVar[bool] = ContextVar("helpdesk_deferred_by_request", default=False)


@contextmanager
def read_only_transactions() -> Iterator[None]:
    token = _sqlite_begin.set("DEFERRED")
    implied = _deferred_by_request.set(False)
    try:
        yield
    finally:
        _deferred_by_request.reset(implied)
        _sqlite_begin.reset(token)


_BUSY_TIMEOUT_SECONDS = 15.0
_gates: dict[str, threading.Lock] = {}
_gates_lock = threading.Lock()


def _writer_gate(database: str) -> threading.Lock:
    """The one gate of a database file in this process (shared by all its engines)."""
    key = os.path.realpath(database)
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            # Created lazily, at the first connection: under gevent it is then the patched,
            # cooperative lock (the server patches before the app connects).
            gate = _gates[key] = threading.Lock()
        return gate


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


class GatedSqliteConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions queue on an in-process lock first.

    SQLite makes a second writer wait in its busy handler, which polls with sleeps growing to
    100 ms and serves nobody in order: under a steady stream of short writes (chat lines at
    100/s) a writer could wait seconds while later ones got through. Threads of one process now
    queue on a lock that wakes the next one the moment the holder commits; SQLite's busy
    timeout still arbitrates between processes (web and worker).
    """

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._gate = _writer_gate(database)
        self._holding = False
        self.cooperative = _gevent_patched()

    def begin_cooperatively(self) -> None:
        """BEGIN IMMEDIATE for a gevent process: SQLite's busy handler would sleep inside
        SQLite and stop every greenlet while another process (the worker) writes; retrying
        with a patched sleep lets the others run meanwhile."""
        self.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
            delay = 0.001
            while True:
                try:
                    self.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(delay)  # patched: yields to the other greenlets
                delay = min(delay * 2, 0.02)
        finally:
            self.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_SECONDS * 1000)}")

    def enter_gate(self) -> None:
        """Queue for the write lock; released when this transaction commits or rolls back."""
        if not self._gate.acquire(timeout=_BUSY_TIMEOUT_SECONDS):
            # What SQLite itself says after its busy timeout: the caller sees the same error.
            raise sqlite3.OperationalError("database is locked")
        self._holding = True

    def release_gate(self) -> None:
        if self._holding:
            self._holding = False
            self._gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self.release_gate()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            if not self.in_transaction:
                self.release_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_gate()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (pysqlite's implicit
        # BEGIN is deferred, which is what produces "database is locked" under concurrency).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_SECONDS * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails half-way
        # when it upgrades from reading to writing while another process writes; waiting is
        # handled by busy_timeout. Read-only requests begin DEFERRED (see above).
        mode = _sqlite_begin.get()
        dbapi_conn = conn.connection.dbapi_connection
        gated = mode == "IMMEDIATE" and isinstance(dbapi_conn, GatedSqliteConnection)
        if gated:
            dbapi_conn.enter_gate()  # queue behind this process's other writers (see the class)
        try:
            if gated and dbapi_conn.cooperative:
                dbapi_conn.begin_cooperatively()
            else:
                conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            if gated:
                dbapi_conn.release_gate()
            raise


def make_engine(url: str, *, echo: bool = False) -> Engine:
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": _BUSY_TIMEOUT_SECONDS,
            "factory": GatedSqliteConnection,
        }
        if ":memory:" in url or url.rstrip("/") == "sqlite:":
            raise ValueError("in-memory SQLite is not supported: web and worker share the DB")
    else:
        kwargs["pool_pre_ping"] = True
    if url.startswith("sqlite") and "nullpool" in url:
        kwargs["poolclass"] = NullPool
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


class Database:
    """The ``db`` extension: an engine and a session factory per app.

    ``db.session`` is a session scoped to the current thread and removed when the app context
    ends (each request gets a fresh one). Background code uses :meth:`transaction`.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"], echo=app.config.get("SQL_ECHO", False))
        factory = sessionmaker(bind=engine, class_=HelpdeskSession, expire_on_commit=False)
        # Scoped to the app context (like Flask-SQLAlchemy), not the thread: a Socket.IO handler
        # and a request on the same thread never share a session by accident.
        scoped = scoped_session(factory, scopefunc=_app_ctx_id)
        app.extensions["helpdesk.db"] = _AppDatabase(engine, factory, scoped)

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            scoped.remove()

        @app.before_request
        def _reads_begin_deferred() -> None:
            from flask import g, request

            if request.method in ("GET", "HEAD", "OPTIONS"):
                g._helpdesk_begin_token = _sqlite_begin.set("DEFERRED")
                g._helpdesk_implied_token = _deferred_by_request.set(True)

        @app.teardown_request
        def _reset_begin(_exc: BaseException | None) -> None:
            from flask import g

            implied = g.pop("_helpdesk_implied_token", None)
            if implied is not None:
                _deferred_by_request.reset(implied)
            token = g.pop("_helpdesk_begin_token", None)
            if token is not None:
                _sqlite_begin.reset(token)

    @staticmethod
    def _state(app: Flask | None = None) -> _AppDatabase:
        if app is None:
            from flask import current_app

            app = current_app._get_current_object()  # type: ignore[attr-defined]
        state: _AppDatabase = app.extensions["helpdesk.db"]
        return state

    @property
    def session(self) -> Session:
        return self._state().scoped()

    def engine(self, app: Flask | None = None) -> Engine:
        return self._state(app).engine

    def sessionmaker(self, app: Flask | None = None) -> sessionmaker[HelpdeskSession]:
        return self._state(app).factory

    @contextmanager
    def transaction(self, app: Flask | None = None) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Inside a GET request (whose own transactions begin DEFERRED) it begins IMMEDIATE on
        SQLite: it is there to write, so it queues on the writer gate, and under gevent it never
        waits for the lock inside SQLite with every greenlet stopped. Code that only reads says
        so with :func:`read_only_transactions` around it."""
        factory = self._state(app).factory
        writes = _deferred_by_request.get()
        token = _sqlite_begin.set("IMMEDIATE") if writes else None
        implied = _deferred_by_request.set(False) if writes else None
        try:
            with factory() as session, session.begin():
                yield session
        finally:
            if implied is not None:
                _deferred_by_request.reset(implied)
            if token is not None:
                _sqlite_begin.reset(token)


def _app_ctx_id() -> int:
    from flask.globals import app_ctx

    return id(app_ctx._get_current_object())  # type: ignore[attr-defined]


class _AppDatabase:
    def __init__(
        self,
        engine: Engine,
        factory: sessionmaker[HelpdeskSession],
        scoped: scoped_session[HelpdeskSession],
    ) -> None:
        self.engine = engine
        self.factory = factory
        self.scoped = scoped
