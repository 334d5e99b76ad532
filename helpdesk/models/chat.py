"""Live chat: a conversation's routing state, agent presence and visitor uploads.

A chat *is* a Ticket (channel ``chat``) and each line a Message; :class:`ChatSession` only keeps
what the ticket does not: who the visitor is (the signed visitor id), where the chat is in
routing (waiting, offered to an agent, active, ended) and the delivered/read marks.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models._types import str_enum

if TYPE_CHECKING:
    from helpdesk.models.agents import Agent
    from helpdesk.models.tickets import Ticket


class ChatStatus(enum.StrEnum):
    WAITING = "waiting"  # in the queue: no agent with free capacity yet
    OFFERED = "offered"  # routed to one agent, who has not accepted yet
    ACTIVE = "active"  # an agent accepted and is chatting
    ENDED = "ended"  # over; later replies go out by email

    @property
    def live(self) -> bool:
        return self is not ChatStatus.ENDED


class PresenceStatus(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class ChatSession(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    # The id inside the visitor's signed token (random, server-made); also the customer's
    # ``chat`` identity, so a returning visitor is the same Customer.
    visitor_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    status: Mapped[ChatStatus] = mapped_column(
        str_enum(ChatStatus, "chat_status"), default=ChatStatus.WAITING
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # The agent it is offered to or who chats; ``None`` while waiting.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # Agents who declined this chat: routing skips them.
    declined: Mapped[list[int]] = mapped_column(JSON, default=list)
    language: Mapped[str | None] = mapped_column(String(8))
    page_url: Mapped[str | None] = mapped_column(String(2000))
    # Marks, as the highest Message.id seen: the visitor's client got / showed agent lines, and
    # the agent read the visitor's lines.
    visitor_delivered_id: Mapped[int] = mapped_column(default=0)
    visitor_read_id: Mapped[int] = mapped_column(default=0)
    agent_read_id: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    offered_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    ticket: Mapped[Ticket] = relationship()
    agent: Mapped[Agent | None] = relationship()


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


class ChatUpload(Base):
    """A file a visitor uploaded over HTTP, waiting to be referenced by a chat message."""

    __tablename__ = "chat_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Routing counts an agent's live chats and walks the waiting queue in order.
Index("ix_chat_sessions_agent_status", ChatSession.agent_id, ChatSession.status)
Index("ix_chat_sessions_status_created", ChatSession.status, ChatSession.created_at)
