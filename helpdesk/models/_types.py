"""Shared column types and enums for the models."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Enum


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def active(self) -> bool:
        """Still needs work: the queue's "open" views show active tickets."""
        return self in (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


class Priority(enum.IntEnum):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4


class ChannelKind(enum.StrEnum):
    EMAIL = "email"
    PORTAL = "portal"
    CHAT = "chat"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageKind(enum.StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    PORTAL = "portal"
    NOTE = "note"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class AgentRole(enum.StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class IdentityKind(enum.StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    PORTAL = "portal"


class ChannelStatus(enum.StrEnum):
    UNKNOWN = "unknown"
    OK = "ok"
    ERROR = "error"
    DISABLED = "disabled"


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    """A portable enum column: VARCHAR + CHECK on every backend, values stored lower-case."""
    values: Any = lambda e: [m.value for m in e]  # noqa: E731
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=values,
        validate_strings=True,
    )
