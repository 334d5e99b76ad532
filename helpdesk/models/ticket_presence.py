"""Who has a ticket open right now: one row per (Socket.IO connection, ticket).

Collision detection needs to know, from any web process, which agents are on a ticket page, so
a newcomer gets the list at once and a tab that dies is dropped. Rows live in the database
(not in one process's memory) because with several web processes behind a load balancer the
agents on one ticket are connected to different processes; the events that announce changes go
through the Socket.IO message queue. ``seen_at`` is refreshed by the page's heartbeat: rows of a
process that died without running its disconnect handlers expire (``VIEWER_TTL``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class TicketViewer(Base):
    __tablename__ = "ticket_viewers"

    # Engine.IO session id of the connection (one browser tab).
    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
