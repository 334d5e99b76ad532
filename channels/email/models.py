"""The email channel's own tables: per-mailbox checkpoints, quarantined mail, the automatic-reply
log (registered on ``Base.metadata`` by ``channels.registry.register_email``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class MailCheckpoint(Base):
    """How far a mailbox folder has been read: (UIDVALIDITY, last UID).

    Updated in the same transaction as the tickets/messages of the mails it covers, so a crash
    re-reads at most the mails whose transaction did not commit (and dedupe absorbs repeats).
    """

    __tablename__ = "mail_checkpoints"
    __table_args__ = (UniqueConstraint("channel_id", "folder", name="uq_mail_checkpoints_folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuarantinedMail(Base):
    """A mail that did not become a ticket message: raw bytes (in the attachment store) and why.

    ``reason`` is ``"error"`` (it could not be processed; ``error`` says what failed) or
    ``"automatic"`` (automatic mail, an out-of-office or a newsletter, that continues no
    conversation; ``error`` names the filter's reason). Never dropped: an admin can download it
    and replay it, once the cause is fixed, or into a ticket when it was a person's mail after
    all.
    """

    __tablename__ = "quarantined_mail"
    __table_args__ = (Index("ix_quarantined_mail_raw_sha256", "raw_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL"), index=True
    )
    raw_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    error: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(16), default="error", server_default="error")
    folder: Mapped[str | None] = mapped_column(String(255))
    uid: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when a replay succeeded: the message it became.
    replayed_at: Mapped[datetime | None]
    replayed_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )


class AutoReplyLog(Base):
    """Automatic mails we sent (acknowledgements), for the per-recipient rate limit."""

    __tablename__ = "mail_auto_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_mail_auto_replies_address_sent_at", AutoReplyLog.address, AutoReplyLog.sent_at)
