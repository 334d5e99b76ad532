"""Outbound mail: turns a queued Message into a MIME mail and hands it to SMTP.

``prepare`` runs inside the outbox's claiming transaction (reads the ticket, renders the
templates in the customer's language); ``send`` talks to the SMTP server with no transaction
open. With no SMTP host configured, mail is written to ``<instance>/mail-outbox/`` as .eml files
so the embedded demo works without any mail server (said so in the README).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from channels.email import accounts as channel_service
from channels.email import oauth2
from channels.email.oauth2 import TokenSource
from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import Channel, Message, Ticket
from helpdesk.secrets import SecretError
from helpdesk.services.attachments import read_bytes
from helpdesk.services.outbox import DeliveryError

REPLY_SEPARATOR = {
    "en": "##- Please type your reply above this line -##",
    "bn": "##- অনুগ্রহ করে এই লাইনের উপরে উত্তর লিখুন -##",
}


@dataclass
class SmtpSettings:
    host: str | None
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    security: str = "none"  # none | starttls | ssl
    timeout: float = 30.0
    oauth2: TokenSource | None = field(default=None, repr=False)  # XOAUTH2 instead of a password


@dataclass
class PreparedMail:
    mail: EmailMessage
    envelope_from: str
    recipients: list[str]
    smtp: SmtpSettings
    outbox_dir: str
    meta: dict[str, Any] = field(default_factory=dict)


def smtp_settings_from_config(config: Any) -> SmtpSettings:
    return SmtpSettings(
        host=config.get("SMTP_HOST"),
        port=int(config.get("SMTP_PORT") or 25),
        user=config.get("SMTP_USER"),
        password=config.get("SMTP_PASSWORD"),
        security=str(config.get("SMTP_SECURITY") or "none"),
        timeout=float(config.get("SMTP_TIMEOUT") or 30),
    )


def smtp_settings_for_channel(channel: Channel | None, config: Any) -> SmtpSettings | None:
    """The channel's own SMTP server, when its settings name one (else the global one)."""
    smtp = ((channel.settings or {}).get("smtp") if channel is not None else None) or {}
    if channel is None or not smtp.get("host"):
        return None
    try:
        password = channel_service.secret(channel, "smtp", "password")
        source = oauth2.source_for(channel) if smtp.get("auth") == "oauth2" else None
    except SecretError as exc:
        raise DeliveryError(str(exc), permanent=True) from None
    return SmtpSettings(
        host=str(smtp["host"]),
        port=int(smtp.get("port") or 25),
        user=smtp.get("user") or None,
        password=password,
        security=str(smtp.get("security") or "none"),
        timeout=float(config.get("SMTP_TIMEOUT") or 30),
        oauth2=source,
    )


