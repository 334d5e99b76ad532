"""The one shape every channel delivers to the core (the core owns it; channels import it).

An adapter (IMAP fetcher, portal form, chat socket) turns whatever its protocol gave it into an
:class:`InboundMessage` and hands it to ``helpdesk.services.inbound.receive(session, msg)``.
Nothing else crosses the boundary: the core never sees a ``email.message.Message``, a Flask
request or a Socket.IO packet.

Fields
------
channel_kind
    ``"email"``, ``"portal"`` or ``"chat"``: which adapter produced it. The ticket opened from it
    remembers this as its channel, and replies go back through the sender registered for it.
channel_id
    The configured :class:`helpdesk.models.channels.Channel` row it arrived on, when there is one
    (an email account); ``None`` for the built-in portal.
team_id / acknowledge
    What the channel asks of a ticket this message opens (the post-receive chain of
    ``services.inbound`` does it): the team it goes to, and whether the customer gets an
    acknowledgement mail (never for automatic mail).
sender_address / sender_name
    The identity of the person writing: an email address (lower-cased by the core), a chat
    visitor id, or a portal login. ``identity_kind`` says which.
subject
    Subject line; empty for chat lines. The core falls back to the first words of the body.
text / html
    The body. ``text`` is the plain text (always filled when there is any body); ``html`` is the
    *unsanitized* HTML the sender sent, or ``None``. The core sanitizes with nh3 before storing.
    ``full_text`` is the body before quoted history and signatures were stripped (email only).
message_id / in_reply_to / references
    Email threading headers, without angle brackets. ``references`` is in header order (oldest
    first). Chat uses ``message_id`` for the client-generated id that makes re-sends idempotent.
ticket_id
    Set when the adapter already knows the ticket (a portal reply on ticket page, a chat session):
    the core checks it belongs to the sender before appending.
cc
    Further addresses on the mail; they become participants of the ticket.
attachments
    Files with their bytes; stored by content hash.
auto_submitted / is_bounce
    Set by the email filters: automatic mail is stored as a system message, never answered
    automatically and never reopens a resolved ticket.
thread_only
    The message may only continue a conversation, never start one (the email adapter sets it
    for automatic mail: an out-of-office from a stranger is no ticket). When it continues none,
    the core writes nothing, not even a customer: ``receive_or_hold`` returns ``None``,
    ``receive_batch`` gives ``None`` in its place, ``receive`` raises ``NoConversation``.
language
    The sender's language when the adapter knows it (portal UI language, widget language).
custom / customer_custom
    Answers of a form's custom fields (the portal's contact form, the chat's pre-chat form, the
    API), by field key, as given: ``custom`` for the new ticket (ignored when the message
    continues one), ``customer_custom`` for the sender's record. The core cleans them
    (services/custom_fields.py); an adapter that shows the form checks them first to show its
    errors beside the fields.
received_at
    When the channel received it (tz-aware UTC); the core uses now when ``None``.
raw
    The raw bytes as received (email), kept for download and replay.
meta
    Anything channel-specific worth keeping on the Message (JSON-serialisable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# The values of helpdesk.models.ChannelKind / IdentityKind, as adapters write them.
ChannelKindValue = Literal["email", "portal", "chat"]
IdentityKindValue = Literal["email", "chat", "portal"]


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    filename: str
    content_type: str
    data: bytes
    # Set for inline parts referenced from the HTML body as cid:<content_id>.
    content_id: str | None = None
    inline: bool = False


@dataclass(slots=True)
class InboundMessage:
    channel_kind: ChannelKindValue
    sender_address: str
    text: str
    identity_kind: IdentityKindValue = "email"
    sender_name: str | None = None
    subject: str = ""
    html: str | None = None
    full_text: str | None = None
    channel_id: int | None = None
    team_id: int | None = None
    acknowledge: bool = False
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    ticket_id: int | None = None
    cc: list[str] = field(default_factory=list)
    attachments: list[InboundAttachment] = field(default_factory=list)
    auto_submitted: bool = False
    is_bounce: bool = False
    thread_only: bool = False
    language: str | None = None
    # A new ticket's priority (a Priority value) when the channel sets one (the API); None: normal.
    priority: int | None = None
    custom: dict[str, Any] | None = None
    customer_custom: dict[str, Any] | None = None
    received_at: datetime | None = None
    raw: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)
