"""Tickets, messages and attachments as the API returns them (plain JSON values; described by
:mod:`helpdesk.api.schemas`). One function per shape, so GET, POST's 201 and a webhook's
``data`` say the same thing (:func:`ticket_payload`, registered with the webhook engine by
``setup``; outside a request, attachment URLs start with ``helpdesk.links.base_url``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import current_app, has_request_context, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from helpdesk.models import Agent, Attachment, Customer, Message, Team, Ticket
from helpdesk.services import sla


def iso(value: datetime | None) -> str | None:
    """A time as the API writes it (ISO 8601 with its offset), or ``None``."""
    return value.isoformat() if value is not None else None


def _agent(agent: Agent | None) -> dict[str, Any] | None:
    return None if agent is None else {"id": agent.id, "name": agent.name, "email": agent.email}


def _customer(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "name": customer.display_name, "email": customer.email}


def _team(team: Team | None) -> dict[str, Any] | None:
    return None if team is None else {"id": team.id, "name": team.name}


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "priority": int(ticket.priority),
        "channel": ticket.channel.value,
        "language": ticket.language,
        "customer": _customer(ticket.customer),
        "assignee": _agent(ticket.assignee),
        "team": _team(ticket.team),
        "tags": sorted(t.name for t in ticket.tags),
        "message_count": ticket.message_count,
        "version": ticket.version,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "resolved_at": iso(ticket.resolved_at),
        "follow_up_at": iso(ticket.follow_up_at),
        "external_id": ticket.external_id,
        "custom": dict(ticket.custom or {}),
        "sla": sla.summary(ticket),
    }


def attachment_json(a: Attachment) -> dict[str, Any]:
    return {
        "id": a.id,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "url": attachment_url(a.id),
    }


def attachment_url(attachment_id: int) -> str:
    if has_request_context():
        return url_for("api_attachments.download", attachment_id=attachment_id, _external=True)
    # The webhook worker: no request to take the address from.
    from helpdesk.links import base_url

    return f"{base_url(current_app)}/api/v1/attachments/{attachment_id}"


def message_json(m: Message) -> dict[str, Any]:
    if m.author_agent is not None:
        author = {"type": "agent", "id": m.author_agent.id, "name": m.author_agent.name}
    elif m.author_customer is not None:
        author = {
            "type": "customer",
            "id": m.author_customer.id,
            "name": m.author_customer.display_name,
        }
    else:
        author = {"type": "system", "id": None, "name": ""}
    return {
        "id": m.id,
        "direction": m.direction.value,
        "kind": m.kind.value,
        "internal": m.internal,
        "author": author,
        "body": m.body_text,
        "created_at": iso(m.created_at),
        "delivery_status": m.delivery_status.value if m.delivery_status else None,
        "attachments": [attachment_json(a) for a in m.attachments],
    }


def ticket_json(
    session: Session, ticket: Ticket, messages: Sequence[Message] | None = None
) -> dict[str, Any]:
    """The ticket as ``GET /api/v1/tickets/<number>`` returns it; ``messages``: all of its
    messages when the caller already holds them (a ticket it has just opened)."""
    if messages is None:
        messages = _messages(session, ticket)
    merged_into = (
        session.scalar(select(Ticket.number).where(Ticket.id == ticket.merged_into_id))
        if ticket.merged_into_id
        else None
    )
    return {
        **ticket_summary(ticket),
        "merged_into": merged_into,
        "messages": [message_json(m) for m in messages],
    }


def _messages(session: Session, ticket: Ticket) -> Sequence[Message]:
    return session.scalars(
        select(Message)
        .where(Message.ticket_id == ticket.id)
        .order_by(Message.id)
        .options(
            selectinload(Message.attachments),
            selectinload(Message.author_agent),
            selectinload(Message.author_customer),
        )
    ).all()


def ticket_payload(session: Session, ticket_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a ticket: as ``GET /api/v1/tickets/<number>`` returns it."""
    ticket = session.get(
        Ticket,
        ticket_id,
        options=[
            joinedload(Ticket.customer),
            joinedload(Ticket.assignee),
            joinedload(Ticket.team),
            selectinload(Ticket.tags),
        ],
    )
    return ticket_json(session, ticket) if ticket is not None else None
