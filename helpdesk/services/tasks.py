"""Task verbs: create, change, complete (the next one of a recurring task), reopen, snooze,
delete; and the reads of "My tasks" (overdue, today, upcoming in the agent's time zone).

Every agent sees every task (as every agent sees every ticket); a task belongs to its assignee's
list. Each verb records its stream event (``task.created``, ``task.updated``, ``task.completed``,
``task.deleted``) and tells the assignee's browsers that their list changed (``tasks.changed``
on ``agent:<id>``: the navigation's count refreshes). The reminder itself is fired by the worker
(:mod:`helpdesk.services.reminders`); setting or snoozing it arms ``next_fire_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from helpdesk.db import utcnow
from helpdesk.i18n import _, is_timezone
from helpdesk.models import Agent, Customer, Notification, Organization, Ticket
from helpdesk.models.tasks import Recurrence, Task, TaskStatus
from helpdesk.services import events, stream
from helpdesk.services.errors import NotFound, ServiceError

MAX_TITLE = 300
MAX_NOTES = 10_000


def task_data(task: Task) -> dict[str, Any]:
    """What the stream's task events carry (the API's GET adds names and links)."""
    return {
        "title": task.title,
        "status": task.status.value,
        "due_at": _iso(task.due_at),
        "remind_at": _iso(task.remind_at),
        "recurrence": task.recurrence.value,
        "assignee_id": task.assignee_id,
        "customer_id": task.customer_id,
        "organization_id": task.organization_id,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _changed(session: Session, agent_ids: set[int | None]) -> None:
    # Payload of ``tasks.changed`` (room agent:<id>): {} — the page asks for its new count.
    rooms = [f"agent:{i}" for i in sorted(a for a in agent_ids if a is not None)]
    if rooms:
        events.send_event_on_commit(session, "tasks.changed", {}, rooms=rooms)


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ServiceError(_("%(what)s needs a time zone offset.", what=what))
    return value.astimezone(UTC)


def _title(value: str) -> str:
    title = " ".join((value or "").split())
    if not title:
        raise ServiceError(_("A task needs a title."))
    if len(title) > MAX_TITLE:
        raise ServiceError(_("The title is too long (at most %(n)s characters).", n=MAX_TITLE))
    return title


def _notes(value: str | None) -> str:
    notes = (value or "").strip()
    if len(notes) > MAX_NOTES:
        raise ServiceError(_("The notes are too long."))
    return notes


def _recurrence(value: Recurrence | str | None) -> Recurrence:
    try:
        return Recurrence(value or Recurrence.NONE)
    except ValueError:
        raise ServiceError(_("Repeat must be none, daily or weekly.")) from None


def _assignee(agent: Agent | None) -> Agent:
    if agent is None:
        raise ServiceError(_("Choose who the task is for."))
    if not agent.active:
        raise ServiceError(_("%(name)s is deactivated and cannot take tasks.", name=agent.name))
    return agent


def _arm(task: Task) -> None:
    """The reminder's timer follows ``remind_at`` while the task is open."""
    task.next_fire_at = task.remind_at if task.status is TaskStatus.OPEN else None


def create_task(
    session: Session,
    actor: Agent | None,
    *,
    title: str,
    due_at: datetime,
    assignee: Agent | None,
    remind_at: datetime | None = None,
    notes: str | None = "",
    recurrence: Recurrence | str | None = None,
    ticket: Ticket | None = None,
    customer: Customer | None = None,
    organization: Organization | None = None,
) -> Task:
    due = _aware(due_at, _("The due time"))
    if due is None:
        raise ServiceError(_("A task needs a due time."))
    now = utcnow()
    task = Task(
        title=_title(title),
        notes=_notes(notes),
        status=TaskStatus.OPEN,
        recurrence=_recurrence(recurrence),
        due_at=due,
        remind_at=_aware(remind_at, _("The reminder time")),
        assignee=_assignee(assignee),
        created_by=actor,
        ticket=ticket,
        customer=customer,
        organization=organization,
        created_at=now,
        updated_at=now,
    )
    _arm(task)
    session.add(task)
    session.flush()
    stream.record(
        session,
        "task.created",
        "task",
        task.id,
        actor,
        ticket_id=task.ticket_id,
        **task_data(task),
    )
    _changed(session, {task.assignee_id})
    return task


