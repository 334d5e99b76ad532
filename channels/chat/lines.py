"""Lines of a chat, both ways: client ids and text checks, file uploads, the visitor's and the
agent's lines, and the history a reconnecting side fetches.

A chat's lines are Messages written through ``services.inbound.receive`` (visitor) and
``services.tickets.reply_to_ticket`` (agent), so chats sit in the one queue and the customer's
timeline. Every line is idempotent by its client id: a re-sent line writes nothing new. Nothing
commits here; ``chat.message`` is sent on commit (docs/chat-protocol.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.chat.models import ChatSession, ChatStatus, ChatUpload
from channels.chat.payloads import announce_line
from channels.chat.routing import accept
from channels.chat.settings import ChatSettings
from helpdesk.i18n import _
from helpdesk.inbound import InboundAttachment, InboundMessage
from helpdesk.models import Agent, Direction, Message, MessageKind
from helpdesk.services import events, tickets
from helpdesk.services.attachments import clean_filename, read_bytes, store_bytes
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.inbound import Received, receive
from helpdesk.socket_payloads import Str

MAX_TEXT = 5000
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")


def _too_long(n: int) -> str:
    return _("A message can have at most %(n)d characters.", n=n)


# A line's fields in the Socket.IO payloads of both sides (helpdesk.socket_payloads): longer text
# is refused with the code "too_long" before anything is stored (the widget and the agent's page
# limit what can be typed to the same length).
LINE_TEXT = Str(required=True, max_length=MAX_TEXT, too_long=_too_long)
CLIENT_ID = Str(required=True, max_length=64)


@dataclass(frozen=True)
class UploadRef:
    filename: str
    content_type: str
    data: bytes


def check_client_id(client_id: Any) -> str:
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise ServiceError(_("Every message needs a client id."))
    return client_id


def check_text(text: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(text, str):
        raise ServiceError(_("A message must be text."))
    text = text.strip()
    if not text and not allow_empty:
        raise ServiceError(_("A message cannot be empty."))
    if len(text) > MAX_TEXT:
        raise ServiceError(_too_long(MAX_TEXT), code="too_long")
    return text


def uploads_for(session: Session, visitor_id: str, ids: Sequence[Any]) -> list[UploadRef]:
    """The visitor's own uploads by id ("missing" and "not yours" are the same error)."""
    refs: list[UploadRef] = []
    for upload_id in ids[:10]:
        upload = session.get(ChatUpload, upload_id) if isinstance(upload_id, int) else None
        if upload is None or upload.visitor_id != visitor_id:
            raise NotFound(_("Attachment not found."))
        refs.append(UploadRef(upload.filename, upload.content_type, read_bytes(upload.sha256)))
    return refs


def check_upload(
    settings: ChatSettings, filename: str, content_type: str, data: bytes
) -> UploadRef:
    """A file for the chat (either side) within the channel's type and size limits."""
    content_type = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if content_type not in settings.upload_types:
        raise ServiceError(_("This type of file cannot be sent in the chat."))
    if len(data) > settings.upload_max_bytes:
        limit = settings.upload_max_bytes
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
        raise ServiceError(_("Files can be at most %(size)s.", size=size), code="too_large")
    if not data:
        raise ServiceError(_("The file is empty."))
    return UploadRef(clean_filename(filename), content_type, data)


def store_upload(
    session: Session,
    settings: ChatSettings,
    visitor_id: str,
    filename: str,
    content_type: str,
    data: bytes,
) -> ChatUpload:
    ref = check_upload(settings, filename, content_type, data)
    upload = ChatUpload(
        visitor_id=visitor_id,
        filename=ref.filename,
        content_type=ref.content_type,
        size=len(data),
        sha256=store_bytes(data),
    )
    session.add(upload)
    session.flush()
    return upload


