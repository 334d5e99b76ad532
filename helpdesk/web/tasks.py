"""Agents' tasks: "My tasks" (overdue, today, upcoming in the agent's time zone), the Tasks box
of the ticket, customer and organization pages, and a ticket's follow-up date.

Times in forms are the agent's wall clock (``<input type="datetime-local">``), read in their time
zone. Routes live on the agent blueprint; every change goes through ``services.tasks``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _, select_timezone
from helpdesk.models import Agent, Customer, Organization, Ticket
from helpdesk.models.tasks import Recurrence, Task
from helpdesk.services import reminders
from helpdesk.services import tasks as task_verbs
from helpdesk.services.access import access_ticket_by_number
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.web.agent import agent_required, bp, me
from helpdesk.web.auth_views import safe_next

FORM_TIME = "%Y-%m-%dT%H:%M"


def _zone() -> ZoneInfo:
    return ZoneInfo(select_timezone() or "UTC")


def _default_zone() -> str:
    return str(current_app.config.get("TIMEZONE") or "UTC")


def parse_local(raw: str | None, what: str) -> datetime | None:
    """A ``datetime-local`` value on the agent's wall clock, as an aware datetime."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        raise ServiceError(_("%(what)s is not a valid date and time.", what=what)) from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=_zone())


def local_value(value: datetime | None) -> str:
    """``value`` for a ``datetime-local`` input on the agent's wall clock."""
    return value.astimezone(_zone()).strftime(FORM_TIME) if value is not None else ""


def _tomorrow_9() -> datetime:
    zone = _zone()
    day = utcnow().astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(day, time(9, 0), tzinfo=zone)


def nav_counts(agent: Agent) -> tuple[int, int]:
    """(tasks due by the end of today, unread notifications) for the top bar, read once per
    request in one statement (web/notifications.py's badge reads the second)."""
    cached: tuple[int, int] | None = g.get("_nav_counts")
    if cached is None:
        cached = task_verbs.nav_counts(db.session, agent, default_zone=_default_zone())
        g._nav_counts = cached
    return cached


@bp.app_context_processor
def _task_helpers() -> dict[str, Any]:
    def count() -> int:
        user = current_user._get_current_object() if current_user else None
        return nav_counts(user)[0] if isinstance(user, Agent) else 0

    def linked(**link: Any) -> list[Task]:
        return task_verbs.tasks_for(db.session, **link)

    return {
        "due_tasks": count,
        "linked_tasks": linked,
        "task_local_value": local_value,
        "task_default_due": lambda: local_value(_tomorrow_9()),
        "task_agents": lambda: list(
            db.session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name))
        ),
        "task_now": utcnow,
    }


@bp.get("/tasks")
@agent_required
def tasks() -> str:
    mine = task_verbs.my_tasks(db.session, me(), default_zone=_default_zone())
    return render_template("agent/tasks.html", mine=mine, recurrences=list(Recurrence))


@bp.get("/tasks/count")
@agent_required
def tasks_count() -> Response:
    """The navigation's live count (fetched again on ``tasks.changed`` and reminders)."""
    return jsonify({"count": task_verbs.due_count(db.session, me(), default_zone=_default_zone())})


def _back(default: str) -> str:
    return safe_next(request.form.get("next"), default)


def _link_from_form() -> dict[str, Any]:
    link: dict[str, Any] = {}
    raw = request.form.get("ticket", "").strip().lstrip("#")
    if raw:
        if not raw.isdigit():
            raise ServiceError(_("Enter a ticket number, like 1042."))
        link["ticket"] = access_ticket_by_number(db.session, me(), int(raw))
    raw = request.form.get("customer_id", "").strip()
    if raw.isdigit():
        customer = db.session.get(Customer, int(raw))
        if customer is None:
            raise NotFound(_("Customer not found."))
        link["customer"] = customer
    raw = request.form.get("organization_id", "").strip()
    if raw.isdigit():
        org = db.session.get(Organization, int(raw))
        if org is None:
            raise NotFound(_("Organization not found."))
        link["organization"] = org
    return link


def _assignee_from_form() -> Agent | None:
    raw = request.form.get("assignee_id", "").strip()
    if not raw:
        return me()
    agent = db.session.get(Agent, int(raw)) if raw.isdigit() else None
    if agent is None:
        raise ServiceError(_("Choose who the task is for."))
    return agent


