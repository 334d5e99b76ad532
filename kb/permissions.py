"""Who may change what customers read: admins and knowledge-base editors
(``Agent.kb_editor``) publish, unpublish, archive and change published articles and arrange the
categories; other agents write drafts. ``None`` is the system (the importer, the command
line). Checked by the services (kb.services, kb.categories) for every caller."""

from __future__ import annotations

from helpdesk.i18n import _
from helpdesk.models import Agent
from helpdesk.services.errors import Forbidden


def require_publisher(actor: Agent | None) -> None:
    if actor is not None and not actor.can_publish_articles:
        raise Forbidden(
            _(
                "Only admins and knowledge-base editors can publish, unpublish, archive or"
                " change published articles. Save a draft and ask an editor to publish it."
            )
        )


def require_category_editor(actor: Agent | None) -> None:
    if actor is not None and not actor.can_publish_articles:
        raise Forbidden(
            _("Only admins and knowledge-base editors can change the categories customers see.")
        )
