"""The body of a mail: a walk over its MIME tree that collects the text, the HTML and the
attachments.

Text parts that are not files the sender attached become the body (decoded with the charset
chain of :mod:`channels.email.decoding`); of a multipart/alternative the first plain and the
last HTML variant count (RFC 2046); every other part becomes an attachment or inline image
(:mod:`channels.email.attachments`). Without a plain part the text is the HTML's, read by
:func:`channels.email.html_text.html_to_text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from channels.email.attachments import leaf_attachment, message_attachment
from channels.email.decoding import decode_bytes
from channels.email.html_text import html_to_text
from channels.email.mime_parts import (
    is_body_text,
    part_charset,
    part_children,
    part_content_type,
    part_payload,
)
from helpdesk.inbound import InboundAttachment

__all__ = ["MailBody"]


@dataclass
class MailBody:
    """What a walk over the MIME tree collects, in document order."""

    plain: list[str] = field(default_factory=list)
    rich: list[str] = field(default_factory=list)
    attachments: list[InboundAttachment] = field(default_factory=list)

    @classmethod
    def of(cls, message: Message, linesep: str) -> MailBody:
        body = cls()
        body.walk(message, linesep)
        return body

    @classmethod
    def opaque(cls, raw: bytes) -> MailBody:
        """A mail we could not take apart, kept whole so nothing the sender sent is lost."""
        return cls(attachments=[InboundAttachment("message.eml", "message/rfc822", raw)])

    def text(self) -> str:
        if self.plain:
            return "\n".join(part.strip("\n") for part in self.plain).strip("\n")
        if self.rich:
            return html_to_text("\n".join(self.rich))
        return ""

    def html(self) -> str | None:
        return "\n".join(self.rich) if self.rich else None

    def walk(self, part: Message, linesep: str) -> None:
        content_type = part_content_type(part)
        maintype = content_type.split("/", 1)[0]
        if maintype == "message" or content_type == "text/rfc822-headers":
            number = len(self.attachments) + 1
            self.attachments.append(message_attachment(part, content_type, linesep, number))
        elif content_type == "multipart/alternative" and part.is_multipart():
            self._alternative(part, linesep)
        elif part.is_multipart():
            for child in part_children(part):
                self.walk(child, linesep)
        elif maintype == "multipart":
            # A multipart without a usable boundary: the parser kept it as one text blob.
            self.plain.append(decode_bytes(part_payload(part), part_charset(part)))
        elif content_type in ("text/plain", "text/html") and is_body_text(part):
            charset = part_charset(part, sniff_html=True)
            text = _normalise_newlines(decode_bytes(part_payload(part), charset))
            (self.plain if content_type == "text/plain" else self.rich).append(text)
        else:
            number = len(self.attachments) + 1
            self.attachments.append(leaf_attachment(part, content_type, number))

    def _alternative(self, part: Message, linesep: str) -> None:
        # Plain: the first alternative that has one; HTML: the last (the richest, RFC 2046).
        variants: list[MailBody] = []
        for child in part_children(part):
            variant = MailBody()
            variant.walk(child, linesep)
            variants.append(variant)
        self.plain.extend(next((v.plain for v in variants if v.plain), []))
        self.rich.extend(next((v.rich for v in reversed(variants) if v.rich), []))
        for variant in variants:
            self.attachments.extend(variant.attachments)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
