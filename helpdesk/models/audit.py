"""Audit trail: who changed what on a ticket, and when."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow

if TYPE_CHECKING:
    from helpdesk.models.agents import Agent
    from helpdesk.models.customers import Customer


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    # Exactly one of agent/customer, or neither for the system (worker, filters).
    actor_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    actor_customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL")
    )
    # Dotted verb, e.g. "ticket.created", "ticket.status", "ticket.assignee", "message.failed".
    action: Mapped[str] = mapped_column(String(64))
    # {"from": ..., "to": ...} for changes; free-form details otherwise.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor_agent: Mapped[Agent | None] = relationship()
    actor_customer: Mapped[Customer | None] = relationship()


Index("ix_audit_events_ticket_id_id", AuditEvent.ticket_id, AuditEvent.id)
