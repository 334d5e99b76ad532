"""Side effects after commit, on the transaction's unit of work (helpdesk/unit_of_work.py).

Services never emit, send or reindex inline: they call ``on_commit(session, fn)``. The functions
run only after the transaction commits (in registration order) and are dropped if it rolls
back, so nobody is told about a ticket that does not exist. Like Zulip's send_event_on_commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from helpdesk.unit_of_work import unit_of_work


def on_commit(session: Session, fn: Callable[[], Any]) -> None:
    """Run ``fn()`` after ``session`` commits; forget it if the transaction (or the savepoint
    it was registered in) rolls back."""
    unit_of_work(session).after_commit(fn)


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
