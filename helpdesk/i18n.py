"""Languages: gettext helpers and how the locale of a request is chosen.

Every user-facing string goes through ``_`` (now) or ``_l`` (lazy, for module-level strings such
as form labels and enum labels). English is the source language; Bengali (``bn``) is complete.
"""

from __future__ import annotations

from flask import current_app, g, has_request_context, request, session
from flask_babel import gettext, lazy_gettext, ngettext
from flask_babel import pgettext as _pgettext

_ = gettext
_n = ngettext
_l = lazy_gettext
pgettext = _pgettext

LANGUAGE_NAMES = {"en": "English", "bn": "বাংলা"}


def select_locale() -> str | None:
    """The user's saved preference, then the session's choice, then Accept-Language."""
    languages = list(current_app.config["LANGUAGES"])
    forced = g.get("force_locale")
    if forced in languages:
        return str(forced)
    if not has_request_context():
        return None
    from flask_login import current_user

    preferred = getattr(current_user, "language", None) if current_user else None
    if preferred in languages:
        return str(preferred)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    return request.accept_languages.best_match(languages)
