"""Side effects after commit.

Services never emit, send or reindex inline: they call ``on_commit(session, fn)``. The functions
run only after the transaction commits (in registration order) and are dropped if it rolls
back, so nobody is told about a ticket that does not exist. Like Zulip's send_event_on_commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

log = logging.getLogger("helpdesk.effects")
_KEY = "helpdesk.effects"


def on_commit(session: Session, fn: Callable[[], Any]) -> None:
    """Run ``fn()`` after ``session`` commits; forget it if the transaction rolls back."""
    session.info.setdefault(_KEY, []).append(fn)


def _no_worker() -> None:
    """Before ``create_app`` names the worker there is none to wake."""


_wake_worker: Callable[[], None] = _no_worker


def set_worker_waker(wake: Callable[[], None]) -> None:
    """How to wake the worker's tasks (``create_app`` passes ``helpdesk.worker.kick``): services
    ask for it without importing the worker."""
    global _wake_worker
    _wake_worker = wake


def wake_worker_on_commit(session: Session) -> None:
    """After commit, wake the worker: this transaction queued work for it (a reply to send, an
    article to index). A separate ``helpdesk worker`` notices by polling instead."""
    on_commit(session, _wake)


def _wake() -> None:
    _wake_worker()


def run_effects(session: Session) -> None:
    # after_commit also fires when a savepoint is released; the work is not durable until the
    # outermost transaction commits, so wait for that.
    if session.in_nested_transaction():
        return
    effects = session.info.pop(_KEY, [])
    for fn in effects:
        # A failing effect (a browser gone, the index locked) must not stop the others, and the
        # data is already safe in the database; log it and go on.
        try:
            fn()
        except Exception:
            log.exception("effect %r failed after commit", fn)


def drop_effects(session: Session, previous_transaction: Any) -> None:
    # Only the outermost rollback drops them: a rolled-back savepoint (a lost race handled by
    # the caller) does not undo what the surrounding transaction will still commit.
    if not getattr(previous_transaction, "nested", False):
        session.info.pop(_KEY, None)
