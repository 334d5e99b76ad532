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


@dataclass(frozen=True)
class Event:
    name: str
    payload: dict[str, Any]
    rooms: tuple[str, ...]
    namespace: str = "/agent"


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


def send_event_on_commit(
    session: Session,
    name: str,
    payload: dict[str, Any],
    rooms: list[str] | tuple[str, ...],
    namespace: str = "/agent",
) -> None:
    event = Event(name=name, payload=payload, rooms=tuple(rooms), namespace=namespace)
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
