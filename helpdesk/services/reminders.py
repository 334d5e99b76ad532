"""Durable timers in the database: tasks' reminders and tickets' follow-up dates.

Both are a time column (``tasks.next_fire_at``, ``tickets.follow_up_at``) that the worker's
:func:`fire_due` reads every round (one index probe: ``WORKER_POLL_SECONDS``, 2 s by default, is
well within the minute a reminder may be late). Nothing lives in memory, so a reminder due while
no worker ran (a restart, a server that was down) fires on the first round after start.

**Exactly once.** A reminder is claimed with a conditional UPDATE (``SET next_fire_at = NULL
WHERE id = ? AND next_fire_at = <the time read>``) in the transaction that also writes the
in-app notification, the ``task.reminder`` event and the reminder mail's outbox row; the mail is
sent by the outbox after the commit. Whoever's UPDATE changes the row fires it: a second worker
(PostgreSQL re-checks the condition after the first one's commit; SQLite's write lock
serialises them) changes nothing and moves on; a rollback leaves the timer armed.

**Follow-ups.** A pending ticket with ``follow_up_at`` reached is reopened through the ticket
verbs (its usual ``ticket.updated`` status change), with an internal line "Follow-up date
reached". A status change before that clears the date (``tickets.apply_status``), so a ticket the
customer answered in between is left alone.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import read_only_transactions, utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Notification, Ticket, TicketStatus
from helpdesk.models.tasks import Task, TaskStatus
from helpdesk.services import audit, events, stream, tickets
from helpdesk.services.announcements import announce
from helpdesk.services.audit import Actor
from helpdesk.services.errors import ServiceError
from helpdesk.services.outbox import queue_mail

log = logging.getLogger("helpdesk.reminders")

REMINDER_PURPOSE = "task.reminder"
BATCH = 100


def fire_reminder(session: Session, task_id: int, seen: datetime) -> bool:
    """Fire the reminder of task ``task_id`` that was read as due at ``seen``, unless someone
    else fired, snoozed, changed or completed it meanwhile. True when this call fired it."""
    now = utcnow()
    claimed = session.execute(
        update(Task)
        .where(Task.id == task_id, Task.next_fire_at == seen, Task.status == TaskStatus.OPEN)
        .values(next_fire_at=None, reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    task = session.get(Task, task_id, populate_existing=True)
    assert task is not None
    agent = task.assignee
    ticket = task.ticket
    session.add(
        Notification(
            agent_id=agent.id, kind=REMINDER_PURPOSE, ticket_id=task.ticket_id, task_id=task.id
        )
    )
    stream.record(
        session,
        "task.reminder",
        "task",
        task.id,
        None,
        ticket_id=task.ticket_id,
        title=task.title,
        assignee_id=agent.id,
        due_at=task.due_at.isoformat(),
        remind_at=seen.isoformat(),
    )
    # Payload of ``notification`` for a reminder (room agent:<id>):
    # {kind: "task.reminder", task_id, title, due_at, ticket_id, number}.
    events.send_event_on_commit(
        session,
        "notification",
        {
            "kind": REMINDER_PURPOSE,
            "task_id": task.id,
            "title": task.title,
            "due_at": task.due_at.isoformat(),
            "ticket_id": task.ticket_id,
            "number": ticket.number if ticket is not None else None,
        },
        rooms=[f"agent:{agent.id}"],
    )
    if agent.active:
        language = agent.language or str(current_app.config["BABEL_DEFAULT_LOCALE"])
        queue_mail(
            session,
            REMINDER_PURPOSE,
            agent.email,
            ticket_id=task.ticket_id,
            language=language,
            payload={"task_id": task.id, "agent_id": agent.id, "remind_at": seen.isoformat()},
        )
    return True


def due_reminders(session: Session, now: datetime, limit: int = BATCH) -> list[tuple[int, Any]]:
    rows = session.execute(
        select(Task.id, Task.next_fire_at)
        .where(Task.next_fire_at <= now)
        .order_by(Task.next_fire_at, Task.id)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


# --- follow-ups ------------------------------------------------------------------------------


def set_follow_up(session: Session, ticket: Ticket, when: datetime | None, actor: Actor) -> None:
    """ "Follow up on <date>" for a pending ticket (None clears it)."""
    if when is not None:
        if when.tzinfo is None:
            raise ServiceError(_("The follow-up date needs a time zone."))
        if ticket.status is not TicketStatus.PENDING:
            raise ServiceError(_("Only a pending ticket can have a follow-up date."))
        if when <= utcnow():
            raise ServiceError(_("Choose a follow-up date in the future."))
    before = ticket.follow_up_at
    if before == when:
        return
    ticket.follow_up_at = when
    stream.ticket_changed(
        session,
        ticket.id,
        actor,
        "follow_up_at",
        before.isoformat() if before else None,
        when.isoformat() if when else None,
    )
    audit.record(
        session,
        ticket,
        actor,
        "ticket.follow_up",
        **{
            "from": before.isoformat() if before else None,
            "to": when.isoformat() if when else None,
        },
    )
    announce(session, ticket)


def follow_up(session: Session, ticket_id: int, seen: datetime) -> bool:
    """Reopen ticket ``ticket_id`` whose follow-up date ``seen`` was reached (once)."""
    ticket = tickets.lock_ticket(session, ticket_id)
    if ticket is None or ticket.follow_up_at != seen:
        return False
    ticket.follow_up_at = None
    if ticket.status is not TicketStatus.PENDING:
        return False
    tickets.set_status(session, ticket, TicketStatus.OPEN, None)
    tickets.add_system_message(session, ticket, _("Follow-up date reached"), follow_up=True)
    return True


def due_follow_ups(session: Session, now: datetime, limit: int = BATCH) -> list[tuple[int, Any]]:
    rows = session.execute(
        select(Ticket.id, Ticket.follow_up_at)
        .where(Ticket.follow_up_at <= now)
        .order_by(Ticket.follow_up_at, Ticket.id)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


# --- the worker's task -------------------------------------------------------------------------


def fire_due(app: Flask) -> int:
    """The worker's task: fire every reminder and follow-up that is due (each in its own
    transaction, so one that fails is retried next round without holding the others)."""
    done = 0
    now = utcnow()
    # A read first, every round: no write lock (SQLite) unless something is due.
    with read_only_transactions(), db.transaction(app) as session:
        reminders = due_reminders(session, now)
        follow_ups = due_follow_ups(session, now)
    for task_id, seen in reminders:
        try:
            with db.transaction(app) as session:
                done += fire_reminder(session, task_id, seen)
        except Exception:
            log.exception("the reminder of task %s failed", task_id)
    for ticket_id, seen in follow_ups:
        try:
            with db.transaction(app) as session:
                done += follow_up(session, ticket_id, seen)
        except Exception:
            log.exception("the follow-up of ticket %s failed", ticket_id)
    return done
