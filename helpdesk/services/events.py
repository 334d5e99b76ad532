"""Events for live updates, sent on commit.

A service calls ``send_event_on_commit(session, name, payload, rooms)``; after the commit every
registered publisher gets it. ``create_app`` registers the Socket.IO publisher (helpdesk.realtime);
tests register a recorder with :func:`capture_events` and assert the exact events a service sent.

Event payloads are documented where they are built (``ticket_summary`` below).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from helpdesk.services.effects import on_commit


@dataclass(frozen=True)
class Event:
    name: str
    payload: dict[str, Any]
    rooms: tuple[str, ...]
    namespace: str = "/agent"
    # A ``ticket.updated`` publishers may merge with the ticket's next ones and send a moment
    # later (see :func:`coalesce_ticket_updates`); every other event goes out as it is.
    coalesce: bool = False


Publisher = Callable[[Event], None]

_publishers: list[Publisher] = []
_lock = threading.Lock()


def add_publisher(fn: Publisher) -> None:
    with _lock:
        if fn not in _publishers:
            _publishers.append(fn)


def remove_publisher(fn: Publisher) -> None:
    with _lock:
        if fn in _publishers:
            _publishers.remove(fn)


def publish(event: Event) -> None:
    with _lock:
        publishers = list(_publishers)
    for fn in publishers:
        fn(event)


_COALESCE_KEY = "helpdesk.events.coalesce"


def coalesce_ticket_updates(session: Session) -> None:
    """This transaction's ``ticket.updated`` events may be coalesced by the publisher.

    For the changes that come many per second and that agents need only the latest state of:
    chat lines (each one bumps the ticket's message count and time). The Socket.IO publisher
    then sends at most one update per ticket per short window (helpdesk/realtime.py). Holds
    until the transaction ends.
    """
    session.info[_COALESCE_KEY] = True


def send_event_on_commit(
    session: Session,
    name: str,
    payload: dict[str, Any],
    rooms: list[str] | tuple[str, ...],
    namespace: str = "/agent",
) -> None:
    event = Event(
        name=name,
        payload=payload,
        rooms=tuple(rooms),
        namespace=namespace,
        coalesce=name == "ticket.updated" and bool(session.info.get(_COALESCE_KEY)),
    )
    on_commit(session, lambda: publish(event))


@sa_event.listens_for(Session, "after_commit")
def _forget_coalesce(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_COALESCE_KEY, None)


@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_coalesce_on_rollback(session: Session, previous: Any) -> None:
    if not previous.nested:
        session.info.pop(_COALESCE_KEY, None)


@dataclass
class EventRecorder:
    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@contextmanager
def capture_events() -> Iterator[EventRecorder]:
    """Record every event published inside the block (like Zulip's capture_send_event_calls)."""
    recorder = EventRecorder()
    add_publisher(recorder)
    try:
        yield recorder
    finally:
        remove_publisher(recorder)
