"""Merging two tickets into one and splitting a message off into a ticket of its own."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.models import (
    AuditEvent,
    Message,
    MessageKind,
    Ticket,
    TicketStatus,
)
from helpdesk.services import audit, stream
from helpdesk.services.announcements import announce
from helpdesk.services.audit import Actor
from helpdesk.services.errors import ServiceError
from helpdesk.services.messages import touch
from helpdesk.services.tickets import add_system_message, apply_status, lock_ticket, open_ticket


def merge_tickets(session: Session, source: Ticket, target: Ticket, actor: Actor) -> None:
    """Move everything of ``source`` into ``target``; the source stays as a closed pointer.

    Messages (with their attachments), participants, tags and history move; the source shows
    "merged into #N" and mail or portal replies to it land in the target (``follow_merge``).
    Nothing is copied, so nothing can be duplicated, and nothing is deleted.
    """
    from helpdesk.models import ticket_participants
    from helpdesk.services.conversations import follow_merge

    if source.id == target.id:
        raise ServiceError(_("A ticket cannot be merged into itself."))
    if source.merged_into_id is not None:
        raise ServiceError(_("Ticket %(number)s is already merged.", number=source.display_number))
    if follow_merge(session, target).id != target.id:
        raise ServiceError(_("Ticket %(number)s is already merged.", number=target.display_number))
    # Row locks in id order (PostgreSQL) so two agents merging crosswise cannot deadlock; the
    # identity map hands back the same objects.
    for ticket_id in sorted((source.id, target.id)):
        lock_ticket(session, ticket_id)

    moved = int(
        session.scalar(
            select(func.count()).select_from(Message).where(Message.ticket_id == source.id)
        )
        or 0
    )
    session.execute(
        update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id)
    )
    session.execute(
        update(AuditEvent).where(AuditEvent.ticket_id == source.id).values(ticket_id=target.id)
    )
    # Participants: the source's customer and its Cc's may now follow the target.
    people = {source.customer_id} | {
        row.customer_id
        for row in session.execute(
            select(ticket_participants.c.customer_id).where(
                ticket_participants.c.ticket_id == source.id
            )
        )
    }
    already = {target.customer_id} | {
        row.customer_id
        for row in session.execute(
            select(ticket_participants.c.customer_id).where(
                ticket_participants.c.ticket_id == target.id
            )
        )
    }
    for customer_id in sorted(people - already):
        session.execute(
            ticket_participants.insert().values(ticket_id=target.id, customer_id=customer_id)
        )
    session.execute(
        ticket_participants.delete().where(ticket_participants.c.ticket_id == source.id)
    )
    target.tags = sorted({*target.tags, *source.tags}, key=lambda t: t.name)
    source.tags = []
    session.expire(source, ["messages"])

    when = utcnow()
    target.message_count = (target.message_count or 0) + moved
    target.last_message_at = max(
        (d for d in (target.last_message_at, source.last_message_at) if d is not None), default=None
    )
    if target.first_response_at is None:
        target.first_response_at = source.first_response_at
    source.message_count = 0
    source.merged_into_id = target.id
    stream.ticket_changed(session, source.id, actor, "merged_into_id", None, target.id)
    if source.status != TicketStatus.CLOSED:
        stream.ticket_changed(
            session, source.id, actor, "status", source.status.value, TicketStatus.CLOSED.value
        )
        apply_status(source, TicketStatus.CLOSED, when)
    touch(source, when)
    touch(target, when)
    session.flush()
    audit.record(session, target, actor, "ticket.merged", source=source.number, messages=moved)
    stream.record(
        session,
        "ticket.merged",
        "ticket",
        source.id,
        actor,
        ticket_id=source.id,
        into_ticket_id=target.id,
        messages=moved,
    )
    audit.record(session, source, actor, "ticket.merged_into", target=target.number)
    add_system_message(
        session,
        source,
        _("Merged into ticket %(number)s.", number=target.display_number),
        merged_into=target.id,
    )
    announce(session, source)
    announce(session, target)


def split_message(session: Session, message: Message, actor: Actor) -> Ticket:
    """Move one customer message out of its ticket into a new ticket of the same customer."""
    if message.internal or message.kind == MessageKind.SYSTEM:
        raise ServiceError(_("Only a customer's or an agent's message can be split off."))
    old = message.ticket
    if old.message_count <= 1:
        raise ServiceError(_("The only message of a ticket cannot be split off."))
    new = open_ticket(
        session,
        customer=old.customer,
        subject=message.subject or old.subject,
        channel=old.channel,
        channel_id=old.channel_id,
        actor=actor,
        priority=old.priority,
        team=old.team,
        language=old.language,
    )
    message.ticket_id = new.id
    old.message_count -= 1
    new.message_count = 1
    new.last_message_at = message.created_at
    touch(old)
    session.flush()
    audit.record(session, old, actor, "ticket.split", message_id=message.id, new=new.number)
    stream.record(
        session,
        "ticket.split",
        "ticket",
        old.id,
        actor,
        ticket_id=old.id,
        message_id=message.id,
        new_ticket_id=new.id,
    )
    audit.record(session, new, actor, "ticket.split_from", message_id=message.id, old=old.number)
    announce(session, old)
    announce(session, new)
    return new
