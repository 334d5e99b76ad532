"""``/api/v1/tasks``: agents' tasks with reminders, linked to a ticket, a customer or an
organization. Through ``services.tasks``, the verbs of the My tasks page (so the same
``task.*`` events); the reminder fires in the worker (``services.reminders``).

Times are ISO 8601 with an offset (``2026-12-08T09:00:00+06:00``); a time without one, or no
time at all, is a 422 naming the field. ``assignee`` is an agent's email or id (default: the
token's agent); ``ticket`` is a ticket's number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import selectinload

from helpdesk.api import pagination
from helpdesk.api.auth import me
from helpdesk.api.common import Invalid, errors_doc, parse_time
from helpdesk.api.idempotency import DOC_PARAMETER, commit_response, idempotent
from helpdesk.api.schemas import ID, date_time
from helpdesk.api.serialize import iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Agent, Customer, Organization, Ticket
from helpdesk.models.tasks import Recurrence, Task, TaskStatus
from helpdesk.services import tasks as task_verbs
from helpdesk.services.errors import ServiceError

blp = Blueprint(
    "api_tasks",
    __name__,
    url_prefix="/api/v1/tasks",
    description="Tasks: a due time, a reminder (in-app and by mail), an assignee, daily or "
    "weekly recurrence, links to a ticket, a customer or an organization; complete, snooze.",
)

STATUSES = [s.value for s in TaskStatus]
RECURRENCES = [r.value for r in Recurrence]
_ASSIGNEE = "An agent's email or id (default: the token's agent); in a filter also `me`"  # doc


# --- shapes ------------------------------------------------------------------------------------


def _dt(description: str, **kw: Any) -> ma.fields.String:
    return ma.fields.String(metadata={"format": "date-time", "description": description}, **kw)


class Ref(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class AgentRef(Ref):
    email = ma.fields.String(required=True)


class TicketRef(ma.Schema):
    id = ma.fields.Integer(required=True)
    number = ma.fields.Integer(required=True)
    subject = ma.fields.String(required=True)


class TaskOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    notes = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(STATUSES))
    due_at = date_time(required=True)
    remind_at = date_time(required=True, allow_none=True)
    reminded_at = _dt("When the reminder last fired", required=True, allow_none=True)
    recurrence = ma.fields.String(required=True, validate=validate.OneOf(RECURRENCES))
    assignee = ma.fields.Nested(AgentRef, required=True)
    ticket = ma.fields.Nested(TicketRef, required=True, allow_none=True)
    customer = ma.fields.Nested(Ref, required=True, allow_none=True)
    organization = ma.fields.Nested(Ref, required=True, allow_none=True)
    created_by = ma.fields.Nested(AgentRef, required=True, allow_none=True)
    created_at = date_time(required=True)
    updated_at = date_time(required=True)
    completed_at = date_time(required=True, allow_none=True)


class TaskCompleted(TaskOut):
    next_task = ma.fields.Nested(
        TaskOut,
        required=False,
        allow_none=True,
        metadata={"description": "Completing a daily or weekly task: its next occurrence"},
    )


class TaskPage(ma.Schema):
    tasks = ma.fields.List(ma.fields.Nested(TaskOut), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


class TaskQuery(ma.Schema):
    assignee = ma.fields.String(
        validate=validate.Length(1, 320), metadata={"description": _ASSIGNEE}
    )
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    due_before = date_time(validate=validate.Length(1, 64))
    due_after = date_time(validate=validate.Length(1, 64))
    ticket = ma.fields.Integer(validate=ID, metadata={"description": "A ticket's number"})
    customer = ma.fields.Integer(validate=ID)
    organization = ma.fields.Integer(validate=ID)
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=25)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


class TaskCreate(ma.Schema):
    title = ma.fields.String(required=True, validate=validate.Length(1, task_verbs.MAX_TITLE))
    due_at = date_time(required=True, validate=validate.Length(1, 64))
    remind_at = date_time(allow_none=True, validate=validate.Length(1, 64))
    assignee = ma.fields.String(
        validate=validate.Length(1, 320), metadata={"description": _ASSIGNEE}
    )
    notes = ma.fields.String(validate=validate.Length(max=task_verbs.MAX_NOTES))
    recurrence = ma.fields.String(validate=validate.OneOf(RECURRENCES))
    ticket = ma.fields.Integer(
        validate=ID, allow_none=True, metadata={"description": "A ticket's number"}
    )
    customer = ma.fields.Integer(validate=ID, allow_none=True)
    organization = ma.fields.Integer(validate=ID, allow_none=True)


class TaskPatch(ma.Schema):
    title = ma.fields.String(validate=validate.Length(1, task_verbs.MAX_TITLE))
    due_at = date_time(validate=validate.Length(1, 64))
    remind_at = date_time(allow_none=True, validate=validate.Length(1, 64))
    assignee = ma.fields.String(
        validate=validate.Length(1, 320), metadata={"description": _ASSIGNEE}
    )
    notes = ma.fields.String(validate=validate.Length(max=task_verbs.MAX_NOTES))
    recurrence = ma.fields.String(validate=validate.OneOf(RECURRENCES))
    ticket = ma.fields.Integer(validate=ID, allow_none=True)
    customer = ma.fields.Integer(validate=ID, allow_none=True)
    organization = ma.fields.Integer(validate=ID, allow_none=True)
    status = ma.fields.String(
        validate=validate.OneOf(STATUSES),
        metadata={"description": "`done` completes the task (a recurring one gets its next)"},
    )
    snooze_until = _dt("Remind again at this time (in the future)", validate=validate.Length(1, 64))


# --- JSON --------------------------------------------------------------------------------------


def _agent_ref(agent: Agent | None) -> dict[str, Any] | None:
    return None if agent is None else {"id": agent.id, "name": agent.name, "email": agent.email}


def task_json(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "title": t.title,
        "notes": t.notes or "",
        "status": t.status.value,
        "due_at": iso(t.due_at),
        "remind_at": iso(t.remind_at),
        "reminded_at": iso(t.reminded_at),
        "recurrence": t.recurrence.value,
        "assignee": _agent_ref(t.assignee),
        "ticket": None
        if t.ticket is None
        else {"id": t.ticket.id, "number": t.ticket.number, "subject": t.ticket.subject},
        "customer": None if t.customer is None else {"id": t.customer.id, "name": t.customer.name},
        "organization": None
        if t.organization is None
        else {"id": t.organization.id, "name": t.organization.name},
        "created_by": _agent_ref(t.created_by),
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "completed_at": iso(t.completed_at),
    }


def task_payload(session: Any, task_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a task: as GET returns it (None: deleted)."""
    task = session.get(Task, task_id)
    return task_json(task) if task is not None else None


