"""Admin pages for webhooks: the list, register (the secret shown once), edit the URL and the
events, enable/disable, rotate the secret, delete, and each webhook's delivery log with
"Redeliver". Routes on the ``admin`` blueprint (admins only: everyone else gets a 404). The
rules are in helpdesk.services.webhooks; docs/webhooks.md is the receiver's side.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from helpdesk.extensions import db
from helpdesk.i18n import _, _l
from helpdesk.models import Agent, Webhook
from helpdesk.services import webhooks
from helpdesk.services.errors import ServiceError
from helpdesk.web.admin import admin_required, bp
from helpdesk.web.forms import choices

PAGE_SIZE = 25


class WebhookForm(FlaskForm):
    url = StringField(
        _l("URL"),
        validators=[DataRequired(), Length(max=2000)],
        description=_l("Where the helpdesk POSTs each event (https:// in production)."),
    )
    events = SelectMultipleField(
        _l("Events"),
        choices=choices((name, name) for name in webhooks.EVENT_TYPES),
        validators=[DataRequired(_l("Choose at least one event."))],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


def _me() -> Agent:
    user: Agent = current_user._get_current_object()
    return user


def _webhook(webhook_id: int) -> Webhook:
    return webhooks.get_webhook(db.session, _me(), webhook_id)


@bp.get("/webhooks")
@admin_required
def webhooks_list() -> str:
    rows = webhooks.list_webhooks(db.session, _me())
    return render_template("admin/webhooks.html", rows=rows)


@bp.route("/webhooks/new", methods=["GET", "POST"])
@admin_required
def webhook_new() -> str | tuple[str, int]:
    form = WebhookForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("admin/webhook_form.html", form=form, webhook=None), 400
        try:
            webhook, secret = webhooks.create_webhook(
                db.session, _me(), form.url.data or "", form.events.data or []
            )
        except ServiceError as exc:
            db.session.rollback()
            form.url.errors = [str(exc)]
            return render_template("admin/webhook_form.html", form=form, webhook=None), 400
        db.session.commit()
        # Shown on this page only, never stored in clear or put in the session cookie.
        return render_template("admin/webhook_secret.html", webhook=webhook, secret=secret), 201
    return render_template("admin/webhook_form.html", form=form, webhook=None)


@bp.route("/webhooks/<int:webhook_id>", methods=["GET", "POST"])
@admin_required
def webhook_edit(webhook_id: int) -> str | tuple[str, int] | Response:
    webhook = _webhook(webhook_id)
    form = WebhookForm(
        data={"url": webhook.url, "events": list(webhook.events)}
        if request.method == "GET"
        else None
    )
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                webhooks.update_webhook(
                    db.session, _me(), webhook, url=form.url.data, events=form.events.data
                )
            except ServiceError as exc:
                db.session.rollback()
                form.url.errors = [str(exc)]
                webhook = _webhook(webhook_id)
            else:
                db.session.commit()
                flash(_("Webhook saved."), "success")
                return redirect(url_for("admin.webhook_edit", webhook_id=webhook.id))
        status = 400
    before = request.args.get("before", type=int)
    log, older = webhooks.deliveries(db.session, _me(), webhook, before=before, limit=PAGE_SIZE)
    page = render_template(
        "admin/webhook_form.html", form=form, webhook=webhook, log=log, older=older, before=before
    )
    return page, status


@bp.post("/webhooks/<int:webhook_id>/active")
@admin_required
def webhook_active(webhook_id: int) -> Response:
    webhook = _webhook(webhook_id)
    active = request.form.get("active") == "1"
    webhooks.set_active(db.session, _me(), webhook, active)
    db.session.commit()
    flash(_("Webhook enabled.") if active else _("Webhook disabled."), "success")
    return redirect(url_for("admin.webhook_edit", webhook_id=webhook.id))


@bp.post("/webhooks/<int:webhook_id>/secret")
@admin_required
def webhook_rotate(webhook_id: int) -> str:
    webhook = _webhook(webhook_id)
    secret = webhooks.rotate_secret(db.session, _me(), webhook)
    db.session.commit()
    return render_template(
        "admin/webhook_secret.html", webhook=webhook, secret=secret, rotated=True
    )


@bp.post("/webhooks/<int:webhook_id>/delete")
@admin_required
def webhook_delete(webhook_id: int) -> Response:
    webhook = _webhook(webhook_id)
    url = webhook.url
    webhooks.delete_webhook(db.session, _me(), webhook)
    db.session.commit()
    flash(_("Webhook %(url)s deleted.", url=url), "success")
    return redirect(url_for("admin.webhooks_list"))


@bp.get("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>")
@admin_required
def webhook_delivery(webhook_id: int, delivery_id: int) -> str:
    webhook = _webhook(webhook_id)
    delivery = webhooks.get_delivery(db.session, _me(), webhook, delivery_id)
    return render_template("admin/webhook_delivery.html", webhook=webhook, delivery=delivery)


@bp.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@admin_required
def webhook_redeliver(webhook_id: int, delivery_id: int) -> Response:
    webhook = _webhook(webhook_id)
    delivery = webhooks.get_delivery(db.session, _me(), webhook, delivery_id)
    again = webhooks.redeliver(db.session, _me(), delivery)
    db.session.commit()
    flash(_("Delivery queued again as #%(id)s.", id=again.id), "success")
    return redirect(url_for("admin.webhook_edit", webhook_id=webhook.id))
