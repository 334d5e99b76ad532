"""The durable event stream: one row per state change, written in the changing transaction.

Ids are handed out by one counter row (``event_counter``) just before the commit, so they are
gap-free and increase in commit order: a consumer that has read up to id N and asks for
``id > N`` can never miss an event that commits later with a smaller id (services/stream.py).
Rows keep plain ids rather than foreign keys: an event outlives the ticket, message or customer
it tells about.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Dotted name, e.g. "ticket.created", "ticket.updated", "message.created" (the list is in
    # docs/architecture.md#the-event-stream).
    name: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "agent", "customer" or "system", with the agent's or customer's id.
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    # What the event is about ("ticket", "message", "customer", "organization", "article",
    # "chat") and the ticket it belongs to, if any.
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(Integer)
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


Index("ix_events_ticket_id_id", Event.ticket_id, Event.id)


class EventCounter(Base):
    """The last event id handed out (one row, id 1)."""

    __tablename__ = "event_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class EventConsumer(Base):
    """How far a durable consumer (webhooks, triggers, rollups...) has read the stream."""

    __tablename__ = "event_consumers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
