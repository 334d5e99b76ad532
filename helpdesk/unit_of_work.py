"""The unit of work: what a transaction will do once it commits.

Services never emit, send, reindex or publish inline. They register pending work on the
session's :class:`UnitOfWork` (``unit_of_work(session)``):

- ``add(kind, item)``: an item for a commit step (announcements, domain events, search-index
  marks); the steps registered with :func:`add_commit_step` fold them just before the commit,
  in the same transaction;
- ``after_commit(fn)``: a function to run once the transaction has committed (Socket.IO
  announcements, waking the worker, telling the stream's live subscribers);
- ``on_rollback(fn)``: a function to run if the work it belongs to is rolled back.

Savepoints are handled here and nowhere else: everything registered inside a savepoint that
rolls back is dropped with it (and its ``on_rollback`` functions run); what a released
savepoint registered belongs to the enclosing transaction. Nothing runs when a savepoint is
released, only when the outermost transaction commits. An outermost rollback drops everything.

``held`` is the set of named locks the current transaction holds (cleared whenever a
transaction or savepoint ends, since PostgreSQL releases locks taken in a rolled-back savepoint).

The object lives in ``session.info`` under one key, reached only through :func:`unit_of_work`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger("helpdesk.unit_of_work")

_KEY = "helpdesk.unit_of_work"

AFTER_COMMIT = "after_commit"
ON_ROLLBACK = "on_rollback"


@dataclass
class UnitOfWork:
    """Pending work of one session's current transaction (see the module docstring)."""

    _log: list[tuple[str, Any]] = field(default_factory=list)
    # How many items of each kind the log holds (``has`` is asked per announcement).
    _counts: dict[str, int] = field(default_factory=dict)
    # Log length when each open savepoint began, by transaction; and of those that ended but
    # whose outcome SQLAlchemy reports afterwards (after_soft_rollback follows
    # after_transaction_end).
    _marks: dict[int, int] = field(default_factory=dict)
    _ended: dict[int, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)

    def add(self, kind: str, item: Any) -> None:
        self._log.append((kind, item))
        self._counts[kind] = self._counts.get(kind, 0) + 1

    def take(self, kind: str) -> list[Any]:
        """The items of ``kind``, removed from the log (a commit step consumes them)."""
        if not self._counts.get(kind):
            return []
        taken = [item for k, item in self._log if k == kind]
        self._log = [(k, item) for k, item in self._log if k != kind]
        self._counts.pop(kind, None)
        return taken

    def peek(self, kind: str) -> list[Any]:
        """The items of ``kind``, left in the log (a step that reads what another consumes)."""
        if not self._counts.get(kind):
            return []
        return [item for k, item in self._log if k == kind]

    def has(self, kind: str) -> bool:
        return bool(self._counts.get(kind))

    def after_commit(self, fn: Callable[[], Any]) -> None:
        self.add(AFTER_COMMIT, fn)

    def on_rollback(self, fn: Callable[[], Any]) -> None:
        self.add(ON_ROLLBACK, fn)

    def __bool__(self) -> bool:
        return bool(self._log)

    # --- transaction boundaries (called by the session listeners below) ------------------

    def _savepoint_began(self, transaction: SessionTransaction) -> None:
        self._marks[id(transaction)] = len(self._log)

    def _savepoint_ended(self, transaction: SessionTransaction) -> None:
        mark = self._marks.pop(id(transaction), None)
        if mark is not None:
            self._ended[id(transaction)] = mark

    def _savepoint_rolled_back(self, transaction: SessionTransaction) -> None:
        mark = self._ended.pop(id(transaction), None)
        if mark is None:
            mark = self._marks.pop(id(transaction), None)
        if mark is None:
            return
        dropped, self._log = self._log[mark:], self._log[:mark]
        for kind, _item in dropped:
            self._counts[kind] -= 1
        _run(fn for kind, fn in reversed(dropped) if kind == ON_ROLLBACK)

    def _committed(self) -> list[Callable[[], Any]]:
        effects = [fn for kind, fn in self._log if kind == AFTER_COMMIT]
        self._reset()
        return effects

    def _rolled_back(self) -> None:
        dropped = self._log
        self._reset()
        _run(fn for kind, fn in reversed(dropped) if kind == ON_ROLLBACK)

    def _reset(self) -> None:
        self._log = []
        self._counts = {}
        self._marks.clear()
        self._ended.clear()
        self.held.clear()


def unit_of_work(session: Session) -> UnitOfWork:
    """The unit of work of ``session``'s current transaction."""
    uow = session.info.get(_KEY)
    if uow is None:
        uow = session.info[_KEY] = UnitOfWork()
    assert isinstance(uow, UnitOfWork)
    return uow


def _existing(session: Session) -> UnitOfWork | None:
    uow = session.info.get(_KEY)
    return uow if isinstance(uow, UnitOfWork) else None


# --- commit steps ----------------------------------------------------------------------------

CommitStep = Callable[[Session, UnitOfWork], None]
_steps: list[tuple[int, str, CommitStep]] = []


def add_commit_step(name: str, fn: CommitStep, order: int) -> None:
    """Run ``fn(session, uow)`` just before every outermost commit, in ``order`` (lower first).

    Steps write what must commit with the change itself (the search index, the event rows).
    Registering the same name again replaces the step.
    """
    global _steps
    _steps = sorted(
        [s for s in _steps if s[1] != name] + [(order, name, fn)], key=lambda s: (s[0], s[1])
    )


def commit_steps() -> list[str]:
    return [name for _order, name, _fn in _steps]


def _run(fns: Iterator[Callable[[], Any]]) -> None:
    for fn in fns:
        # One failing function (a browser gone, the index locked) must not stop the others;
        # the data is already safe (or already gone): log it and go on.
        try:
            fn()
        except Exception:
            log.exception("unit of work: %r failed", fn)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint is released, not the transaction: keep collecting
    uow = unit_of_work(session)
    for _order, _name, step in _steps:
        step(session, uow)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    uow = _existing(session)
    if uow is not None:
        _run(iter(uow._committed()))


def _transaction_created(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        unit_of_work(session)._savepoint_began(transaction)


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    uow = _existing(session)
    if uow is None:
        return
    if transaction.nested:
        uow.held.clear()
        uow._savepoint_ended(transaction)
    elif transaction.parent is None:
        # The transaction is over. After a commit the log is already empty; after a rollback,
        # or a session closed without one, what is left never happened: drop it here, so it
        # cannot run at the session's next commit. (A flush's subtransaction ends too, often:
        # it is neither nested nor the root, and changes nothing here.)
        uow._rolled_back()


def _soft_rollback(session: Session, previous: SessionTransaction) -> None:
    uow = _existing(session)
    if uow is None:
        return
    if previous.nested:
        uow._savepoint_rolled_back(previous)
    elif previous.parent is None:
        uow._rolled_back()


def install(session_class: type[Session]) -> None:
    """Listen on ``session_class`` (``helpdesk.db.HelpdeskSession``)."""
    event.listen(session_class, "before_commit", _before_commit)
    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_transaction_create", _transaction_created)
    event.listen(session_class, "after_transaction_end", _transaction_ended)
    event.listen(session_class, "after_soft_rollback", _soft_rollback)
