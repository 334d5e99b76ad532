"""Tickets: the unit of work in the one queue, whatever channel it started on."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DDL, JSON, Column, ForeignKey, Index, String, Table, event
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models._types import ChannelKind, Priority, TicketStatus, str_enum

if TYPE_CHECKING:
    from helpdesk.models.agents import Agent, Team
    from helpdesk.models.channels import Channel
    from helpdesk.models.customers import Customer
    from helpdesk.models.messages import Message

ticket_tags = Table(
    "ticket_tags",
    Base.metadata,
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    # "tickets with tag X" walks this index, then the tickets' primary key.
    Index("ix_ticket_tags_tag_id_ticket_id", "tag_id", "ticket_id"),
)

# Customers on a ticket besides its owner (Cc'd addresses): they may read and reply.
ticket_participants = Table(
    "ticket_participants",
    Base.metadata,
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_ticket_participants_customer_id", "customer_id"),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class TicketCounter(Base):
    """One row handing out human ticket numbers (#1001, #1002 ...) without gaps or races."""

    __tablename__ = "ticket_counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int]


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus, "ticket_status"), default=TicketStatus.NEW
    )
    # True while the ticket still needs work (new/open/pending). Kept in step with status by the
    # services so the queue's busiest views are a single index range, not an IN + sort.
    active: Mapped[bool] = mapped_column(default=True)
    priority: Mapped[int] = mapped_column(default=Priority.NORMAL)
    channel: Mapped[ChannelKind] = mapped_column(str_enum(ChannelKind, "ticket_channel"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(String(8))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Incremented on every change: the agent UI sends it back so a stale reply can be detected.
    version: Mapped[int] = mapped_column(default=1)
    # The ticket's id in the helpdesk it was imported from (services/imports.py), unique: a
    # re-run of an import recognises what it brought over already. None for tickets made here.
    external_id: Mapped[str | None] = mapped_column(String(255))
    # "Follow up on <date>": a pending ticket reopens then with a note (services/follow_ups.py);
    # cleared when the ticket changes status first (the customer replied, an agent solved it).
    follow_up_at: Mapped[datetime | None]
    # SLA (services/sla.py): the policy that applies, each running target's due time, the
    # earliest of them (the queue's "SLA due" and "breaching soon"), the next warning or breach
    # to fire (the worker's timer, through its index), and the clocks behind them.
    # (No foreign key: migration 0020 adds the column in place; sla.delete_policy clears it.)
    sla_policy_id: Mapped[int | None]
    first_response_due_at: Mapped[datetime | None]
    next_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]
    sla_timer_at: Mapped[datetime | None]
    sla: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # The values of the tickets' custom fields by key (models/custom_fields.py); None is none.
    custom: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    # Denormalised so a queue page needs no per-row COUNT (django-helpdesk's 68 queries a page).
    message_count: Mapped[int] = mapped_column(default=0)

    customer: Mapped[Customer] = relationship(foreign_keys=[customer_id], back_populates="tickets")
    assignee: Mapped[Agent | None] = relationship()
    team: Mapped[Team | None] = relationship()
    channel_row: Mapped[Channel | None] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=ticket_tags, order_by=Tag.name)
    participants: Mapped[list[Customer]] = relationship(secondary=ticket_participants)
    messages: WriteOnlyMapped[Message] = relationship(
        back_populates="ticket", order_by="Message.id", passive_deletes=True
    )

    @property
    def display_number(self) -> str:
        return f"#{self.number}"


# The queue's views, each one index range in (filter..., updated_at, id) order so both the first
# page and a deep keyset page are a bounded walk of one index at a million tickets.
Index("ix_tickets_active_updated", Ticket.active, Ticket.updated_at, Ticket.id)
Index("ix_tickets_status_updated", Ticket.status, Ticket.updated_at, Ticket.id)
Index(
    "ix_tickets_assignee_active_updated",
    Ticket.assignee_id,
    Ticket.active,
    Ticket.updated_at,
    Ticket.id,
)
Index("ix_tickets_team_active_updated", Ticket.team_id, Ticket.active, Ticket.updated_at, Ticket.id)
Index(
    "ix_tickets_channel_active_updated",
    Ticket.channel,
    Ticket.active,
    Ticket.updated_at,
    Ticket.id,
)
Index(
    "ix_tickets_priority_active_updated",
    Ticket.priority,
    Ticket.active,
    Ticket.updated_at,
    Ticket.id,
)
Index("ix_tickets_active_priority_updated", Ticket.active, Ticket.priority, Ticket.updated_at)
Index("ix_tickets_updated", Ticket.updated_at, Ticket.id)
# "Everything assigned to X" across statuses (the assignee filter on the "all" view).
Index("ix_tickets_assignee_updated", Ticket.assignee_id, Ticket.updated_at, Ticket.id)
# An import's look-up of what it brought over before (NULLs, tickets made here, never clash).
Index("ix_tickets_external_id", Ticket.external_id, unique=True)
# The worker's "follow-ups due now" (almost every ticket has none).
Index("ix_tickets_follow_up_at", Ticket.follow_up_at)
# The queue's "SLA due" order and "breaching soon" view.
Index("ix_tickets_active_sla_due", Ticket.active, Ticket.sla_due_at, Ticket.id)
# The worker's SLA timers due now: only tickets with a timer are in it.
Index(
    "ix_tickets_sla_timer_at",
    Ticket.sla_timer_at,
    sqlite_where=Ticket.sla_timer_at.is_not(None),
    postgresql_where=Ticket.sla_timer_at.is_not(None),
)

# Databases built from the metadata (tests, `create_all`) get the counter's row like the
# migration does, so ticket numbers start at #1001 either way.
event.listen(
    TicketCounter.__table__,
    "after_create",
    DDL("INSERT INTO ticket_counter (id, value) VALUES (1, 1000)"),
)
