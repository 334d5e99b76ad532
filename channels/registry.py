"""Registers each channel's outbound sender with the core (called from ``create_app``)."""

from __future__ import annotations

from flask import Flask

from helpdesk.models import ChannelKind
from helpdesk.services.outbox import register_sender


def register_senders(app: Flask) -> None:
    from channels.chat.sender import ChatSender
    from channels.email.smtp import EmailSender

    email = EmailSender(app)
    register_sender(app, ChannelKind.EMAIL, email)
    # A portal ticket's replies reach the customer as a notification mail (and on the portal).
    register_sender(app, ChannelKind.PORTAL, email)
    register_sender(app, ChannelKind.CHAT, ChatSender(app))
