"""Channels: configured inbound/outbound endpoints with visible health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.models._types import ChannelKind, ChannelStatus, str_enum


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ChannelKind] = mapped_column(str_enum(ChannelKind, "channel_kind"))
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # The public address: support@example.com for email, the site for a chat widget.
    address: Mapped[str | None] = mapped_column(String(320), index=True)
    # Protocol settings. Secrets inside are Fernet-encrypted with the instance secret
    # (helpdesk.secrets), never stored or logged in clear.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(default=True)
    # Health, shown to admins so a stalled mailbox is seen before a customer complains.
    status: Mapped[ChannelStatus] = mapped_column(
        str_enum(ChannelStatus, "channel_status"), default=ChannelStatus.UNKNOWN
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
