"""Chat replies: emitted to the visitor's conversation room on the ``/chat`` namespace.

While the chat is live, "sent" means "published to the room" (with Redis as the message queue,
to every server process); a visitor who was away fetches the line on reconnect
(``chat.history``), so nothing depends on the socket being up at that moment. Once the chat has
ended (or for "email me the transcript") the message goes out by mail instead, through the
email sender, if the customer gave an address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from channels.chat.lifecycle import find_chat
from channels.chat.models import ChatStatus
from channels.chat.payloads import CHAT_NAMESPACE, chat_line
from helpdesk.extensions import socketio
from helpdesk.models import Message, Ticket
from helpdesk.services.outbox import Sender


@dataclass
class _ByMail:
    prepared: Any


class ChatSender:
    def __init__(self, app: Flask, mail: Sender | None = None) -> None:
        self.app = app
        self.mail = mail

    def prepare(self, session: Session, message: Message, ticket: Ticket) -> Any:
        chat = find_chat(session, ticket.id)
        by_mail = (message.meta or {}).get("chat_transcript") or (
            chat is None or chat.status is ChatStatus.ENDED
        )
        if by_mail and self.mail is not None and message.recipients:
            return _ByMail(self.mail.prepare(session, message, ticket))
        return {"room": f"chat:{ticket.id}", "payload": chat_line(message)}

    def send(self, prepared: Any) -> dict[str, Any] | None:
        if isinstance(prepared, _ByMail):
            assert self.mail is not None
            result = self.mail.send(prepared.prepared)
            return {"via": "email", **(result or {})}
        socketio.emit(
            "chat.message", prepared["payload"], to=prepared["room"], namespace=CHAT_NAMESPACE
        )
        return {"room": prepared["room"]}
