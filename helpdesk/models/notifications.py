"""In-app notifications for agents (mentions in internal notes, and later other nudges)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow

if TYPE_CHECKING:
    from helpdesk.models.agents import Agent
    from helpdesk.models.tasks import Task
    from helpdesk.models.tickets import Ticket


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # "mention", "task.reminder"
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    actor_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    ticket: Mapped[Ticket | None] = relationship()
    actor: Mapped[Agent | None] = relationship(foreign_keys=[actor_agent_id])
    task: Mapped[Task | None] = relationship()


# "My unread notifications, newest first" is one index range.
Index("ix_notifications_agent_unread", Notification.agent_id, Notification.read_at, Notification.id)
