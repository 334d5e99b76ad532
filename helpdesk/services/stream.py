"""The durable event stream: every state change as a row, in the same transaction.

Services call :func:`record` (or :func:`ticket_changed` for a ticket's fields) while they change
rows. The events wait on the transaction's unit of work; the commit step below writes them just
before the commit, so they commit or roll back with the change. One transaction's changes to one
ticket's fields become a single ``ticket.updated`` carrying each changed field's first ``from``
and last ``to`` (a field changed and changed back is no change).

Ids come from one counter row (``UPDATE event_counter ... RETURNING``) taken at the very end of
the transaction: PostgreSQL holds the row lock until the commit, so ids are gap-free and increase
in commit order, and a reader of ``id > N`` never misses an event committed later with a smaller
id. SQLite's write lock gives the same.

After the commit, **live subscribers** (:func:`subscribe`) get the stored events in id order, in
the process that committed them. **Durable consumers** (:func:`consume`) read the table from the
id they last recorded, so one that was stopped resumes where it stopped and misses nothing; the
worker runs the consumers registered with :func:`register_consumer`.

Event shape (``as_dict``, also what the REST API will serve): ``{id, name, occurred_at (ISO
8601 UTC), actor: {type, id}, subject: {type, id}, ticket_id, data}``. Names and data are listed
in docs/architecture.md#the-event-stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Agent, Customer, Event, EventConsumer, EventCounter
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.rule_context import current as current_rule
from helpdesk.unit_of_work import UnitOfWork, add_commit_step, unit_of_work

log = logging.getLogger("helpdesk.stream")

Actor = Agent | Customer | None

_PENDING = "stream.event"
_TICKET_CHANGE = "stream.ticket_change"


@dataclass(frozen=True)
class StoredEvent:
    """An event as committed (what subscribers and consumers get)."""

    id: int
    name: str
    occurred_at: datetime
    actor_type: str
    actor_id: int | None
    subject_type: str
    subject_id: int
    ticket_id: int | None
    data: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": {"type": self.actor_type, "id": self.actor_id},
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "ticket_id": self.ticket_id,
            "data": self.data,
        }

    @classmethod
    def from_row(cls, row: Event) -> StoredEvent:
        return cls(
            id=row.id,
            name=row.name,
            occurred_at=row.occurred_at,
            actor_type=row.actor_type,
            actor_id=row.actor_id,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            ticket_id=row.ticket_id,
            data=dict(row.data or {}),
        )


def _actor(actor: Actor) -> tuple[str, int | None]:
    if isinstance(actor, Agent):
        return "agent", actor.id
    if isinstance(actor, Customer):
        return "customer", actor.id
    return "system", None


# --- recording ---------------------------------------------------------------------------------


def record(
    session: Session,
    name: str,
    subject_type: str,
    subject_id: int,
    actor: Actor = None,
    /,
    *,
    ticket_id: int | None = None,
    **data: Any,
) -> None:
    """Record the event ``name`` about ``subject_type`` ``subject_id`` for this transaction
    (with the chain of automation rules that caused it, when one is acting)."""
    actor_type, actor_id = _actor(actor)
    rule = current_rule()
    if rule is not None:
        data = {**data, "rule": rule.label(), "rule_chain": list(rule.chain)}
    values = {
        "name": name,
        "occurred_at": utcnow(),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "ticket_id": ticket_id,
        "data": data,
    }
    unit_of_work(session).add(_PENDING, values)


def ticket_changed(
    session: Session, ticket_id: int, actor: Actor, field_name: str, before: Any, after: Any
) -> None:
    """A field of a ticket changed: part of this transaction's ``ticket.updated`` for it."""
    if before == after:
        return
    # The first change of the ticket in this transaction reserves the event's place in order.
    uow = unit_of_work(session)
    rule = current_rule()
    who = _actor(actor)
    if rule is not None:
        who = (*who, rule.label(), list(rule.chain))  # type: ignore[assignment]
    uow.add(_TICKET_CHANGE, (ticket_id, who, field_name, before, after))
    uow.add(_PENDING, ("ticket.updated", ticket_id))


