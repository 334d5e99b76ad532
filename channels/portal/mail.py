"""Mail from the portal: confirmation and sign-in links (composed for the core outbox, which
queues, sends and retries them like replies), and the portal channel's outbound sender (an
agent's reply as a notification mail with a magic link).

Mails are template pairs ``templates/email/portal_<name>.txt`` + ``.html`` rendered in the
customer's language; delivery reuses the email channel's SMTP transport (or the mail-outbox
folder when no SMTP host is configured).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from channels.email.smtp import EmailSender, PreparedMail, generated_mail, subject_for
from channels.portal import magic
from channels.portal.models import PortalToken
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Customer, Message, OutboundMail, Ticket
from helpdesk.services.attachments import read_bytes
from helpdesk.services.outbox import DeliveryError

log = logging.getLogger("channels.portal.mail")


def _language(app: Flask, *candidates: str | None) -> str:
    for lang in candidates:
        if lang in app.config["LANGUAGES"]:
            return str(lang)
    return str(app.config["BABEL_DEFAULT_LOCALE"])


def build_mail(
    app: Flask,
    *,
    to: str,
    to_name: str | None,
    subject: str,
    template: str,
    lang: str,
    context: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> PreparedMail:
    config = app.config
    with force_locale(lang):
        text_body = render_template(f"email/{template}.txt", **context)
        html_body = render_template(f"email/{template}.html", **context)
        subject = str(subject)
    return generated_mail(
        config,
        to=to,
        to_name=to_name,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        lang=lang,
        headers=headers,
    )


def compose_link_mail(app: Flask, session: Session, row: OutboundMail) -> PreparedMail:
    """The outbox's composer for ``portal.confirmation`` and ``portal.signin``: the mail that
    carries a magic link, in the customer's language."""
    token = session.get(PortalToken, str(row.payload.get("nonce", "")))
    customer = session.get(Customer, row.customer_id) if row.customer_id else None
    if token is None or customer is None:
        raise DeliveryError("the link or its customer is gone", permanent=True)
    if token.used_at is not None or token.expires_at <= utcnow():
        # A retry after the link's hour (or after it was used): a dead link helps nobody.
        raise DeliveryError("the link expired before it could be sent", permanent=True)
    ticket = session.get(Ticket, token.ticket_id) if token.ticket_id else None
    lang = _language(app, row.language, customer.language)
    link = magic.link_for(token)
    with force_locale(lang):
        if row.purpose == "portal.confirmation" and ticket is not None:
            subject = _("[%(number)s] We received your request", number=ticket.display_number)
            template = "portal_confirmation"
        else:
            subject = _("Your sign-in link")
            template = "portal_signin"
    return build_mail(
        app,
        to=row.recipient,
        to_name=customer.name or None,
        subject=subject,
        template=template,
        lang=lang,
        context={
            "customer": customer,
            "ticket": ticket,
            "link": link,
            "hours": magic.max_age(token.purpose) // 3600,
        },
    )


class PortalSender:
    """Outbound sender for portal tickets: a notification mail with the reply and a magic link
    to the ticket on the portal (the customer answers there, or by replying to the mail)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.email = EmailSender(app)

    def prepare(self, session: Session, message: Message, ticket: Ticket) -> PreparedMail:
        customer = ticket.customer
        recipients = [r for r in message.recipients if r]
        if not recipients:
            raise DeliveryError(_("The customer has no email address."), permanent=True)
        lang = _language(self.app, customer.language, ticket.language)
        row, _token = magic.issue(session, customer, "ticket", ticket=ticket, language=lang)
        headers = {"Message-ID": f"<{message.message_id}>", "X-Helpdesk-Ticket": str(ticket.number)}
        if message.in_reply_to:
            headers["In-Reply-To"] = f"<{message.in_reply_to}>"
        if message.references:
            headers["References"] = " ".join(f"<{r}>" for r in message.references)
        prepared = build_mail(
            self.app,
            to=recipients[0],
            to_name=customer.name or None,
            subject=subject_for(ticket),
            template="portal_reply",
            lang=lang,
            context={
                "customer": customer,
                "ticket": ticket,
                "message": message,
                "agent": message.author_agent,
                "link": magic.link_for(row),
            },
            headers=headers,
        )
        del prepared.mail["Auto-Submitted"]  # a person's reply, not an automatic mail
        prepared.recipients = recipients
        for att in message.attachments:
            maintype, _sep, subtype = att.content_type.partition("/")
            prepared.mail.add_attachment(
                read_bytes(att.sha256),
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=att.filename,
            )
        return prepared

    def send(self, prepared: PreparedMail) -> dict[str, Any]:
        return self.email.send(prepared)
