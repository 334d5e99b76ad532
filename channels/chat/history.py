"""A chat's lifecycle in the ticket's history and in the event stream: :func:`record` writes
both, and the history's words for each action are registered here."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from channels.chat.models import ChatSession
from helpdesk.i18n import _
from helpdesk.services import audit, stream
from helpdesk.services.audit import Actor


def record(session: Session, chat: ChatSession, actor: Actor, action: str, **data: Any) -> None:
    """``action`` (``chat.accepted``, ``chat.ended``, ...) happened to ``chat``: a line of its
    ticket's history, and the stream's event about the chat (the subject webhooks carry as
    ``GET /api/v1/chats/<id>`` returns it), ordered with its ticket's events."""
    audit.record(session, chat.ticket, actor, action, **data)
    stream.record(session, action, "chat", chat.id, actor, ticket_id=chat.ticket_id, **data)


def register_history_labels() -> None:
    """The history's words (web only: the services above write, the pages say)."""
    from helpdesk.web.audit_labels import register

    register("chat.accepted", lambda d: _("accepted the chat"))
    register("chat.declined", lambda d: _("declined the chat"))
    register("chat.ended", lambda d: _("ended the chat"))
    register("chat.transcript", lambda d: _("asked for the chat's transcript by mail"))
    register("chat.transferred", lambda d: _("transferred the chat to %(name)s", name=d.get("to")))
    register(
        "chat.offer_expired",
        lambda d: _(
            "offered the chat to %(name)s, who did not answer in time", name=d.get("agent")
        ),
    )
    register("chat.settings", lambda d: _("changed the chat settings"))
