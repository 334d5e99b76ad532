"""Mail that belongs to no ticket message, delivered by the same outbox as replies: portal
sign-in links and ticket confirmations today, reminders and notifications later.

The row says who gets which mail (``purpose`` plus ``payload``, e.g. the magic link's nonce);
the mail itself is composed when the outbox claims it, by the composer registered for the
purpose, in the recipient's language.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.models._types import DeliveryStatus, str_enum


class OutboundMail(Base):
    __tablename__ = "outbound_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Dotted, owner first: "portal.confirmation", "portal.signin".
    purpose: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(320))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    language: Mapped[str | None] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "outbound_mail_status"), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_outbound_mails_due", OutboundMail.status, OutboundMail.next_attempt_at)