# --- parsing -----------------------------------------------------------------------------------


def _assignee(value: str, name: str = "assignee") -> Agent:
    raw = value.strip()
    agent: Agent | None = None
    if raw.lower() == "me":
        return me()
    if raw.isdigit():
        number = int(raw)
        agent = db.session.get(Agent, number) if 0 < number < 2**31 else None
    else:
        agent = db.session.scalar(select(Agent).where(func.lower(Agent.email) == raw.lower()))
    if agent is None or not agent.active:
        raise Invalid({name: _("No active agent with this email or id.")})
    return agent


def _link(kind: str, value: int | None) -> Any:
    if value is None:
        return None
    if kind == "ticket":
        found: Any = db.session.scalar(select(Ticket).where(Ticket.number == value))
    elif kind == "customer":
        found = db.session.get(Customer, value)
    else:
        found = db.session.get(Organization, value)
    if found is None:
        raise Invalid({kind: _("Not found.")})
    return found


def _task(task_id: int) -> Task:
    return task_verbs.access_task(db.session, me(), task_id)


def _sorted(q: Select[Any], cursor: str | None) -> Select[Any]:
    """Soonest due first (then id): a keyset cursor over (due_at, id)."""
    if cursor:
        values = pagination.decode(cursor, "tasks")
        try:
            due = datetime.fromisoformat(str(values[0]))
            last = int(values[1])
            if due.tzinfo is None or not 0 < last < 2**31 or len(values) != 2:
                raise ValueError
        except (ValueError, IndexError, TypeError):
            raise ServiceError(_("Invalid page cursor."), code="invalid_cursor") from None
        q = q.where(tuple_(Task.due_at, Task.id) > tuple_(due, last))
    return q.order_by(Task.due_at, Task.id)


