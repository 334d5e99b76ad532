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

from sqlalchemy.orm import Session

from helpdesk.services.effects import on_commit
from helpdesk.unit_of_work import unit_of_work


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


def has_publishers() -> bool:
    """Whether anyone hears events: a process without Socket.IO (a one-off command with no
    message queue) has no publisher, and building payloads for nobody is wasted work."""
    return bool(_publishers)


def publish(event: Event) -> None:
    with _lock:
        publishers = list(_publishers)
    for fn in publishers:
        fn(event)


_COALESCE = "live.coalesce"


def coalesce_ticket_updates(session: Session) -> None:
    """This transaction's ``ticket.updated`` events may be coalesced by the publisher.

    For the changes that come many per second and that agents need only the latest state of:
    chat lines (each one bumps the ticket's message count and time). The Socket.IO publisher
    then sends at most one update per ticket per short window (helpdesk/realtime.py). Holds
    until the transaction ends.
    """
    unit_of_work(session).add(_COALESCE, True)


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
        coalesce=name == "ticket.updated" and unit_of_work(session).has(_COALESCE),
    )
    on_commit(session, lambda: publish(event))


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
