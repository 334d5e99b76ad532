"""API tokens (an agent's personal keys to the REST API v1) and the Idempotency-Key records.

A token's secret is shown once and stored as its SHA-256 only: the secret is 32 random bytes,
so a plain hash is as strong as a slow one and costs nothing per request. ``prefix`` (the
first characters of the secret) lets a person tell their tokens apart in a list.
An :class:`IdempotencyKey` keeps the first response to a POST sent with that key by that
token for 24 hours (``helpdesk/services/api_tokens.py``), written in the same transaction as
what the POST changed.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models.agents import Agent


class TokenScope(enum.StrEnum):
    READ = "read"  # GET only
    WRITE = "write"  # and the agent's writes
    ADMIN = "admin"  # and the admin resources, for an admin's token only


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16), default=TokenScope.READ.value)
    # hex SHA-256 of the secret; the secret itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Updated at most once a minute (not a write per request).
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    agent: Mapped[Agent] = relationship(lazy="joined")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("token_id", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # hex SHA-256 of method, path and body: the same key with another request is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