# --- views -------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.arguments(TaskQuery, location="query", as_kwargs=True)
@blp.response(200, TaskPage)
@errors_doc(blp, 400, 401, 422, 429)
def list_tasks(**args: Any) -> dict[str, Any]:
    """Tasks, soonest due first; filter by assignee (`me`, an email or id), status, due
    before/after a time, ticket (number), customer or organization."""
    limit = int(args["limit"])
    q = select(Task)
    if args.get("assignee"):
        q = q.where(Task.assignee_id == _assignee(args["assignee"]).id)
    if args.get("status"):
        q = q.where(Task.status == TaskStatus(args["status"]))
    if args.get("due_before"):
        q = q.where(Task.due_at < parse_time(args["due_before"], "due_before"))
    if args.get("due_after"):
        q = q.where(Task.due_at >= parse_time(args["due_after"], "due_after"))
    if args.get("ticket") is not None:
        ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.number == args["ticket"]))
        q = q.where(Task.ticket_id == (ticket_id or 0))
    if args.get("customer") is not None:
        q = q.where(Task.customer_id == args["customer"])
    if args.get("organization") is not None:
        q = q.where(Task.organization_id == args["organization"])
    q = (
        _sorted(q, args.get("cursor"))
        .limit(limit + 1)
        .options(
            selectinload(Task.assignee),
            selectinload(Task.ticket),
            selectinload(Task.customer),
            selectinload(Task.organization),
            selectinload(Task.created_by),
        )
    )
    rows = list(db.session.scalars(q))
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return {
        "tasks": [task_json(t) for t in rows[:limit]],
        "next_cursor": pagination.encode("tasks", [last.due_at.isoformat(), last.id])
        if last is not None
        else None,
    }


@blp.route("/<int:task_id>", methods=["GET"])
@blp.response(200, TaskOut)
@errors_doc(blp, 401, 404, 429)
def get_task(task_id: int) -> dict[str, Any]:
    """One task."""
    return task_json(_task(task_id))


@blp.route("", methods=["POST"])
@blp.arguments(TaskCreate)
@blp.response(201, TaskOut)
@blp.doc(parameters=[DOC_PARAMETER])
@errors_doc(blp, 400, 401, 403, 422, 429)
@idempotent
def create_task(data: dict[str, Any]) -> Any:
    """A task for an agent (the token's by default), with an optional reminder that fires as
    an in-app notification and a mail to the assignee."""
    due = parse_time(data["due_at"], "due_at")
    remind = parse_time(data.get("remind_at"), "remind_at")
    assignee = _assignee(data["assignee"]) if data.get("assignee") else me()
    ticket = _link("ticket", data.get("ticket"))
    customer = _link("customer", data.get("customer"))
    task = task_verbs.create_task(
        db.session,
        me(),
        title=data["title"],
        due_at=due,  # type: ignore[arg-type]
        remind_at=remind,
        assignee=assignee,
        notes=data.get("notes"),
        recurrence=data.get("recurrence"),
        ticket=ticket,
        customer=customer if customer is not None else (ticket.customer if ticket else None),
        organization=_link("organization", data.get("organization")),
    )
    return commit_response(task_json(task), 201)


@blp.route("/<int:task_id>", methods=["PATCH"])
@blp.arguments(TaskPatch)
@blp.response(200, TaskCompleted)
@errors_doc(blp, 400, 401, 403, 404, 422, 429)
def update_task(changes: dict[str, Any], task_id: int) -> Any:
    """Change the fields given; `status: "done"` completes the task (a daily or weekly one
    answers with `next_task`, its next occurrence), `"open"` reopens it; `snooze_until` moves
    the reminder."""
    task = _task(task_id)
    values: dict[str, Any] = {}
    for name in ("title", "notes", "recurrence"):
        if name in changes:
            values[name] = changes[name]
    if "due_at" in changes:
        values["due_at"] = parse_time(changes["due_at"], "due_at")
    if "remind_at" in changes:
        values["remind_at"] = parse_time(changes["remind_at"], "remind_at")
    if "assignee" in changes:
        values["assignee"] = _assignee(changes["assignee"])
    for kind in ("ticket", "customer", "organization"):
        if kind in changes:
            values[kind] = _link(kind, changes[kind])
    snooze = (
        parse_time(changes["snooze_until"], "snooze_until") if "snooze_until" in changes else None
    )
    if values:
        task_verbs.update_task(db.session, task, me(), **values)
    if snooze is not None:
        task_verbs.snooze_task(db.session, task, me(), snooze)
    following: Task | None = None
    if changes.get("status") == TaskStatus.DONE.value:
        following = task_verbs.complete_task(db.session, task, me())
    elif changes.get("status") == TaskStatus.OPEN.value:
        task_verbs.reopen_task(db.session, task, me())
    db.session.flush()
    body = task_json(task)
    if following is not None:
        body["next_task"] = task_json(following)
    return commit_response(body, 200)


@blp.route("/<int:task_id>", methods=["DELETE"])
@blp.response(204)
@errors_doc(blp, 401, 403, 404, 429)
def delete_task(task_id: int) -> Any:
    """Delete a task."""
    task_verbs.delete_task(db.session, _task(task_id), me())
    db.session.commit()
    return "", 204
