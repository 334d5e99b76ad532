"""Agent availability: what an agent chose (online / away / offline) and their live connections.

Core, not chat: ticket auto-assignment reads it as well as chat routing
(:mod:`helpdesk.services.presence` is the one place of the rule).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.models._types import str_enum


class PresenceStatus(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class AgentPresence(Base):
    """What an agent chose (online/away/offline) and their chat capacity.

    The *effective* presence is also offline when the agent has no live connection
    (:class:`AgentConnection`), so closing the last tab or a dead server takes them out of
    routing without anyone clicking anything.
    """

    __tablename__ = "agent_presence"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[PresenceStatus] = mapped_column(
        str_enum(PresenceStatus, "presence_status"), default=PresenceStatus.OFFLINE
    )
    # Concurrent chats this agent takes; None = the channel's default.
    capacity: Mapped[int | None]
    # Round robin among equally busy agents: the one assigned longest ago goes first.
    last_assigned_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentConnection(Base):
    """One live Socket.IO connection of an agent (any server process).

    Rows are deleted on disconnect; a process killed outright leaves rows behind, so a row only
    counts while ``seen_at`` is recent (the agent page sends a heartbeat).
    """

    __tablename__ = "agent_connections"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
