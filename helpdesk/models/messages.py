"""Messages on a ticket and their attachments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models._types import DeliveryStatus, Direction, MessageKind, str_enum

if TYPE_CHECKING:
    from helpdesk.models.agents import Agent
    from helpdesk.models.customers import Customer
    from helpdesk.models.tickets import Ticket


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    direction: Mapped[Direction] = mapped_column(str_enum(Direction, "message_direction"))
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind, "message_kind"))
    # Internal notes are for agents only: never mailed, never shown on the portal.
    internal: Mapped[bool] = mapped_column(default=False)
    author_customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL")
    )
    author_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text, default="")
    # Sanitized with nh3 before it is stored; templates may render it as-is.
    body_html: Mapped[str | None] = mapped_column(Text)
    # The whole body before quoted history/signatures were stripped (email).
    full_text: Mapped[str | None] = mapped_column(Text)

    # Channel metadata: Message-ID / In-Reply-To / References for mail (no angle brackets),
    # the client-generated id for chat lines.
    message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[list[str]] = mapped_column(JSON, default=list)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # sha256 of the raw bytes as received (mail), kept in the attachment store for download.
    raw_sha256: Mapped[str | None] = mapped_column(String(64))

    # Outbound delivery (the transactional outbox). None for inbound messages and notes.
    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status")
    )
    delivery_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    delivery_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]

    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    author_customer: Mapped[Customer | None] = relationship()
    author_agent: Mapped[Agent | None] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Attachment.id"
    )

    @property
    def author_name(self) -> str:
        if self.author_agent is not None:
            return self.author_agent.name
        if self.author_customer is not None:
            return self.author_customer.display_name
        return ""


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    # Files live on disk under their content hash: the same PDF mailed ten times is stored once.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_id: Mapped[str | None] = mapped_column(String(255))
    inline: Mapped[bool] = mapped_column(default=False)

    message: Mapped[Message] = relationship(back_populates="attachments")


# Timeline of a ticket in order.
Index("ix_messages_ticket_id_id", Message.ticket_id, Message.id)
# Email threading and dedupe look messages up by their Message-ID.
Index("ix_messages_message_id", Message.message_id)
# The outbox: due deliveries in order.
Index("ix_messages_delivery_due", Message.delivery_status, Message.next_attempt_at)
