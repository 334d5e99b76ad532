"""Mail to the staff that is no ticket message. :func:`mail_to_agent` renders one in the agent's
language and time zone (the task reminder and the disabled-webhook mail use it too); here, the
invitation of a new agent (a link to choose a password). The core queues it
(``helpdesk.services.agents.invite_agent``, outbox purpose ``agent.invite``); this composer
renders it when the outbox claims it, and the email sender sends it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from channels.email.smtp import PreparedMail, generated_mail
from helpdesk import i18n
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.links import base_url
from helpdesk.models import Agent, OutboundMail
from helpdesk.services import agents
from helpdesk.services.outbox import DeliveryError


def compose_agent_invite(app: Flask, session: Session, row: OutboundMail) -> PreparedMail:
    agent = session.get(Agent, int(row.payload.get("agent_id") or 0))
    if agent is None or not agent.active:
        raise DeliveryError("the invited agent is gone or deactivated", permanent=True)
    if agent.password_hash:
        raise DeliveryError("the agent has set a password already", permanent=True)
    hours = agents.invite_hours()
    if row.created_at + timedelta(hours=hours) <= utcnow():
        raise DeliveryError("the invitation expired before it could be sent", permanent=True)
    base = base_url(app)
    link = f"{base}/welcome/{agents.invite_token(agent)}"

    def build() -> tuple[str, dict[str, Any]]:
        return _("Your invitation to the helpdesk"), {
            "link": link,
            "hours": hours,
            "until": i18n.format_datetime(utcnow() + timedelta(hours=hours), "short"),
            "invited_by": row.payload.get("invited_by"),
        }

    return mail_to_agent(app, row, agent, "agent_invite", build)


def mail_to_agent(
    app: Flask,
    row: OutboundMail,
    agent: Agent,
    template: str,
    build: Callable[[], tuple[str, dict[str, Any]]],
) -> PreparedMail:
    """``email/<template>.txt`` and ``.html`` to ``agent``, in the row's language (else the
    default) and the agent's time zone; ``build`` gives the subject and the templates' values
    (called there, so its dates and words are the agent's). ``agent`` is in the context."""
    config = app.config
    lang = row.language if row.language in config["LANGUAGES"] else config["BABEL_DEFAULT_LOCALE"]
    with force_locale(lang), i18n.force_timezone(agent.timezone):
        subject, context = build()
        text_body = render_template(f"email/{template}.txt", agent=agent, **context)
        html_body = render_template(f"email/{template}.html", agent=agent, **context)
    return generated_mail(
        config,
        to=agent.email,
        to_name=agent.name,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        lang=str(lang),
    )
