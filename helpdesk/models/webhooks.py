"""Webhooks: an admin's URL that receives the event stream's events it subscribes to, signed.

A :class:`Webhook` keeps its secret encrypted (``helpdesk.secrets``, like mailbox passwords):
the helpdesk must sign with it, so it cannot be hashed, and a leaked backup alone reveals none.
A :class:`WebhookDelivery` is one event for one webhook: written by the stream consumer in the
same transaction as its new position (so each event fans out exactly once), then sent by the
worker, retried with backoff, and kept as the webhook's delivery log
(``helpdesk/services/webhooks.py``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models._types import str_enum


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for its time (or for an earlier delivery of its ticket)
    SENDING = "sending"  # claimed by a worker (with a lease)
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # failed for the whole retry window: given up (an admin can redeliver)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Event names, e.g. ["ticket.created", "ticket.updated"].
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # ``helpdesk.secrets.encrypt`` of the signing secret.
    secret: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    # Why it was switched off by the helpdesk (a run of failures); None when an admin did it.
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # When the current run of failures began (None after a success).
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    # Only events after this one are delivered (the stream's newest id when it was created).
    after_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_name: Mapped[str] = mapped_column(String(64))
    # Deliveries with the same key go out strictly in id order ("ticket:42"; "customer:7" for
    # an event of no ticket).
    ordering_key: Mapped[str] = mapped_column(String(64))
    # The delivery this one redelivers (an admin's "Redeliver").
    redelivery_of_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[DeliveryState] = mapped_column(
        str_enum(DeliveryState, "webhook_delivery_state"), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    first_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    # The JSON body, fixed when the event fanned out (every attempt sends the same bytes).
    request_body: Mapped[str] = mapped_column(Text)
    # Headers of the last attempt (timestamp and signature change per attempt).
    request_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    response_code: Mapped[int | None]
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    webhook: Mapped[Webhook] = relationship()


# Due work: pending by time, and sending by lease.
Index("ix_webhook_deliveries_due", WebhookDelivery.state, WebhookDelivery.next_attempt_at)
# "Is an earlier delivery of this ticket still waiting?" and the log per webhook.
Index(
    "ix_webhook_deliveries_line",
    WebhookDelivery.webhook_id,
    WebhookDelivery.ordering_key,
    WebhookDelivery.state,
    WebhookDelivery.id,
)
Index("ix_webhook_deliveries_log", WebhookDelivery.webhook_id, WebhookDelivery.id)
