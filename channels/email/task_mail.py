"""The reminder mail of a task, to its assignee.

The core queues it when the reminder fires (``helpdesk.services.reminders``, outbox purpose
``task.reminder``, in the transaction that claims the reminder, so it is queued exactly once);
this composer renders it in the agent's language and time zone when the outbox claims it."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from channels.email.smtp import PreparedMail
from channels.email.staff_mail import mail_to_agent
from helpdesk import i18n
from helpdesk.i18n import _
from helpdesk.links import base_url
from helpdesk.models import Agent, OutboundMail, Task
from helpdesk.services.outbox import DeliveryError


def compose_task_reminder(app: Flask, session: Session, row: OutboundMail) -> PreparedMail:
    payload = row.payload or {}
    agent = session.get(Agent, int(payload.get("agent_id") or 0))
    if agent is None or not agent.active:
        raise DeliveryError("the agent is gone or deactivated", permanent=True)
    task = session.get(Task, int(payload.get("task_id") or 0))
    if task is None:
        raise DeliveryError("the task was deleted", permanent=True)
    root = base_url(app)

    def build() -> tuple[str, dict[str, Any]]:
        return _("Reminder: %(title)s", title=task.title), {
            "task": task,
            "due": i18n.format_datetime(task.due_at, "medium"),
            "ticket": task.ticket,
            "customer": task.customer,
            "ticket_link": f"{root}/agent/tickets/{task.ticket.number}" if task.ticket else None,
            "link": f"{root}/agent/tasks",
        }

    return mail_to_agent(app, row, agent, "task_reminder", build)
