"""Tasks: a to-do with a due time and an optional reminder, for one agent, linked to a ticket, a
customer or an organization (or nothing).

The reminder is a durable timer in this table: ``next_fire_at`` is the reminder still to fire
(``remind_at`` while it has not fired, NULL once it has, or when the task is done). The worker
claims a due reminder with a conditional UPDATE (``WHERE next_fire_at = <what it read>``) in the
transaction that writes the notification, the mail and the event, so a reminder fires once
whichever worker gets there first, and one missed while no worker ran fires on the next round.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models._types import str_enum

if TYPE_CHECKING:
    from helpdesk.models.agents import Agent
    from helpdesk.models.customers import Customer, Organization
    from helpdesk.models.tickets import Ticket


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class Recurrence(enum.StrEnum):
    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TaskStatus] = mapped_column(
        str_enum(TaskStatus, "task_status"), default=TaskStatus.OPEN
    )
    recurrence: Mapped[Recurrence] = mapped_column(
        str_enum(Recurrence, "task_recurrence"), default=Recurrence.NONE
    )
    due_at: Mapped[datetime]
    remind_at: Mapped[datetime | None]
    # The durable timer: see the module's docstring.
    next_fire_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]  # when the reminder last fired
    assignee_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]

    assignee: Mapped[Agent] = relationship(foreign_keys=[assignee_id])
    created_by: Mapped[Agent | None] = relationship(foreign_keys=[created_by_id])
    ticket: Mapped[Ticket | None] = relationship()
    customer: Mapped[Customer | None] = relationship()
    organization: Mapped[Organization | None] = relationship()


# "My open tasks by due time" (the My tasks page, its count) is one index range.
Index("ix_tasks_assignee_status_due", Task.assignee_id, Task.status, Task.due_at, Task.id)
# The worker's "reminders due now", and the next one to wake up for.
Index("ix_tasks_next_fire_at", Task.next_fire_at)
