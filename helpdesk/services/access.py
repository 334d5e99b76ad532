"""Fetch-with-permission helpers. "Missing" and "not yours" are the same NotFound."""

from __future__ import annotations

from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import Agent, Attachment, Customer, Message, Ticket
from helpdesk.services.conversations import is_participant
from helpdesk.services.errors import NotFound

Viewer = Agent | Customer


def access_ticket(session: Session, actor: Viewer | None, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or actor is None:
        raise NotFound(_("Ticket not found."))
    if isinstance(actor, Agent):
        if not actor.active:
            raise NotFound(_("Ticket not found."))
        return ticket
    if not is_participant(session, ticket, actor):
        raise NotFound(_("Ticket not found."))
    return ticket


def access_ticket_by_number(session: Session, actor: Viewer | None, number: int) -> Ticket:
    from sqlalchemy import select

    ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
    if ticket_id is None:
        raise NotFound(_("Ticket not found."))
    return access_ticket(session, actor, ticket_id)


def access_attachment(session: Session, actor: Viewer | None, attachment_id: int) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(_("Attachment not found."))
    message: Message = attachment.message
    # Customers never reach an internal note's files, even on their own ticket.
    if isinstance(actor, Customer) and message.internal:
        raise NotFound(_("Attachment not found."))
    try:
        access_ticket(session, actor, message.ticket_id)
    except NotFound:
        raise NotFound(_("Attachment not found.")) from None
    return attachment
