"""Attachments and inline images: what a non-body MIME part of a mail becomes.

A leaf part (a file, an inline image of a multipart/related) keeps its decoded bytes; a
message/* part (a forwarded mail, a bounce's report) keeps the attached mail itself, named
after its Subject. Parts without a filename get a generated one ("attachment-2.pdf",
"delivery-status.txt"). :class:`~channels.email.body.MailBody` calls these as it walks the tree.
"""

from __future__ import annotations

import mimetypes
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO

from channels.email.headers import text_header
from channels.email.mime_parts import (
    part_children,
    part_content_id,
    part_disposition,
    part_filename,
    part_payload,
    safe_filename,
)
from helpdesk.inbound import InboundAttachment

__all__ = ["leaf_attachment", "message_attachment"]

# Built-in table only: the system's mime.types differs between machines, generated names must not.
_MIME_TYPES = mimetypes.MimeTypes()
# Report parts have no filename; a name that says what they are beats "attachment-2.txt".
_GENERATED_NAMES = {
    "message/delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "text/rfc822-headers": "original-headers.txt",
}
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "application/octet-stream": ".bin",
    "image/jpeg": ".jpg",
}


def _message_bytes(part: Message, linesep: str) -> bytes:
    """The body of a message/* part (the attached mail itself) as bytes."""
    if not part.is_multipart():
        return part_payload(part)
    for gen_policy in (policy.compat32, part.policy):
        buffer = BytesIO()
        try:
            BytesGenerator(buffer, mangle_from_=False, policy=gen_policy).flatten(
                part, linesep=linesep
            )
        except Exception:  # noqa: S112 - re-serialising broken headers can fail; try the next
            continue
        data = buffer.getvalue()
        blank = (linesep * 2).encode("ascii")
        if data.startswith(linesep.encode("ascii")):
            return data[len(linesep) :]
        index = data.find(blank)
        return data[index + len(blank) :] if index >= 0 else b""
    return b""


def leaf_attachment(part: Message, content_type: str, number: int) -> InboundAttachment:
    """A file or inline image; ``number`` (1-based, in its body) names it if it has no name."""
    content_id = part_content_id(part)
    disposition = part_disposition(part)
    return InboundAttachment(
        filename=part_filename(part) or _generated_name(content_type, number),
        content_type=content_type,
        data=part_payload(part),
        content_id=content_id,
        # multipart/related images often carry only a Content-ID, no disposition.
        inline=disposition == "inline" or (disposition is None and content_id is not None),
    )


def message_attachment(
    part: Message, content_type: str, linesep: str, number: int
) -> InboundAttachment:
    """A message/* part (or text/rfc822-headers) as a file, serialised with ``linesep``."""
    filename = part_filename(part)
    if not filename and content_type in ("message/rfc822", "message/global"):
        inner = part_children(part)
        subject = text_header(inner[0], "subject", []) if inner else ""
        filename = safe_filename(subject)[:100] + ".eml" if subject.strip() else None
    return InboundAttachment(
        filename=filename or _generated_name(content_type, number),
        content_type=content_type,
        data=_message_bytes(part, linesep),
        content_id=part_content_id(part),
        inline=False,
    )


def _generated_name(content_type: str, number: int) -> str:
    if content_type in _GENERATED_NAMES:
        return _GENERATED_NAMES[content_type]
    extension = _EXTENSIONS.get(content_type) or _MIME_TYPES.guess_extension(content_type)
    return f"attachment-{number}{extension or '.bin'}"