def inbound_message(
    *,
    visitor_id: str,
    email: str | None,
    name: str | None,
    text: str,
    client_id: str,
    ticket_id: int | None,
    language: str | None,
    attachments: Sequence[UploadRef],
    channel_id: int | None,
    meta: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    customer_custom: dict[str, Any] | None = None,
) -> InboundMessage:
    return InboundMessage(
        channel_kind="chat",
        identity_kind="email" if email else "chat",
        sender_address=email or visitor_id,
        sender_name=name,
        text=text,
        # Scoped to the visitor: one visitor's ids can never collide with another's lines.
        message_id=f"{visitor_id}/{client_id}",
        ticket_id=ticket_id,
        language=language,
        channel_id=channel_id,
        attachments=[InboundAttachment(a.filename, a.content_type, a.data) for a in attachments],
        meta={**(meta or {}), "client_id": client_id},
        custom=custom or None,
        customer_custom=customer_custom or None,
    )


def visitor_message(
    session: Session,
    chat: ChatSession,
    *,
    text: str,
    client_id: str,
    attachments: Sequence[UploadRef] = (),
) -> Received:
    """A visitor's line. Idempotent by client id: a re-sent line writes nothing new."""
    client_id = check_client_id(client_id)
    text = check_text(text, allow_empty=bool(attachments))
    received = receive(
        session,
        inbound_message(
            visitor_id=chat.visitor_id,
            # The identity the chat's customer is known by (an email given in the pre-chat form
            # resolves to the same Customer as their mail and portal tickets).
            email=chat.ticket.customer.email,
            name=None,
            text=text,
            client_id=client_id,
            ticket_id=chat.ticket_id,
            language=chat.language,
            attachments=attachments,
            channel_id=chat.channel_id,
        ),
        # The chat's customer, found with the chat (visitor_chat): resolving the identity above
        # again would find the same row with one more SELECT per line.
        sender=chat.ticket.customer,
    )
    if received.duplicate and received.ticket.id != chat.ticket_id:
        raise NotFound(_("Chat not found."))
    if not received.duplicate:
        if received.ticket.id != chat.ticket_id:  # merged away: the line went to the survivor
            raise NotFound(_("Chat not found."))
        announce_line(session, chat, received.message)
        # The queue needs a chat's latest count and time, not every line's (realtime.py).
        events.coalesce_ticket_updates(session)
    return received


def _find_agent_line(session: Session, chat: ChatSession, client_id: str) -> Message | None:
    recent = session.scalars(
        select(Message)
        .where(Message.ticket_id == chat.ticket_id, Message.direction == Direction.OUTBOUND)
        .order_by(Message.id.desc())
        .limit(200)
    )
    for message in recent:
        if (message.meta or {}).get("client_id") == client_id:
            return message
    return None


def agent_message(
    session: Session,
    chat: ChatSession,
    agent: Agent,
    *,
    text: str,
    client_id: str,
    attachments: Sequence[UploadRef] = (),
) -> tuple[Message, bool]:
    """An agent's line: a reply through the outbox (the chat sender emits it to the visitor,
    or mails it once the chat has ended). Returns ``(message, duplicate)``.

    ``attachments`` were checked against the channel's limits (:func:`check_upload`); the
    visitor opens them with their own token only."""
    client_id = check_client_id(client_id)
    existing = _find_agent_line(session, chat, client_id)
    if existing is not None:
        return existing, True
    text = check_text(text, allow_empty=bool(attachments))
    if chat.status in (ChatStatus.WAITING, ChatStatus.OFFERED):
        accept(session, chat, agent)
    files = [InboundAttachment(a.filename, a.content_type, a.data) for a in attachments]
    # A file sent alone is a line named after it, so the transcript and a mailed reply say what
    # was sent.
    message = tickets.reply_to_ticket(
        session, chat.ticket, agent, text or ", ".join(a.filename for a in files),
        attachments=files,
    )  # fmt: skip
    message.meta = {**(message.meta or {}), "client_id": client_id, "chat": True}
    session.flush()
    announce_line(session, chat, message)
    events.coalesce_ticket_updates(session)
    return message, False


def history(session: Session, chat: ChatSession, after_id: int = 0) -> list[Message]:
    """The conversation's lines after ``after_id`` (what a reconnecting side missed)."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.ticket_id == chat.ticket_id,
                Message.id > after_id,
                Message.kind == MessageKind.CHAT,
                Message.internal.is_(False),
            )
            .order_by(Message.id)
            .limit(500)
        )
    )
