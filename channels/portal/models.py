"""The portal's own rows: magic-link tokens (with the mail that carries them) and optional
password accounts. Login data of the portal adapter, not domain rows; written only by
:mod:`channels.portal.magic` and :mod:`channels.portal.accounts`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class PortalToken(Base):
    """One magic link. The URL carries ``nonce`` signed (itsdangerous, per-purpose salt); the row
    makes it single-use (``used_at``); the mail that delivers it (confirmation of a new ticket,
    sign-in link) is an ``outbound_mails`` row of the core outbox."""

    __tablename__ = "portal_tokens"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))  # "ticket" | "signin"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(8))


class PortalAccount(Base):
    """An optional password for a customer's portal sign-in (argon2id via helpdesk.auth)."""

    __tablename__ = "portal_accounts"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
