"""The admin area: the ``admin`` blueprint and :func:`admin_required`.

Pages of the core (teams, ``admin_teams.py``) hang on this blueprint; each channel brings its
own admin pages as its own blueprint under ``/admin`` (``channels/email/admin.py`` for
mailboxes and the quarantine, ``channels/chat/admin.py`` for the chat widget) and protects
them with :func:`admin_required`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, abort
from flask_login import current_user, login_required

from helpdesk.models import Agent

bp = Blueprint("admin", __name__, url_prefix="/admin")

F = TypeVar("F", bound=Callable[..., Any])


def admin_required(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user._get_current_object()
        if not (isinstance(user, Agent) and user.is_admin):
            abort(404)  # the page does not exist for anyone else
        return view(*args, **kwargs)

    return cast(F, wrapped)
