"""The customer portal: knowledge base pages, contact form with suggestions, magic-link ticket
tracking ("My tickets")."""

from __future__ import annotations

from channels.portal import models as models


def init_app(app: object) -> None:
    """Blueprint and the worker task that mails confirmation and sign-in links."""
    from flask import Flask

    from channels.portal.mail import send_due_mails
    from channels.portal.views import bp
    from helpdesk.worker import register_task

    assert isinstance(app, Flask)
    app.config.setdefault("RATELIMIT_PORTAL", "10 per hour")
    app.config.setdefault("RATELIMIT_PORTAL_EMAIL", "5 per hour")
    app.config.setdefault("RATELIMIT_PORTAL_EVENTS", "300 per hour")
    app.config.setdefault("PORTAL_ATTACHMENT_TYPES", DEFAULT_ATTACHMENT_TYPES)
    app.register_blueprint(bp)
    register_task(app, send_due_mails)


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
