"""Admin pages for the email channel: mailboxes (add, edit, test, disable, delete), their
health, and the quarantine (download, replay).

Mailboxes are configured here or with `helpdesk channel add-email` (docs/email.md); both go
through the same service, so secrets are encrypted the same way and the worker's IDLE watchers
pick up every change.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response

from channels.email import accounts as channel_services
from channels.email import services as mail_services
from channels.email.connection import CheckResult, check_connection
from channels.email.forms import MailboxForm
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Channel, ChannelKind, Message, Team
from helpdesk.services import channels as core_channels
from helpdesk.services.attachments import path_for
from helpdesk.services.errors import ServiceError
from helpdesk.web.admin import admin_required
from helpdesk.web.forms import RetryForm

bp = Blueprint("email_admin", __name__, url_prefix="/admin")


@bp.get("/channels")
@admin_required
def channels() -> str:
    rows = [
        # The page formats the times in the reader's zone and language: datetimes, not the
        # ISO strings of the JSON row.
        {
            **channel_services.channel_row(db.session, c),
            "last_success_at": c.last_success_at,
            "last_error_at": c.last_error_at,
        }
        for c in channel_services.email_channels(db.session)
    ]
    # Mail that failed waits for the admin; held automatic mail is listed, not waiting.
    waiting = len(mail_services.quarantined(db.session, reason=mail_services.ERROR))
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
    elif result.reason == mail_services.AUTOMATIC:
        flash(_("This is automatic mail of no conversation: it is held here, not a ticket."))
    else:
        flash(_("The mail failed again: %(error)s", error=result.error), "error")
    return redirect(url_for("email_admin.quarantine"))


# --- mailboxes: add, edit, test, enable/disable, delete --------------------------------------


def _mailbox(channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None or channel.kind != ChannelKind.EMAIL:
        abort(404)
    return channel


def _mailbox_form() -> MailboxForm:
    form = MailboxForm()
    form.set_teams([(t.id, t.name) for t in db.session.scalars(select(Team).order_by(Team.name))])
    return form


def _render_mailbox_form(
    form: MailboxForm,
    channel: Channel | None,
    *,
    error: str | None = None,
    results: list[CheckResult] | None = None,
    status: int = 200,
) -> Response:
    stored = channel_services.public_settings(channel) if channel is not None else {}
    page = render_template(
        "admin/mailbox_form.html",
        form=form,
        channel=channel,
        stored=stored,
        error=error,
        results=results,
    )
    response = make_response(page, status)
    # The page may carry secrets the admin just typed (kept so nothing is lost): never cache it.
    response.headers["Cache-Control"] = "no-store"
    return response


def _save_or_test(form: MailboxForm, channel: Channel | None) -> Response:
    """POST of the mailbox form: "Test connection" or "Save"; errors keep what was typed."""
    if not form.validate_on_submit():
        return _render_mailbox_form(
            form, channel, error=_("Please correct the marked fields."), status=400
        )
    imap, smtp, oauth2 = form.configs()
    if request.form.get("action") == "test":
        try:
            imap, smtp, oauth2 = channel_services.with_stored_secrets(channel, imap, smtp, oauth2)
            results = check_connection(imap, smtp, oauth2)
        except ServiceError as exc:
            return _render_mailbox_form(form, channel, error=str(exc), status=400)
        return _render_mailbox_form(form, channel, results=results)
    fields: dict[str, Any] = {
        "address": form.address.data or "",
        "imap": imap,
        "smtp": smtp,
        "team": form.team.data or None,
        "acknowledge": bool(form.acknowledge.data),
        "oauth2": oauth2,
        "active": bool(form.active.data),
    }
    try:
        if channel is None:
            channel = channel_services.add_email_channel(db.session, form.name.data or "", **fields)
            message = _("Mailbox %(name)s added.", name=channel.name)
        else:
            channel_services.update_email_channel(
                db.session, channel, name=form.name.data or "", **fields
            )
            message = _("Mailbox %(name)s saved.", name=channel.name)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        if channel is not None and channel.id is not None:
            channel = _mailbox(channel.id)
        return _render_mailbox_form(form, channel, error=str(exc), status=400)
    flash(message, "success")
    return redirect(url_for("email_admin.channels"))


@bp.route("/mailboxes/new", methods=["GET", "POST"])
@admin_required
def mailbox_new() -> Response:
    form = _mailbox_form()
    if request.method == "POST":
        return _save_or_test(form, None)
    return _render_mailbox_form(form, None)


@bp.route("/mailboxes/<int:channel_id>", methods=["GET", "POST"])
@admin_required
def mailbox_edit(channel_id: int) -> Response:
    channel = _mailbox(channel_id)
    form = _mailbox_form()
    if request.method == "POST":
        return _save_or_test(form, channel)
    form.fill_from(channel)
    return _render_mailbox_form(form, channel)


@bp.post("/mailboxes/<int:channel_id>/active")
@admin_required
def mailbox_active(channel_id: int) -> Response:
    channel = _mailbox(channel_id)
    if not RetryForm().validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    core_channels.set_channel_active(db.session, channel, active)
    db.session.commit()
    if active:
        flash(_("Mailbox %(name)s enabled.", name=channel.name), "success")
    else:
        flash(_("Mailbox %(name)s disabled: no mail is fetched from it.", name=channel.name))
    return redirect(url_for("email_admin.channels"))


@bp.route("/mailboxes/<int:channel_id>/delete", methods=["GET", "POST"])
@admin_required
def mailbox_delete(channel_id: int) -> Response | str:
    channel = _mailbox(channel_id)
    form = RetryForm()
    if request.method == "POST" and form.validate_on_submit():
        name = channel.name
        core_channels.delete_channel(db.session, channel)
        db.session.commit()
        flash(_("Mailbox %(name)s deleted. Its tickets are kept.", name=name), "success")
        return redirect(url_for("email_admin.channels"))
    return render_template("admin/mailbox_delete.html", channel=channel, form=form)
