"""The satisfaction survey's mail: "how did we do?" about a resolved ticket, with one link per
score to the portal's rating page.

The core queues it when a ticket is resolved (``helpdesk.services.satisfaction``, outbox
purpose ``satisfaction.request``, payload ``{survey_id, token}``); this composer renders it in
the customer's language when the outbox claims it, threaded on the ticket like a reply (so a
mail client shows it in the conversation). A link only opens the rating page: the page records
the score with a POST of its own, so a mail scanner following links rates nothing."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.smtp import PreparedMail
from channels.portal.mail import _language, build_mail
from helpdesk.i18n import _
from helpdesk.links import base_url
from helpdesk.models import Customer, Message, OutboundMail, SatisfactionRating, Ticket
from helpdesk.services.conversations import is_message_id
from helpdesk.services.outbox import DeliveryError


def score_choices(scale: str) -> list[tuple[str, str]]:
    """(value, label) per score of the scale, best first, in the current language."""
    if scale == "five":
        return [
            ("5", _("5 – Excellent")),
            ("4", _("4 – Good")),
            ("3", _("3 – Okay")),
            ("2", _("2 – Poor")),
            ("1", _("1 – Very poor")),
        ]
    return [("good", _("Good, I'm satisfied")), ("bad", _("Bad, I'm not satisfied"))]


def _thread_headers(session: Session, ticket: Ticket) -> dict[str, str]:
    """In-Reply-To and References as a reply would carry them: the thread so far."""
    last = session.scalar(
        select(Message)
        .where(Message.ticket_id == ticket.id, Message.message_id.is_not(None))
        .where(Message.internal.is_(False))
        .order_by(Message.id.desc())
        .limit(1)
    )
    if last is None:
        return {}
    refs = [r for r in [*last.references, last.message_id or ""] if is_message_id(r)][-20:]
    if not refs:
        return {}
    return {"In-Reply-To": f"<{refs[-1]}>", "References": " ".join(f"<{r}>" for r in refs)}


def compose_satisfaction_request(app: Flask, session: Session, row: OutboundMail) -> PreparedMail:
    payload: dict[str, Any] = row.payload or {}
    survey = session.get(SatisfactionRating, int(payload.get("survey_id") or 0))
    # An erased customer's surveys go with them (the foreign key cascades); a mail to an
    # address that is no longer theirs, or about a survey already answered, helps nobody.
    if survey is None:
        raise DeliveryError("the survey is gone (its customer erased?)", permanent=True)
    if survey.rated_at is not None:
        raise DeliveryError("the survey was answered already", permanent=True)
    customer = session.get(Customer, survey.customer_id)
    ticket = session.get(Ticket, survey.ticket_id)
    if customer is None or ticket is None or not customer.email:
        raise DeliveryError("the customer or the ticket is gone", permanent=True)
    lang = _language(app, row.language, survey.language, customer.language)
    link = f"{base_url(app)}/portal/rate/{payload.get('token')}"
    with force_locale(lang):
        subject = _(
            "How did we do? [#%(number)s] %(subject)s",
            # ASCII digits: a reply's [#1042] subject token is how the inbound side finds it.
            number=str(ticket.number),
            subject=ticket.subject,
        )
        choices = [(label, f"{link}?score={value}") for value, label in score_choices(survey.scale)]
    headers = _thread_headers(session, ticket)
    headers["X-Helpdesk-Ticket"] = str(ticket.number)
    return build_mail(
        app,
        to=row.recipient,
        to_name=customer.name or None,
        subject=str(subject),
        template="satisfaction_request",
        lang=lang,
        context={"customer": customer, "ticket": ticket, "choices": choices, "link": link},
        headers=headers,
    )