def _fold_ticket_changes(uow: UnitOfWork) -> dict[int, dict[str, Any]]:
    """``ticket.updated`` values per ticket, from this transaction's field changes."""
    folded: dict[int, dict[str, Any]] = {}
    for ticket_id, who, field_name, before, after in uow.take(_TICKET_CHANGE):
        actor_type, actor_id = who[0], who[1]
        values = folded.get(ticket_id)
        if values is None:
            values = folded[ticket_id] = {
                "name": "ticket.updated",
                "occurred_at": utcnow(),
                "actor_type": actor_type,
                "actor_id": actor_id,
                "subject_type": "ticket",
                "subject_id": ticket_id,
                "ticket_id": ticket_id,
                "data": {"changes": {}},
            }
            if len(who) > 2:  # changed by an automation rule (services/rule_context.py)
                values["data"]["rule"], values["data"]["rule_chain"] = who[2], who[3]
        changes = values["data"]["changes"]
        if field_name in changes:
            changes[field_name]["to"] = after
        else:
            changes[field_name] = {"from": before, "to": after}
    for values in folded.values():
        changes = values["data"]["changes"]
        for name in [n for n, c in changes.items() if c["from"] == c["to"]]:
            del changes[name]
    return folded


def ticket_activity(uow: UnitOfWork) -> dict[int, dict[str, Any]]:
    """What this transaction did to each ticket so far, without consuming it (for commit
    steps before the events are written, e.g. the SLA's): ``{ticket_id: {"created": bool,
    "changed": {field, ...}, "messages": [(direction, internal), ...]}}``."""
    out: dict[int, dict[str, Any]] = {}

    def of(ticket_id: int) -> dict[str, Any]:
        return out.setdefault(ticket_id, {"created": False, "changed": set(), "messages": []})

    for ticket_id, _who, field_name, _before, _after in uow.peek(_TICKET_CHANGE):
        of(ticket_id)["changed"].add(field_name)
    for item in uow.peek(_PENDING):
        if isinstance(item, tuple) or item.get("ticket_id") is None:
            continue
        if item["name"] == "ticket.created":
            of(item["ticket_id"])["created"] = True
        elif item["name"] == "message.created":
            data = item["data"]
            of(item["ticket_id"])["messages"].append(
                (data.get("direction"), bool(data.get("internal")), item["actor_type"])
            )
        elif item["name"] == "ticket.merged":
            of(item["ticket_id"])["changed"].add("merged")
    return out


# Built once: building a statement costs more than running these two on SQLite.
_RESERVE = (
    update(EventCounter)
    .where(EventCounter.id == 1)
    .values(value=EventCounter.value + bindparam("count"))
    .returning(EventCounter.value)
)
_INSERT = insert(Event)


def _reserve(session: Session, count: int) -> int:
    """Hand out ``count`` ids; returns the first. The counter row stays locked until commit."""
    conn = session.connection()
    value = conn.execute(_RESERVE, {"count": count}).scalar()
    if value is None:
        # A database made by create_all (tests, a fresh SQLite file) has no seed row yet.
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(dialect_insert(EventCounter).values(id=1, value=0).on_conflict_do_nothing())
        value = conn.execute(_RESERVE, {"count": count}).scalar_one()
    return int(value) - count + 1


def _write_events(session: Session, uow: UnitOfWork) -> None:
    """The commit step: write this transaction's events with their ids."""
    if not uow.has(_PENDING):
        return
    folded = _fold_ticket_changes(uow)
    rows: list[dict[str, Any]] = []
    placed: set[int] = set()
    for item in uow.take(_PENDING):
        if isinstance(item, tuple):  # the place of a ticket's ticket.updated
            ticket_id = item[1]
            values = folded.get(ticket_id)
            if ticket_id in placed or values is None or not values["data"]["changes"]:
                continue
            placed.add(ticket_id)
            rows.append(values)
        else:
            rows.append(item)
    if not rows:
        return
    first = _reserve(session, len(rows))
    for offset, values in enumerate(rows):
        values["id"] = first + offset
    session.connection().execute(_INSERT, rows)
    stored = [StoredEvent(**values) for values in rows]
    uow.after_commit(lambda: _tell_subscribers(stored))
    if _consumers:
        wake_worker_on_commit(session)  # the durable consumers have news


add_commit_step("stream.events", _write_events, order=90)


# --- live subscribers (in this process, after commit) --------------------------------------------

Subscriber = Callable[[Sequence[StoredEvent]], None]
_subscribers: list[Subscriber] = []
_lock = threading.Lock()


def subscribe(fn: Subscriber) -> None:
    with _lock:
        if fn not in _subscribers:
            _subscribers.append(fn)


def unsubscribe(fn: Subscriber) -> None:
    with _lock:
        if fn in _subscribers:
            _subscribers.remove(fn)


def _tell_subscribers(events: Sequence[StoredEvent]) -> None:
    with _lock:
        subscribers = list(_subscribers)
    for fn in subscribers:
        try:
            fn(events)
        except Exception:
            log.exception("stream subscriber %r failed", fn)