def generated_mail(
    config: Any,
    *,
    to: str,
    to_name: str | None,
    subject: str,
    text_body: str,
    html_body: str,
    lang: str,
    headers: dict[str, str] | None = None,
) -> PreparedMail:
    """A mail the helpdesk writes on its own (not a ticket message): a sign-in link, an
    invitation. From the instance's address, marked ``Auto-Submitted: auto-generated`` (RFC 3834,
    so no autoresponder answers it), with a Message-ID of our domain unless ``headers`` has one."""
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = formataddr((str(config["MAIL_FROM_NAME"]), str(config["MAIL_FROM"])))
    mail["To"] = formataddr((to_name, to)) if to_name else to
    mail["Date"] = format_datetime(utcnow())
    mail["Content-Language"] = lang
    mail["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        mail[name] = value
    if "Message-ID" not in mail:
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


def subject_for(ticket: Ticket) -> str:
    return f"[#{ticket.number}] {ticket.subject}"


class EmailSender:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def prepare(self, session: Session, message: Message, ticket: Ticket) -> PreparedMail:
        config = self.app.config
        recipients = [r for r in message.recipients if r]
        if not recipients:
            raise DeliveryError(_("The customer has no email address."), permanent=True)
        customer = ticket.customer
        lang = customer.language or ticket.language or config["BABEL_DEFAULT_LOCALE"]
        if lang not in config["LANGUAGES"]:
            lang = config["BABEL_DEFAULT_LOCALE"]
        from_address = (ticket.channel_row.address if ticket.channel_row else None) or config[
            "MAIL_FROM"
        ]
        context = {
            "ticket": ticket,
            "message": message,
            "customer": customer,
            "agent": message.author_agent,
            "separator": REPLY_SEPARATOR.get(lang, REPLY_SEPARATOR["en"]),
        }
        # Automatic mails (the new-ticket acknowledgement) have templates of their own.
        automatic = bool(message.meta.get("automatic"))
        template = "reply"
        if message.meta.get("template") == "acknowledgement":
            template = "acknowledgement"
        with force_locale(lang):
            text_body = render_template(f"email/{template}.txt", **context)
            html_body = render_template(f"email/{template}.html", **context)

        mail = EmailMessage()
        mail["Subject"] = subject_for(ticket)
        mail["From"] = formataddr((str(config["MAIL_FROM_NAME"]), from_address))
        mail["To"] = ", ".join(
            formataddr((customer.name, r)) if r == customer.email and customer.name else r
            for r in recipients
        )
        mail["Date"] = format_datetime(utcnow())
        mail["Message-ID"] = f"<{message.message_id}>"
        if message.in_reply_to:
            mail["In-Reply-To"] = f"<{message.in_reply_to}>"
        if message.references:
            mail["References"] = " ".join(f"<{r}>" for r in message.references)
        mail["X-Helpdesk-Ticket"] = str(ticket.number)
        mail["Content-Language"] = lang
        if automatic:
            # RFC 3834: tells other autoresponders not to answer us (no mail loops).
            mail["Auto-Submitted"] = "auto-replied"
        mail.set_content(text_body)
        mail.add_alternative(html_body, subtype="html")
        for att in message.attachments:
            maintype, _sep, subtype = att.content_type.partition("/")
            mail.add_attachment(
                read_bytes(att.sha256),
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=att.filename,
            )
        return PreparedMail(
            mail=mail,
            envelope_from=Address(addr_spec=from_address).addr_spec,
            recipients=recipients,
            smtp=smtp_settings_for_channel(ticket.channel_row, config)
            or smtp_settings_from_config(config),
            outbox_dir=str(config["MAIL_OUTBOX_DIR"]),
        )

    def send(self, prepared: PreparedMail) -> dict[str, Any]:
        if not prepared.smtp.host:
            return _write_to_outbox_dir(prepared)
        return _send_smtp(prepared)


def _write_to_outbox_dir(prepared: PreparedMail) -> dict[str, Any]:
    folder = Path(prepared.outbox_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = prepared.mail["Message-ID"].strip("<>").replace("/", "_") + ".eml"
    (folder / name).write_bytes(bytes(prepared.mail))
    return {"transport": "file", "path": str(folder / name)}


def _send_smtp(prepared: PreparedMail) -> dict[str, Any]:
    s = prepared.smtp
    assert s.host is not None
    context = ssl.create_default_context()
    try:
        client: smtplib.SMTP
        if s.security == "ssl":
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        with client:
            client.ehlo()
            if s.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if s.user and s.oauth2 is not None:
                oauth2.smtp_login(client, s.user, s.oauth2)
            elif s.user:
                client.login(s.user, s.password or "")
            refused = client.send_message(
                prepared.mail, from_addr=prepared.envelope_from, to_addrs=prepared.recipients
            )
    except oauth2.OAuth2Error as exc:
        raise DeliveryError(str(exc), permanent=exc.permanent) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(
            _smtp_reason(exc.recipients), permanent=_all_permanent(exc.recipients)
        ) from exc
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        reason = f"{exc.smtp_code} {text}"
        raise DeliveryError(reason, permanent=500 <= exc.smtp_code < 600) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    return {
        "transport": "smtp",
        "host": s.host,
        "refused": {k: list(map(str, v)) for k, v in refused.items()},
    }


def _smtp_reason(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{rcpt}: {code} {msg.decode(errors='replace')}" for rcpt, (code, msg) in recipients.items()
    )


def _all_permanent(recipients: dict[str, tuple[int, bytes]]) -> bool:
    return all(500 <= code < 600 for code, _msg in recipients.values())
