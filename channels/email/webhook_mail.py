"""The mail to the admins when the helpdesk disabled a webhook after a run of failed deliveries.

The core queues it (``helpdesk.services.webhook_delivery``, outbox purpose ``webhook.disabled``,
one row per active admin); this composer renders it in the admin's language and time zone when
the outbox claims it, and the email sender sends it."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from channels.email.smtp import PreparedMail, generated_mail
from helpdesk import i18n
from helpdesk.i18n import _
from helpdesk.links import base_url
from helpdesk.models import Agent, OutboundMail, Webhook
from helpdesk.services.outbox import DeliveryError


def compose_webhook_disabled(app: Flask, session: Session, row: OutboundMail) -> PreparedMail:
    payload = row.payload or {}
    agent = session.get(Agent, int(payload.get("agent_id") or 0))
    if agent is None or not agent.active:
        raise DeliveryError("the admin is gone or deactivated", permanent=True)
    webhook = session.get(Webhook, int(payload.get("webhook_id") or 0))
    config = app.config
    lang = row.language if row.language in config["LANGUAGES"] else config["BABEL_DEFAULT_LOCALE"]
    since = datetime.fromisoformat(str(payload.get("since")))
    with force_locale(lang), i18n.force_timezone(agent.timezone):
        context = {
            "agent": agent,
            "url": payload.get("url", ""),
            "failures": int(payload.get("failures") or 0),
            "since": i18n.format_datetime(since, "short"),
            # Deleted since: the mail still says what happened, with no link to a missing page.
            "link": f"{base_url(app)}/admin/webhooks/{webhook.id}" if webhook is not None else None,
        }
        text_body = render_template("email/webhook_disabled.txt", **context)
        html_body = render_template("email/webhook_disabled.html", **context)
        subject = _("A webhook was disabled after repeated failures")
    return generated_mail(
        config,
        to=agent.email,
        to_name=agent.name,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        lang=str(lang),
    )
