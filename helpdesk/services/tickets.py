"""Ticket verbs: open, reply, note, assign, status, priority, team, tags.

Each verb takes the caller's session, changes rows, records an AuditEvent, bumps the ticket's
``version`` and registers the live event for after commit. None of them commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.inbound import InboundAttachment
from helpdesk.models import (
    Agent,
    AuditEvent,
    ChannelKind,
    Customer,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Priority,
    Team,
    Ticket,
    TicketCounter,
    TicketStatus,
)
from helpdesk.services import audit, counts, custom_fields, sla, stream  # noqa: F401  (counts: its flush listeners; sla: its commit step)
from helpdesk.services.announcements import announce
from helpdesk.services.audit import Actor
from helpdesk.services.conversations import is_message_id, make_message_id
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import Conflict, ServiceError
from helpdesk.services.mentions import Mentions, notify_mentions
from helpdesk.services.messages import append_message, touch

FIRST_TICKET_NUMBER = 1001
MAX_SUBJECT_LENGTH = 500


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def next_ticket_number(session: Session) -> int:
    """Hand out the next human ticket number (see :func:`reserve_ticket_numbers`)."""
    return reserve_ticket_numbers(session, 1)[0]


def reserve_ticket_numbers(session: Session, count: int) -> range:
    """Hand out ``count`` consecutive human ticket numbers with one statement.

    One ``UPDATE ... SET value = value + count RETURNING value`` on a single counter row:
    atomic on PostgreSQL (the row lock serialises concurrent workers until commit) and on
    SQLite (the transaction already holds the write lock), so numbers never repeat and a
    rolled-back transaction gives its numbers back. A Core statement on the session's
    connection: the ORM's bulk UPDATE would autoflush first and then walk the identity map to
    synchronise objects, which no one holds for this row (that walk grew with every ticket
    of a batch).
    """
    if count < 1:
        return range(0)
    value = (
        session.connection()
        .execute(
            update(TicketCounter)
            .where(TicketCounter.id == 1)
            .values(value=TicketCounter.value + count)
            .returning(TicketCounter.value)
        )
        .scalar()
    )
    if value is None:
        # A database created without the migration's seed row (fresh create_all).
        last = FIRST_TICKET_NUMBER + count - 1
        session.add(TicketCounter(id=1, value=last))
        session.flush()
        return range(FIRST_TICKET_NUMBER, last + 1)
    return range(int(value) - count + 1, int(value) + 1)


def _kick_outbox(session: Session) -> None:
    wake_worker_on_commit(session)


def _clean_subject(subject: str, fallback_text: str = "") -> str:
    subject = " ".join((subject or "").split())
    if not subject:
        words = " ".join(fallback_text.split())
        subject = (words[:77] + "…") if len(words) > 80 else words
    return (subject or _("(no subject)"))[:MAX_SUBJECT_LENGTH]


def apply_status(ticket: Ticket, status: TicketStatus, when: datetime) -> None:
    if status != ticket.status:
        # "Follow up on <date>" waits for a pending ticket; any other turn (the customer wrote,
        # an agent solved it) makes it moot (services/reminders.py).
        ticket.follow_up_at = None
    ticket.status = status
    ticket.active = status.active
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        ticket.resolved_at = ticket.resolved_at or when
    else:
        ticket.resolved_at = None


# ---------------------------------------------------------------------------------------------
# Verbs
# ---------------------------------------------------------------------------------------------


def open_ticket(
    session: Session,
    *,
    customer: Customer,
    subject: str,
    channel: ChannelKind | str,
    channel_id: int | None = None,
    actor: Actor = None,
    priority: int = Priority.NORMAL,
    team: Team | None = None,
    language: str | None = None,
    created_at: datetime | None = None,
) -> Ticket:
    """A new ticket with no messages yet; callers append the first message."""
    ticket = new_ticket(
        customer=customer,
        number=next_ticket_number(session),
        subject=subject,
        channel=channel,
        channel_id=channel_id,
        priority=priority,
        team=team,
        language=language,
        created_at=created_at,
    )
    session.add(ticket)
    session.flush()
    record_opened(session, ticket, actor)
    return ticket


def new_ticket(
    *,
    customer: Customer,
    number: int,
    subject: str,
    channel: ChannelKind | str,
    channel_id: int | None = None,
    priority: int = Priority.NORMAL,
    team: Team | None = None,
    language: str | None = None,
    created_at: datetime | None = None,
) -> Ticket:
    """The row of :func:`open_ticket`, not yet added or flushed (batch paths build many and
    flush once; they call :func:`record_opened` once it has an id)."""
    when = created_at or utcnow()
    return Ticket(
        number=number,
        subject=_clean_subject(subject),
        status=TicketStatus.NEW,
        active=True,
        priority=int(Priority(priority)),
        channel=ChannelKind(channel),
        channel_id=channel_id,
        customer=customer,
        team=team,
        language=language or customer.language,
        created_at=when,
        updated_at=when,
        version=1,
        message_count=0,
        # A new ticket has no tags: an empty loaded collection spares the SELECT that building
        # its announcement would make.
        tags=[],
    )


def record_opened(session: Session, ticket: Ticket, actor: Actor) -> AuditEvent:
    """Audit and announce a ticket just opened (flushed: it has its id)."""
    entry = audit.record(
        session, ticket, actor, "ticket.created", channel=ticket.channel.value, number=ticket.number
    )
    stream.record(
        session,
        "ticket.created",
        "ticket",
        ticket.id,
        actor,
        ticket_id=ticket.id,
        number=ticket.number,
        subject=ticket.subject,
        channel=ticket.channel.value,
        status=ticket.status.value,
        priority=int(ticket.priority),
        customer_id=ticket.customer_id if ticket.customer_id is not None else ticket.customer.id,
        team_id=ticket.team_id if ticket.team_id is not None else getattr(ticket.team, "id", None),
        assignee_id=ticket.assignee_id,
        language=ticket.language,
    )
    announce(session, ticket, "ticket.created")
    return entry


def _check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != ticket.version:
        raise Conflict(_("This ticket changed while you were writing. Review it and send again."))


def reply_to_ticket(
    session: Session,
    ticket: Ticket,
    agent: Agent,
    text: str,
    *,
    attachments: Iterable[InboundAttachment] = (),
    status: TicketStatus | None = None,
    expected_version: int | None = None,
) -> Message:
    """A public reply to the customer, stored as ``queued`` (the transactional outbox).

    The worker delivers it after commit through the sender registered for the ticket's
    channel; the message is in the database before anyone tries to send it.
    """
    text = (text or "").strip()
    if not text:
        raise ServiceError(_("A reply cannot be empty."))
    _check_version(ticket, expected_version)
    if status is not None:
        custom_fields.check_resolvable(session, ticket, status, agent)
    when = utcnow()
    customer = ticket.customer
    # Threading headers a mail client understands: References is the thread so far (the last
    # non-internal message's References plus its id); In-Reply-To is the customer's latest
    # message, not our own acknowledgement or an earlier reply. Chat lines keep their client id
    # in message_id (for de-duplication), which is no Message-ID: those never reach a header.
    previous = session.scalar(
        select(Message)
        .where(Message.ticket_id == ticket.id, Message.message_id.is_not(None))
        .where(Message.internal.is_(False))
        .order_by(Message.id.desc())
        .limit(1)
    )
    references: list[str] = []
    if previous is not None:
        references = [*previous.references, previous.message_id or ""]
    references = [r for r in references if is_message_id(r)][-20:]
    answered = session.scalar(
        select(Message.message_id)
        .where(Message.ticket_id == ticket.id, Message.message_id.is_not(None))
        .where(Message.direction == Direction.INBOUND, Message.internal.is_(False))
        .order_by(Message.id.desc())
        .limit(1)
    )
    if not is_message_id(answered):
        answered = references[-1] if references else None
    kind = {
        ChannelKind.EMAIL: MessageKind.EMAIL,
        ChannelKind.CHAT: MessageKind.CHAT,
        ChannelKind.PORTAL: MessageKind.PORTAL,
    }[ticket.channel]
    message = append_message(
        session,
        ticket,
        direction=Direction.OUTBOUND,
        kind=kind,
        author=agent,
        text=text,
        subject=ticket.subject,
        message_id=make_message_id(ticket.id),
        in_reply_to=answered,
        references=references,
        recipients=[customer.email] if customer.email else [],
        attachments=attachments,
        delivery_status=DeliveryStatus.QUEUED,
        created_at=when,
    )
    if ticket.first_response_at is None:
        ticket.first_response_at = when
    new_status = status or (TicketStatus.OPEN if ticket.status == TicketStatus.NEW else None)
    if new_status is not None and new_status != ticket.status:
        old = ticket.status
        apply_status(ticket, new_status, when)
        audit.record(
            session, ticket, agent, "ticket.status", **{"from": old.value, "to": new_status.value}
        )
        stream.ticket_changed(session, ticket.id, agent, "status", old.value, new_status.value)
    audit.record(session, ticket, agent, "message.reply", message_id=message.id)
    announce(session, ticket)
    _kick_outbox(session)
    return message


def add_note(
    session: Session, ticket: Ticket, agent: Agent, text: str, mentions: Mentions | None = None
) -> Message:
    """An internal note: agents only, never sent, never shown to the customer.

    Agents ``@mentioned`` in it are notified; pass ``mentions`` to learn whom, and which
    handles matched nobody or several agents (to tell the author)."""
    text = (text or "").strip()
    if not text:
        raise ServiceError(_("A note cannot be empty."))
    message = append_message(
        session,
        ticket,
        direction=Direction.OUTBOUND,
        kind=MessageKind.NOTE,
        author=agent,
        text=text,
        internal=True,
    )
    audit.record(session, ticket, agent, "message.note", message_id=message.id)
    found = notify_mentions(session, ticket, message, agent)
    if mentions is not None:
        mentions.agents, mentions.unmatched = found.agents, found.unmatched
        mentions.ambiguous = found.ambiguous
    announce(session, ticket)
    return message


def add_system_message(session: Session, ticket: Ticket, text: str, **meta: Any) -> Message:
    """A line in the timeline written by the helpdesk itself (delivery failures, auto-replies)."""
    message = append_message(
        session,
        ticket,
        direction=Direction.INBOUND,
        kind=MessageKind.SYSTEM,
        author=None,
        text=text,
        internal=True,
        meta=meta,
    )
    announce(session, ticket)
    return message


def assign_ticket(
    session: Session,
    ticket: Ticket,
    assignee: Agent | None,
    actor: Actor,
    *,
    auto: str | None = None,
) -> None:
    """``auto``: the team's assignment mode when ``services.assignment`` chose the agent (kept
    in the audit entry, so the history says "assigned automatically")."""
    if assignee is not None and not assignee.active:
        raise ServiceError(
            _("%(name)s is deactivated and cannot take tickets.", name=assignee.name)
        )
    old = ticket.assignee
    if (old.id if old else None) == (assignee.id if assignee else None):
        return
    ticket.assignee = assignee
    touch(ticket)
    audit.record(
        session,
        ticket,
        actor,
        "ticket.assignee",
        **{
            "from": old.name if old else None,
            "to": assignee.name if assignee else None,
            "to_id": assignee.id if assignee else None,
            **({"auto": auto} if auto else {}),
        },
    )
    stream.ticket_changed(
        session,
        ticket.id,
        actor,
        "assignee_id",
        old.id if old else None,
        assignee.id if assignee else None,
    )
    announce(session, ticket)


TeamReaction = Callable[[Session, Ticket], object]
_team_reactions: list[TeamReaction] = []


def on_team_set(reaction: TeamReaction) -> None:
    """Call ``reaction(session, ticket)`` in the same transaction whenever a ticket moves into a
    team (``create_app`` registers auto-assignment, which builds on this module)."""
    if reaction not in _team_reactions:
        _team_reactions.append(reaction)


def set_team(session: Session, ticket: Ticket, team: Team | None, actor: Actor) -> None:
    old = ticket.team
    if (old.id if old else None) == (team.id if team else None):
        return
    ticket.team = team
    touch(ticket)
    audit.record(
        session,
        ticket,
        actor,
        "ticket.team",
        **{"from": old.name if old else None, "to": team.name if team else None},
    )
    stream.ticket_changed(
        session, ticket.id, actor, "team_id", old.id if old else None, team.id if team else None
    )
    announce(session, ticket)
    if team is not None:
        for reaction in _team_reactions:
            reaction(session, ticket)


def set_status(session: Session, ticket: Ticket, status: TicketStatus | str, actor: Actor) -> None:
    status = TicketStatus(status)
    old = ticket.status
    if old == status:
        return
    custom_fields.check_resolvable(session, ticket, status, actor)
    when = utcnow()
    apply_status(ticket, status, when)
    touch(ticket, when)
    audit.record(session, ticket, actor, "ticket.status", **{"from": old.value, "to": status.value})
    stream.ticket_changed(session, ticket.id, actor, "status", old.value, status.value)
    announce(session, ticket)


def set_priority(session: Session, ticket: Ticket, priority: int, actor: Actor) -> None:
    try:
        new = Priority(int(priority))
    except ValueError:
        raise ServiceError(_("Unknown priority.")) from None
    old = Priority(ticket.priority)
    if old == new:
        return
    ticket.priority = int(new)
    touch(ticket)
    audit.record(session, ticket, actor, "ticket.priority", **{"from": int(old), "to": int(new)})
    stream.ticket_changed(session, ticket.id, actor, "priority", int(old), int(new))
    announce(session, ticket)


def reopen_on_customer_message(session: Session, ticket: Ticket, customer: Customer) -> None:
    """A customer writing again on a pending or resolved ticket puts it back in the queue."""
    if ticket.status in (TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED):
        old = ticket.status
        apply_status(ticket, TicketStatus.OPEN, utcnow())
        audit.record(
            session, ticket, customer, "ticket.status", **{"from": old.value, "to": "open"}
        )
        stream.ticket_changed(session, ticket.id, customer, "status", old.value, "open")


def lock_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """Load a ticket for update (a row lock on PostgreSQL; SQLite already holds the DB lock)."""
    return session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update())


# ---------------------------------------------------------------------------------------------
# Merge, split, bulk
# ---------------------------------------------------------------------------------------------
