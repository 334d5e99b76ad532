"""Automation rules: triggers on the event stream and time rules from the worker
(services/rules.py; docs/automation.md)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.models._types import str_enum


class RuleKind(enum.StrEnum):
    # Runs on an event of the stream (ticket.created, ticket.updated, message.created, ...).
    EVENT = "event"
    # Runs from the worker on tickets whose last update is ``after_hours`` old.
    TIME = "time"


class Rule(Base):
    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[RuleKind] = mapped_column(str_enum(RuleKind, "rule_kind"))
    # An event rule's event name; None for time rules.
    event: Mapped[str | None] = mapped_column(String(40))
    # A time rule: hours since the ticket's last update (active tickets only).
    after_hours: Mapped[int | None]
    # services/conditions.py: [{"field", "op", "value"}], all must hold.
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # [{"type", "value"}] in order (services/rules.py ACTIONS).
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Rules of one event run lowest position first; ``stop`` ends the run after this one fires.
    position: Mapped[int] = mapped_column(default=0)
    stop: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    # A time rule's sweep position: the (updated_at, id) of the last ticket it looked at, so
    # each tick reads the next tickets through the queue's (active, updated_at, id) index.
    cursor_at: Mapped[datetime | None]
    cursor_id: Mapped[int] = mapped_column(default=0)
    run_count: Mapped[int] = mapped_column(default=0)
    last_run_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


Index("ix_rules_kind_event_position", Rule.kind, Rule.event, Rule.position)
