"""The mail to the admins when the helpdesk disabled a webhook after a run of failed deliveries.

The core queues it (``helpdesk.services.webhook_delivery``, outbox purpose ``webhook.disabled``,
one row per active admin); this composer renders it in the admin's language and time zone when
the outbox claims it, and the email sender sends it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from channels.email.smtp import PreparedMail
from channels.email.staff_mail import mail_to_agent
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
    since = datetime.fromisoformat(str(payload.get("since")))

    def build() -> tuple[str, dict[str, Any]]:
        return _("A webhook was disabled after repeated failures"), {
            "url": payload.get("url", ""),
            "failures": int(payload.get("failures") or 0),
            "since": i18n.format_datetime(since, "short"),
            # Deleted since: the mail still says what happened, with no link to a missing page.
            "link": f"{base_url(app)}/admin/webhooks/{webhook.id}" if webhook is not None else None,
        }

    return mail_to_agent(app, row, agent, "webhook_disabled", build)
