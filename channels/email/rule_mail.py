"""An automation rule's mail (``send_email`` action, ``services/rules.py``): the text the admin
wrote, rendered for the ticket when the rule fired, to the customer, the assignee or the team.

The core queues it (outbox purpose ``rule.mail``, payload ``{subject, body, rule, to}``, the
recipient's language, the ticket); this composer wraps it in a plain text and a simple HTML
mail when the outbox claims it. To the customer it is part of the ticket's conversation:
threaded on the ticket's last message like a reply, the ticket's number in the subject, and it
says which ticket it is about, so an answer comes back to the same ticket. To agents it says
which rule sent it and links the ticket page."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.email.smtp import PreparedMail
from channels.portal.mail import _language, build_mail
from helpdesk.links import base_url
from helpdesk.models import Agent, Message, OutboundMail, Ticket
from helpdesk.services.conversations import is_message_id
from helpdesk.services.outbox import DeliveryError


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


def compose_rule_mail(app: Flask, session: Session, row: OutboundMail) -> PreparedMail:
    payload: dict[str, Any] = row.payload or {}
    ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    if ticket is None:
        raise DeliveryError("the ticket is gone", permanent=True)
    to_customer = payload.get("to") == "customer"
    token = f"[#{ticket.number}]"
    subject = str(payload.get("subject") or ticket.subject)
    if token not in subject:
        subject = f"{token} {subject}"
    headers = {"X-Helpdesk-Ticket": str(ticket.number)}
    if to_customer:
        customer = ticket.customer
        if customer is None or not customer.email:
            raise DeliveryError("the customer has no address any more", permanent=True)
        to_name = customer.name or None
        lang = _language(app, row.language, customer.language, ticket.language)
        # A reply to it continues the ticket (conversations: References right to left).
        headers.update(_thread_headers(session, ticket))
    else:
        agent = session.scalar(select(Agent).where(Agent.email == row.recipient))
        if agent is not None and not agent.active:
            raise DeliveryError("the agent was deactivated", permanent=True)
        to_name = agent.name if agent is not None else None
        lang = _language(app, row.language, agent.language if agent else None)
    rule = payload.get("rule") or {}
    return build_mail(
        app,
        to=row.recipient,
        to_name=to_name,
        subject=subject,
        template="rule_mail",
        lang=lang,
        context={
            "ticket": ticket,
            "body": str(payload.get("body") or ""),
            "to_customer": to_customer,
            "rule_name": str(rule.get("name") or ""),
            "link": f"{base_url(app)}/agent/tickets/{ticket.number}",
        },
        headers=headers,
    )