@dataclass
class StreamRecorder:
    events: list[StoredEvent] = field(default_factory=list)

    def __call__(self, events: Sequence[StoredEvent]) -> None:
        self.events.extend(events)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def clear(self) -> None:
        self.events.clear()


@contextmanager
def capture() -> Iterator[StreamRecorder]:
    """Record every event committed in this process inside the block (tests)."""
    recorder = StreamRecorder()
    subscribe(recorder)
    try:
        yield recorder
    finally:
        unsubscribe(recorder)


# --- reading and durable consumers ---------------------------------------------------------------


def read(
    session: Session, after: int = 0, limit: int = 100, names: Sequence[str] = ()
) -> list[StoredEvent]:
    """Events with ``id > after`` in id order (at most ``limit``; only ``names`` if given)."""
    query = select(Event).where(Event.id > after).order_by(Event.id).limit(limit)
    if names:
        query = query.where(Event.name.in_(list(names)))
    return [StoredEvent.from_row(row) for row in session.scalars(query)]


def last_id(session: Session) -> int:
    return int(session.scalar(select(EventCounter.value).where(EventCounter.id == 1)) or 0)


Handler = Callable[[Session, StoredEvent], None]
Preparer = Callable[[Session, Sequence[StoredEvent]], None]


def position(session: Session, name: str) -> int:
    """The last id consumer ``name`` has handled (0 if it never ran)."""
    return int(session.scalar(select(EventConsumer.last_id).where(EventConsumer.name == name)) or 0)


def consume(
    session: Session,
    name: str,
    handler: Handler,
    *,
    limit: int = 200,
    start_at_end: bool = False,
    prepare: Preparer | None = None,
) -> int:
    """Hand the events after consumer ``name``'s position to ``handler``, oldest first, and move
    the position past each one; returns how many were handled. The caller commits.

    ``handler`` runs in the caller's transaction, so what it writes commits together with the
    new position: after a crash or a failing handler the transaction rolls back and the same
    events come again, never skipped, and never twice once committed. A handler with effects
    outside the database (a webhook's HTTP call) gets at-least-once delivery and deduplicates
    by event id. On PostgreSQL the position row is locked, so two workers never share a batch.
    ``start_at_end``: a consumer that never ran starts after the newest event instead of at the
    beginning (for consumers whose past is of no use, like notifications).
    ``prepare(session, events)`` runs once per batch before the handler sees its events (load
    what they all need in one query instead of one per event).
    """
    consumer = session.scalars(
        select(EventConsumer).where(EventConsumer.name == name).with_for_update()
    ).one_or_none()
    if consumer is None:
        consumer = EventConsumer(name=name, last_id=last_id(session) if start_at_end else 0)
        session.add(consumer)
        session.flush()
    handled = 0
    batch = read(session, consumer.last_id, limit)
    if prepare is not None and batch:
        prepare(session, batch)
    for stored in batch:
        handler(session, stored)
        consumer.last_id = stored.id
        handled += 1
    if handled:
        session.flush()
    return handled


@dataclass(frozen=True)
class Consumer:
    name: str
    handler: Handler
    start_at_end: bool = False
    prepare: Preparer | None = None


_consumers: dict[str, Consumer] = {}


def register_consumer(
    name: str,
    handler: Handler,
    *,
    start_at_end: bool = False,
    prepare: Preparer | None = None,
) -> None:
    """A durable consumer the worker keeps up to date (``create_app`` registers them)."""
    _consumers[name] = Consumer(name, handler, start_at_end, prepare)


def unregister_consumer(name: str) -> None:
    _consumers.pop(name, None)


def registered_consumers() -> list[Consumer]:
    return list(_consumers.values())


def run_consumers(
    transaction: Callable[[], AbstractContextManager[Session]],
    *,
    limit: int = 200,
    stop: Callable[[], bool] | None = None,
    names: Collection[str] | None = None,
) -> int:
    """One pass of every registered consumer (those in ``names`` when given) until it is
    caught up, one ``transaction()`` per batch; returns the events handled. A failing consumer
    is logged and retried next pass."""
    total = 0
    for consumer in registered_consumers():
        if names is not None and consumer.name not in names:
            continue
        while stop is None or not stop():
            try:
                with transaction() as session:
                    handled = consume(
                        session,
                        consumer.name,
                        consumer.handler,
                        limit=limit,
                        start_at_end=consumer.start_at_end,
                        prepare=consumer.prepare,
                    )
            except Exception:
                log.exception("event consumer %s failed; it will retry", consumer.name)
                break
            total += handled
            if handled < limit:
                break
    return total
