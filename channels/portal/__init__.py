"""The customer portal: knowledge base pages, contact form with suggestions, magic-link ticket
tracking ("My tickets")."""

from __future__ import annotations

from channels.portal import models as models


def init_app(app: object, *, web: bool = True) -> None:
    """Blueprint (``web``), and the composers of the link mails the core outbox sends."""
    from functools import partial

    from flask import Flask

    from channels.portal.mail import compose_link_mail
    from helpdesk.services.outbox import register_mail_composer

    assert isinstance(app, Flask)
    app.config.setdefault("RATELIMIT_PORTAL", "10 per hour")
    app.config.setdefault("RATELIMIT_PORTAL_EMAIL", "5 per hour")  # per requester and address
    app.config.setdefault("PORTAL_LINK_MAILS_PER_HOUR", 5)  # per customer, from everyone
    app.config.setdefault("RATELIMIT_PORTAL_EVENTS", "300 per hour")
    app.config.setdefault("PORTAL_ATTACHMENT_TYPES", DEFAULT_ATTACHMENT_TYPES)
    if web:
        from channels.portal.views import bp

        app.register_blueprint(bp)
        from channels.portal.satisfaction import bp as rating_bp

        app.register_blueprint(rating_bp)  # /portal/rate/<token>, a ticket's rating form
    for purpose in ("portal.confirmation", "portal.signin"):
        register_mail_composer(app, purpose, partial(compose_link_mail, app))


# Files customers may attach: documents, images, archives and plain text. Executables and
# scripts are refused with a clear message (they are the classic malware carriers).
DEFAULT_ATTACHMENT_TYPES = [
    ".pdf",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".heic",
    ".txt",
    ".log",
    ".csv",
    ".doc",
    ".docx",
    ".xls",
    ".xlsx",
    ".odt",
    ".ods",
    ".zip",
    ".eml",
    ".json",
    ".xml",
    ".mp4",
    ".mov",
    ".m4a",
    ".mp3",
]