def update_task(session: Session, task: Task, actor: Agent | None, **changes: Any) -> Task:
    """Change some of ``title, notes, due_at, remind_at, recurrence, assignee, ticket,
    customer, organization`` (a new ``remind_at`` re-arms the reminder)."""
    before = task_data(task)
    before_links = {"ticket_id": task.ticket_id}
    old_assignee = task.assignee_id
    if "title" in changes:
        task.title = _title(changes["title"])
    if "notes" in changes:
        task.notes = _notes(changes["notes"])
    if "due_at" in changes:
        due = _aware(changes["due_at"], _("The due time"))
        if due is None:
            raise ServiceError(_("A task needs a due time."))
        task.due_at = due
    if "remind_at" in changes:
        remind = _aware(changes["remind_at"], _("The reminder time"))
        if remind != task.remind_at:
            task.remind_at = remind
            _arm(task)
    if "recurrence" in changes:
        task.recurrence = _recurrence(changes["recurrence"])
    if "assignee" in changes:
        task.assignee = _assignee(changes["assignee"])
    for link in ("ticket", "customer", "organization"):
        if link in changes:
            setattr(task, link, changes[link])
    session.flush()
    after = task_data(task)
    diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if task.ticket_id != before_links["ticket_id"]:
        diff["ticket_id"] = {"from": before_links["ticket_id"], "to": task.ticket_id}
    if not diff:
        return task
    task.updated_at = utcnow()
    stream.record(
        session, "task.updated", "task", task.id, actor, ticket_id=task.ticket_id, changes=diff
    )
    _changed(session, {old_assignee, task.assignee_id})
    return task


def _next_due(task: Task, after: datetime) -> timedelta:
    """How far the next occurrence moves: whole days or weeks on the assignee's wall clock (a
    daily 09:00 stays 09:00 across a summer-time change), past ``after``."""
    step = timedelta(days=1 if task.recurrence is Recurrence.DAILY else 7)
    zone = agent_zone(task.assignee) if task.assignee else ZoneInfo("UTC")
    local = task.due_at.astimezone(zone)
    nxt = local + step
    while nxt.astimezone(UTC) <= after:
        nxt += step
    # Wall-clock arithmetic: the same local time, then back to UTC.
    naive = nxt.replace(tzinfo=None)
    return naive.replace(tzinfo=zone).astimezone(UTC) - task.due_at


def complete_task(session: Session, task: Task, actor: Agent | None) -> Task | None:
    """Mark done; a daily or weekly task gets its next occurrence (returned), due one step after
    this one (the first still ahead), with its reminder as far before it as this one's."""
    if task.status is TaskStatus.DONE:
        return None
    now = utcnow()
    task.status = TaskStatus.DONE
    task.completed_at = now
    task.updated_at = now
    _arm(task)
    following: Task | None = None
    if task.recurrence is not Recurrence.NONE:
        shift = _next_due(task, now)
        following = create_task(
            session,
            actor,
            title=task.title,
            notes=task.notes,
            due_at=task.due_at + shift,
            remind_at=task.remind_at + shift if task.remind_at else None,
            assignee=task.assignee if task.assignee.active else actor,
            recurrence=task.recurrence,
            ticket=task.ticket,
            customer=task.customer,
            organization=task.organization,
        )
    session.flush()
    stream.record(
        session,
        "task.completed",
        "task",
        task.id,
        actor,
        ticket_id=task.ticket_id,
        title=task.title,
        assignee_id=task.assignee_id,
        next_task_id=following.id if following else None,
    )
    _changed(session, {task.assignee_id})
    return following


def reopen_task(session: Session, task: Task, actor: Agent | None) -> None:
    if task.status is TaskStatus.OPEN:
        return
    task.status = TaskStatus.OPEN
    task.completed_at = None
    task.updated_at = utcnow()
    # A reminder that already fired does not fire again; one still ahead is armed again.
    if task.remind_at is not None and (task.reminded_at is None or task.remind_at > utcnow()):
        task.next_fire_at = task.remind_at
    session.flush()
    stream.record(
        session,
        "task.updated",
        "task",
        task.id,
        actor,
        ticket_id=task.ticket_id,
        changes={"status": {"from": "done", "to": "open"}},
    )
    _changed(session, {task.assignee_id})


def snooze_task(session: Session, task: Task, actor: Agent | None, until: datetime) -> None:
    """Remind again at ``until`` (also after the reminder fired)."""
    when = _aware(until, _("The snooze time"))
    if when is None or when <= utcnow():
        raise ServiceError(_("Snooze until a time in the future."))
    if task.status is not TaskStatus.OPEN:
        raise ServiceError(_("A completed task cannot be snoozed."))
    before = _iso(task.remind_at)
    task.remind_at = when
    _arm(task)
    task.updated_at = utcnow()
    session.flush()
    stream.record(
        session,
        "task.updated",
        "task",
        task.id,
        actor,
        ticket_id=task.ticket_id,
        changes={"remind_at": {"from": before, "to": _iso(when)}},
        snoozed=True,
    )
    _changed(session, {task.assignee_id})


