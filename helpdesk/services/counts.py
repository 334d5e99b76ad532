"""Exact ticket counts per (status, assignee), maintained in the same transaction.

Every flush that creates, deletes or changes the status or assignee of a ticket adds the
differences to ``ticket_counts`` before the flush ends, so the counts commit or roll back with
the change itself. Code that writes tickets around the ORM adds its own differences with
``adjust`` (the ticket import); other bulk loads are repaired by ``recount``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    case,
    delete,
    event,
    func,
    insert,
    inspect,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, UOWTransaction

from helpdesk.db import HelpdeskSession
from helpdesk.models import Ticket, TicketStatus
from helpdesk.models.views import TicketCount

_KEY = "helpdesk.count_deltas"
ACTIVE = [s.value for s in TicketStatus if s.active]
DONE = [s.value for s in TicketStatus if not s.active]


def _status(value: Any) -> str:
    return value.value if isinstance(value, TicketStatus) else str(value)


def _old_and_new(ticket: Ticket) -> tuple[tuple[str, int], tuple[str, int]] | None:
    state = inspect(ticket)
    status = state.attrs.status.history
    rel = state.attrs.assignee.history
    col = state.attrs.assignee_id.history
    if not (status.has_changes() or rel.has_changes() or col.has_changes()):
        return None
    new_status = _status((status.added or status.unchanged or [ticket.status])[0])
    old_status = _status((status.deleted or status.unchanged or [ticket.status])[0])

    def committed_assignee() -> int:
        value = (col.deleted or col.unchanged or [None])[0]
        return int(value or 0)

    if rel.has_changes():
        added = rel.added[0] if rel.added else None
        new_assignee = added.id if added is not None else 0
        old_obj = rel.deleted[0] if rel.deleted else None
        old_assignee = old_obj.id if old_obj is not None else committed_assignee()
    else:
        new_assignee = int((col.added or col.unchanged or [None])[0] or 0)
        old_assignee = committed_assignee()
    return (old_status, old_assignee), (new_status, new_assignee)


@event.listens_for(HelpdeskSession, "before_flush")
def _collect(session: Session, flush: UOWTransaction, _instances: Any) -> None:
    # The flush's own scratch space carries the deltas to after_flush of the same flush.
    deltas: Counter[tuple[str, int]] = flush.attributes.setdefault(_KEY, Counter())
    for obj in session.new:
        if isinstance(obj, Ticket):
            assignee = obj.assignee.id if obj.assignee is not None else (obj.assignee_id or 0)
            deltas[(_status(obj.status or TicketStatus.NEW), assignee)] += 1
    for obj in session.deleted:
        if isinstance(obj, Ticket):
            deltas[(_status(obj.status), obj.assignee_id or 0)] -= 1
    for obj in session.dirty:
        if isinstance(obj, Ticket) and obj not in session.deleted:
            change = _old_and_new(obj)
            if change is not None and change[0] != change[1]:
                deltas[change[0]] -= 1
                deltas[change[1]] += 1


@event.listens_for(HelpdeskSession, "after_flush")
def _apply(session: Session, flush: UOWTransaction) -> None:
    deltas: Counter[tuple[str, int]] = flush.attributes.pop(_KEY, Counter())
    if any(deltas.values()):
        # The connection, not the session: no autoflush while a flush is finishing.
        adjust(session.connection(), deltas)


def adjust(conn: Connection, deltas: Mapping[tuple[str, int], int]) -> None:
    """Add ``deltas`` ((status, assignee id or 0) -> change) to the counters, on the caller's
    connection and transaction: what a flush does for ORM changes, for tickets written with
    Core statements (``services.imports``)."""
    changes = {k: v for k, v in deltas.items() if v}
    if not changes:
        return
    insert_fn = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for (status, assignee), d in sorted(changes.items()):
        stmt = insert_fn(TicketCount).values(status=status, assignee_key=assignee, n=d)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["status", "assignee_key"], set_={"n": TicketCount.n + d}
            )
        )


def recount(session: Session) -> None:
    """Rebuild the counters from the tickets (after bulk loads that bypass the ORM)."""
    session.execute(delete(TicketCount))
    # A literal 0, not a bind parameter: PostgreSQL must see the same expression in GROUP BY.
    key = func.coalesce(Ticket.assignee_id, literal_column("0"))
    rows = session.execute(
        select(Ticket.status, key, func.count()).group_by(Ticket.status, key)
    ).all()
    if rows:
        session.execute(
            insert(TicketCount),
            [{"status": _status(s), "assignee_key": int(a), "n": int(n)} for s, a, n in rows],
        )


def builtin_counts(session: Session, agent_id: int) -> dict[str, int]:
    """Every built-in view's count for ``agent_id`` from one statement: per status, all its
    tickets, the unassigned ones and this agent's (the counters hold a row per status and
    assignee, so this reads a few hundred rows at most)."""
    rows = session.execute(
        select(
            TicketCount.status,
            func.sum(TicketCount.n),
            func.sum(case((TicketCount.assignee_key == 0, TicketCount.n), else_=0)),
            func.sum(case((TicketCount.assignee_key == agent_id, TicketCount.n), else_=0)),
        ).group_by(TicketCount.status)
    ).all()
    total = {status: int(n or 0) for status, n, _, _ in rows}
    nobody = {status: int(n or 0) for status, _, n, _ in rows}
    mine = {status: int(n or 0) for status, _, _, n in rows}
    return {
        "mine": sum(mine.get(s, 0) for s in ACTIVE),
        "unassigned": sum(nobody.get(s, 0) for s in ACTIVE),
        "open": sum(total.get(s, 0) for s in ACTIVE),
        "pending": total.get(TicketStatus.PENDING.value, 0),
        "resolved": sum(total.get(s, 0) for s in DONE),
        "all": sum(total.values()),
    }


def builtin_count(session: Session, view: str, agent_id: int | None) -> int | None:
    """The count of a built-in view from the counters, or None for views it cannot answer."""
    q = select(func.coalesce(func.sum(TicketCount.n), 0))
    if view == "all":
        pass
    elif view == "open":
        q = q.where(TicketCount.status.in_(ACTIVE))
    elif view == "pending":
        q = q.where(TicketCount.status == TicketStatus.PENDING.value)
    elif view == "resolved":
        q = q.where(TicketCount.status.in_(DONE))
    elif view == "unassigned":
        q = q.where(TicketCount.status.in_(ACTIVE), TicketCount.assignee_key == 0)
    elif view == "mine" and agent_id is not None:
        q = q.where(TicketCount.status.in_(ACTIVE), TicketCount.assignee_key == agent_id)
    else:
        return None
    return int(session.scalar(q) or 0)
