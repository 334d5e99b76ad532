"""Live chat's own rows: a conversation's routing state, visitor uploads and missed offers.

A chat *is* a Ticket (channel ``chat``) and each line a Message; :class:`ChatSession` only keeps
what the ticket does not: who the visitor is (the signed visitor id), where the chat is in
routing (waiting, offered to an agent, active, ended) and the delivered/read marks. Agent
availability (:class:`~helpdesk.models.presence.AgentPresence`) is the core's: auto-assignment
reads it too.

Written only by the chat channel's services (:mod:`channels.chat.routing`,
:mod:`channels.chat.lines`, :mod:`channels.chat.lifecycle`). The tables are registered on
``Base.metadata`` when this module is imported (``channels.registry.register_chat``, called by
``create_app``).
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


class MissedOffers(Base):
    """How many chat offers in a row an agent let time out.

    Kept apart from :class:`~helpdesk.models.presence.AgentPresence` so the count survives in its
    own row (one per agent who ever missed an offer); it is reset when the agent accepts a chat or
    chooses *Online* again, and routing sets the agent *away* when it reaches the channel's
    ``away_after_missed`` (:func:`channels.chat.routing.expire_offers`).
    """

    __tablename__ = "chat_missed_offers"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    # Offers missed since the agent last accepted a chat or chose Online.
    in_a_row: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    last_missed_at: Mapped[datetime] = mapped_column(default=utcnow)


# Routing counts an agent's live chats and walks the waiting queue in order.
Index("ix_chat_sessions_agent_status", ChatSession.agent_id, ChatSession.status)
Index("ix_chat_sessions_status_created", ChatSession.status, ChatSession.created_at)
