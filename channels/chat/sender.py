"""Chat replies: emitted to the visitor's conversation room on the ``/chat`` namespace.

The live widget (and its protocol) is built on this; until a visitor is connected the line waits
in the conversation and is fetched on (re)connect, so "sent" means "published to the room".
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.extensions import socketio
from helpdesk.models import Message, Ticket

CHAT_NAMESPACE = "/chat"


class ChatSender:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def prepare(self, session: Session, message: Message, ticket: Ticket) -> dict[str, Any]:
        return {
            "room": f"chat:{ticket.id}",
            "payload": {
                "ticket_id": ticket.id,
                "id": message.id,
                "author": message.author_name,
                "text": message.body_text,
                "created_at": message.created_at.isoformat(),
            },
        }

    def send(self, prepared: dict[str, Any]) -> dict[str, Any]:
        socketio.emit(
            "chat.message", prepared["payload"], to=prepared["room"], namespace=CHAT_NAMESPACE
        )
        return {"room": prepared["room"]}