@bp.post("/tasks")
@agent_required
def task_create() -> Response:
    back = _back(url_for("agent.tasks"))
    try:
        link = _link_from_form()
        ticket: Ticket | None = link.get("ticket")
        title = request.form.get("title", "").strip()
        if not title and ticket is not None:
            # One click from a ticket: "Follow up: <subject>".
            title = _("Follow up: %(subject)s", subject=ticket.subject)
        due = parse_local(request.form.get("due_at"), _("The due time")) or _tomorrow_9()
        task_verbs.create_task(
            db.session,
            me(),
            title=title,
            due_at=due,
            remind_at=parse_local(request.form.get("remind_at"), _("The reminder time")),
            notes=request.form.get("notes", ""),
            recurrence=request.form.get("recurrence") or None,
            assignee=_assignee_from_form(),
            ticket=ticket,
            customer=link.get("customer") or (ticket.customer if ticket is not None else None),
            organization=link.get("organization"),
        )
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back)
    db.session.commit()
    flash(_("Task added."), "success")
    return redirect(back)


def _task(task_id: int) -> Task:
    return task_verbs.access_task(db.session, me(), task_id)


@bp.post("/tasks/<int:task_id>/complete")
@agent_required
def task_complete(task_id: int) -> Response:
    task = _task(task_id)
    following = task_verbs.complete_task(db.session, task, me())
    db.session.commit()
    if following is not None:
        flash(_("Done. The next one is due %(when)s.", when=_fmt(following.due_at)), "success")
    else:
        flash(_("Task done."), "success")
    return redirect(_back(url_for("agent.tasks")))


def _fmt(value: datetime) -> str:
    from helpdesk.i18n import format_datetime

    return format_datetime(value, "medium")


@bp.post("/tasks/<int:task_id>/reopen")
@agent_required
def task_reopen(task_id: int) -> Response:
    task_verbs.reopen_task(db.session, _task(task_id), me())
    db.session.commit()
    return redirect(_back(url_for("agent.tasks")))


@bp.post("/tasks/<int:task_id>/snooze")
@agent_required
def task_snooze(task_id: int) -> Response:
    task = _task(task_id)
    choice = request.form.get("for", "1h")
    until = _tomorrow_9() if choice == "tomorrow" else utcnow() + timedelta(hours=1)
    task_verbs.snooze_task(db.session, task, me(), until)
    db.session.commit()
    flash(_("I will remind you again %(when)s.", when=_fmt(until)), "success")
    return redirect(_back(url_for("agent.tasks")))


@bp.post("/tasks/<int:task_id>/delete")
@agent_required
def task_delete(task_id: int) -> Response:
    task_verbs.delete_task(db.session, _task(task_id), me())
    db.session.commit()
    flash(_("Task deleted."), "success")
    return redirect(_back(url_for("agent.tasks")))


@bp.route("/tasks/<int:task_id>/edit", methods=["GET", "POST"])
@agent_required
def task_edit(task_id: int) -> str | Response | tuple[str, int]:
    task = _task(task_id)
    if request.method == "GET":
        return render_template("agent/task_edit.html", task=task, recurrences=list(Recurrence))
    try:
        due = parse_local(request.form.get("due_at"), _("The due time"))
        task_verbs.update_task(
            db.session,
            task,
            me(),
            title=request.form.get("title", ""),
            notes=request.form.get("notes", ""),
            due_at=due,
            remind_at=parse_local(request.form.get("remind_at"), _("The reminder time")),
            recurrence=request.form.get("recurrence") or None,
            assignee=_assignee_from_form(),
        )
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        task = _task(task_id)
        return render_template("agent/task_edit.html", task=task, recurrences=list(Recurrence)), 400
    db.session.commit()
    flash(_("Task saved."), "success")
    return redirect(url_for("agent.tasks"))


@bp.post("/tickets/<int:number>/follow-up")
@agent_required
def follow_up(number: int) -> Response:
    ticket = access_ticket_by_number(db.session, me(), number)
    raw = request.form.get("follow_up_on", "").strip()
    when: datetime | None = None
    if raw and request.form.get("clear") != "1":
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            flash(_("The follow-up date is not a valid date."), "error")
            return redirect(url_for("agent.ticket", number=number))
        # The start of the agent's working day on that date.
        when = datetime.combine(day, time(9, 0), tzinfo=_zone())
    try:
        reminders.set_follow_up(db.session, ticket, when, me())
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("agent.ticket", number=number))
    db.session.commit()
    return redirect(url_for("agent.ticket", number=number))
