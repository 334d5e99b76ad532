"""What the ticket history says about a chat's lifecycle (the chat's audit actions)."""

from __future__ import annotations

from helpdesk.i18n import _
from helpdesk.web.audit_labels import register


def register_history_labels() -> None:
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