def delete_task(session: Session, task: Task, actor: Agent | None) -> None:
    stream.record(
        session,
        "task.deleted",
        "task",
        task.id,
        actor,
        ticket_id=task.ticket_id,
        title=task.title,
        assignee_id=task.assignee_id,
    )
    _changed(session, {task.assignee_id})
    session.delete(task)
    session.flush()


def access_task(session: Session, actor: Agent | None, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None or actor is None or not actor.active:
        raise NotFound(_("Task not found."))
    return task


# --- reads ---------------------------------------------------------------------------------


def agent_zone(agent: Agent, default: str = "UTC") -> ZoneInfo:
    name = agent.timezone
    return ZoneInfo(name if name and is_timezone(name) else default)


def day_bounds(agent: Agent, now: datetime, default_zone: str = "UTC") -> tuple[datetime, datetime]:
    """The start of the agent's today and of their tomorrow, in UTC."""
    zone = agent_zone(agent, default_zone)
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class MyTasks:
    overdue: list[Task]
    today: list[Task]
    upcoming: list[Task]

    @property
    def due_count(self) -> int:
        return len(self.overdue) + len(self.today)


_LOAD = (selectinload(Task.ticket), selectinload(Task.customer), selectinload(Task.organization))


def my_tasks(
    session: Session, agent: Agent, now: datetime | None = None, default_zone: str = "UTC"
) -> MyTasks:
    """The agent's open tasks: overdue (due before now), today (the rest of their day),
    upcoming (after; the first 200)."""
    now = now or utcnow()
    _, end = day_bounds(agent, now, default_zone)
    rows = list(
        session.scalars(
            select(Task)
            .where(Task.assignee_id == agent.id, Task.status == TaskStatus.OPEN)
            .order_by(Task.due_at, Task.id)
            .options(*_LOAD)
            .limit(1000)
        )
    )
    return MyTasks(
        overdue=[t for t in rows if t.due_at < now],
        today=[t for t in rows if now <= t.due_at < end],
        upcoming=[t for t in rows if t.due_at >= end][:200],
    )


def due_count(
    session: Session, agent: Agent, now: datetime | None = None, default_zone: str = "UTC"
) -> int:
    """The navigation's count: the agent's open tasks due by the end of their today."""
    now = now or utcnow()
    _, end = day_bounds(agent, now, default_zone)
    return int(
        session.scalar(
            select(func.count())
            .select_from(Task)
            .where(Task.assignee_id == agent.id, Task.status == TaskStatus.OPEN, Task.due_at < end)
        )
        or 0
    )


def nav_counts(
    session: Session, agent: Agent, now: datetime | None = None, default_zone: str = "UTC"
) -> tuple[int, int]:
    """The top bar's two badges in one statement (every agent page shows them): the agent's
    open tasks due by the end of their today, and their unread notifications."""
    now = now or utcnow()
    _, end = day_bounds(agent, now, default_zone)
    due = (
        select(func.count())
        .select_from(Task)
        .where(Task.assignee_id == agent.id, Task.status == TaskStatus.OPEN, Task.due_at < end)
        .scalar_subquery()
    )
    unread = (
        select(func.count())
        .select_from(Notification)
        .where(Notification.agent_id == agent.id, Notification.read_at.is_(None))
        .scalar_subquery()
    )
    row = session.execute(select(due, unread)).one()
    return int(row[0] or 0), int(row[1] or 0)


def tasks_for(
    session: Session,
    *,
    ticket: Ticket | None = None,
    customer: Customer | None = None,
    organization: Organization | None = None,
    limit: int = 50,
) -> list[Task]:
    """Tasks linked to one ticket, customer or organization: open first by due time, then
    the latest done."""
    query = select(Task).options(*_LOAD, selectinload(Task.assignee))
    if ticket is not None:
        query = query.where(Task.ticket_id == ticket.id)
    elif customer is not None:
        query = query.where(Task.customer_id == customer.id)
    elif organization is not None:
        query = query.where(Task.organization_id == organization.id)
    else:
        return []
    rows = list(session.scalars(query.order_by(Task.due_at, Task.id).limit(500)))
    open_ = [t for t in rows if t.status is TaskStatus.OPEN]
    done = sorted(
        (t for t in rows if t.status is TaskStatus.DONE),
        key=lambda t: t.completed_at or t.updated_at,
        reverse=True,
    )
    return (open_ + done)[:limit]
