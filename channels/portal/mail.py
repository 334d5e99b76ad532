"""Mail from the portal: confirmation and sign-in links (the worker's task), and the portal
channel's outbound sender (an agent's reply as a notification mail with a magic link).

Mails are template pairs ``templates/email/portal_<name>.txt`` + ``.html`` rendered in the
customer's language; delivery reuses the email channel's SMTP transport (or the mail-outbox
folder when no SMTP host is configured).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from flask import Flask, render_template
from flask_babel import force_locale
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from channels.email.smtp import EmailSender, PreparedMail, smtp_settings_from_config, subject_for
from channels.portal import magic
from channels.portal.models import PortalToken
from helpdesk.db import utcnow
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Customer, Message, Ticket
from helpdesk.services.attachments import read_bytes
from helpdesk.services.outbox import DeliveryError

log = logging.getLogger("channels.portal.mail")

MAX_ATTEMPTS = 8


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
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = formataddr((str(config["MAIL_FROM_NAME"]), str(config["MAIL_FROM"])))
    mail["To"] = formataddr((to_name, to)) if to_name else to
    mail["Date"] = format_datetime(utcnow())
    mail["Content-Language"] = lang
    mail["Auto-Submitted"] = "auto-generated"
    for k, v in (headers or {}).items():
        mail[k] = v
    if "Message-ID" not in mail:
        from email.utils import make_msgid

        mail["Message-ID"] = make_msgid(domain=str(config["MAIL_FROM"]).rpartition("@")[2])
    mail.set_content(text_body)
    mail.add_alternative(html_body, subtype="html")
    return PreparedMail(
        mail=mail,
        envelope_from=Address(addr_spec=str(config["MAIL_FROM"])).addr_spec,
        recipients=[to],
        smtp=smtp_settings_from_config(config),
        outbox_dir=str(config["MAIL_OUTBOX_DIR"]),
    )


def _token_mail(app: Flask, session: Session, row: PortalToken) -> PreparedMail | None:
    customer = session.get(Customer, row.customer_id)
    if customer is None or not customer.email:
        return None
    ticket = session.get(Ticket, row.ticket_id) if row.ticket_id else None
    lang = _language(app, row.language, customer.language)
    link = magic.link_for(row)
    with force_locale(lang):
        if row.mail == "confirmation" and ticket is not None:
            subject = _("[%(number)s] We received your request", number=ticket.display_number)
            template = "portal_confirmation"
        else:
            subject = _("Your sign-in link")
            template = "portal_signin"
    return build_mail(
        app,
        to=customer.email,
        to_name=customer.name or None,
        subject=subject,
        template=template,
        lang=lang,
        context={
            "customer": customer,
            "ticket": ticket,
            "link": link,
            "hours": magic.max_age(row.purpose) // 3600,
        },
    )


def send_due_mails(app: Flask, limit: int = 20) -> int:
    """Worker task: mail confirmation and sign-in links (claim, send outside, record)."""
    now = utcnow()
    claimed: list[tuple[str, PreparedMail | None]] = []
    with db.transaction(app) as session:
        query = (
            select(PortalToken)
            .where(
                PortalToken.mail.is_not(None),
                PortalToken.mailed_at.is_(None),
                PortalToken.mail_attempts < MAX_ATTEMPTS,
                or_(PortalToken.next_attempt_at.is_(None), PortalToken.next_attempt_at <= now),
            )
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for row in session.scalars(query):
            row.mail_attempts += 1
            # A lease: another worker leaves it alone while this one sends.
            row.next_attempt_at = now + timedelta(seconds=120)
            try:
                claimed.append((row.nonce, _token_mail(app, session, row)))
            except Exception as exc:
                log.exception("portal mail %s could not be prepared", row.purpose)
                row.mail_error = f"{type(exc).__name__}"
    sender = EmailSender(app)
    results: dict[str, str | None] = {}
    for nonce, prepared in claimed:
        if prepared is None:
            results[nonce] = "no address"
            continue
        try:
            sender.send(prepared)
            results[nonce] = None
        except Exception as exc:  # network trouble: try again later
            log.warning("portal mail failed: %s", type(exc).__name__)
            results[nonce] = str(exc)[:500] or type(exc).__name__
    if results:
        with db.transaction(app) as session:
            for nonce, error in results.items():
                done = session.get(PortalToken, nonce)
                if done is None:
                    continue
                if error is None:
                    done.mailed_at = utcnow()
                    done.mail_error = None
                else:
                    done.mail_error = error
                    done.next_attempt_at = utcnow() + timedelta(
                        seconds=min(30 * 2 ** (done.mail_attempts - 1), 3600)
                    )
    return len(claimed)


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
