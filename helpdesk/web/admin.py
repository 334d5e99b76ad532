"""Admin pages for the email channel: mailbox health and the quarantine (download, replay).

Mailboxes are added with `helpdesk channel add-email` (docs/email.md); these pages show whether
they are healthy and let an admin look at and replay mail that could not be processed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Agent, Message
from helpdesk.services import channels as channel_services
from helpdesk.services import mail as mail_services
from helpdesk.services.attachments import path_for

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


@bp.get("/channels")
@admin_required
def channels() -> str:
    rows = [
        channel_services.channel_row(db.session, c)
        for c in channel_services.email_channels(db.session)
    ]
    waiting = len(mail_services.quarantined(db.session))
    return render_template("admin/channels.html", channels=rows, quarantined=waiting)


@bp.get("/quarantine")
@admin_required
def quarantine() -> str:
    items = mail_services.quarantined(db.session, include_replayed=True)
    names = {c.id: c.name for c in channel_services.email_channels(db.session)}
    return render_template("admin/quarantine.html", items=items, channel_names=names)


@bp.get("/quarantine/<int:item_id>/raw")
@admin_required
def quarantine_raw(item_id: int) -> Response:
    item = mail_services.get_quarantined(db.session, item_id)
    response = send_file(
        path_for(item.raw_sha256),
        mimetype="message/rfc822",
        as_attachment=True,
        download_name=f"quarantined-{item.id}.eml",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/quarantine/<int:item_id>/replay")
@admin_required
def quarantine_replay(item_id: int) -> Response:
    item = mail_services.get_quarantined(db.session, item_id)
    result = mail_services.replay(db.session, item)
    db.session.commit()
    if isinstance(result, Message):
        number = result.ticket.number
        flash(_("The mail was processed into ticket %(number)s.", number=f"#{number}"), "success")
    else:
        flash(_("The mail failed again: %(error)s", error=result.error), "error")
    return redirect(url_for("admin.quarantine"))
