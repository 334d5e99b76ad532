"""A chat from start to end: finding the visitor's or the agent's chat, starting it with the
visitor's first line, the delivered/read marks, ending it, and the offline form and the
transcript by email.

A chat is a Ticket (channel ``chat``); :class:`~channels.chat.models.ChatSession` keeps the
routing state (:mod:`channels.chat.routing`). Nothing commits here; live events are sent on
commit (docs/chat-protocol.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload

from channels.chat import history as chat_history
from channels.chat.lines import UploadRef, check_client_id, check_text, history, inbound_message
from channels.chat.models import ChatSession, ChatStatus
from channels.chat.payloads import (
    CHAT_NAMESPACE,
    announce_chat,
    announce_line,
    announce_queue,
    line_from,
)
from channels.chat.routing import dispatch, route
from channels.chat.settings import chat_settings
from helpdesk.db import utcnow
from helpdesk.i18n import _, format_datetime
from helpdesk.models import (
    Agent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    Message,
    MessageKind,
    Team,
    Ticket,
)
from helpdesk.services import announcements, customer_forms, events, messages
from helpdesk.services.audit import Actor
from helpdesk.services.conversations import make_message_id
from helpdesk.services.customers import add_identity, find_by_identity, normalize_email
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.inbound import Received, give_default_team, receive

# ---------------------------------------------------------------------------------------------
# Finding a chat
# ---------------------------------------------------------------------------------------------


def find_chat(session: Session, ticket_id: int) -> ChatSession | None:
    return session.scalar(select(ChatSession).where(ChatSession.ticket_id == ticket_id))


@lru_cache(maxsize=2)
def _visitor_chat_query(*, given: bool) -> Select[ChatSession]:
    # Every visitor event goes on to read the chat's ticket and customer: one query, not three.
    # Built once: constructing it cost about as much CPU as running it, on every visitor event.
    query = (
        select(ChatSession)
        .options(joinedload(ChatSession.ticket).joinedload(Ticket.customer))
        .where(ChatSession.visitor_id == bindparam("visitor_id"))
    )
    if given:
        query = query.where(ChatSession.ticket_id == bindparam("ticket_id"))
    else:
        query = query.where(ChatSession.status != ChatStatus.ENDED)
    return query.order_by(ChatSession.id.desc()).limit(1)


def visitor_chat(session: Session, visitor_id: str, ticket_id: int | None = None) -> ChatSession:
    """The visitor's chat: a given one (must be theirs) or the latest live one."""
    query = _visitor_chat_query(given=ticket_id is not None)
    params: dict[str, Any] = {"visitor_id": visitor_id}
    if ticket_id is not None:
        params["ticket_id"] = ticket_id
    chat = session.scalar(query, params)
    if chat is None:
        raise NotFound(_("Chat not found."))
    return chat


def agent_chat(session: Session, agent: Agent, ticket_id: Any) -> ChatSession:
    if not isinstance(ticket_id, int) or isinstance(ticket_id, bool) or not agent.active:
        raise NotFound(_("Chat not found."))
    chat = find_chat(session, ticket_id)
    if chat is None:
        raise NotFound(_("Chat not found."))
    return chat


# ---------------------------------------------------------------------------------------------
# Start, marks, end
# ---------------------------------------------------------------------------------------------


def _link_visitor(session: Session, received: Received, visitor_id: str) -> None:
    customer = received.ticket.customer
    owner = find_by_identity(session, IdentityKind.CHAT, visitor_id)
    if owner is None:
        add_identity(session, customer, IdentityKind.CHAT, visitor_id)


def start_chat(
    session: Session,
    *,
    visitor_id: str,
    text: str,
    client_id: str,
    name: str | None = None,
    email: str | None = None,
    team_id: int | None = None,
    language: str | None = None,
    page_url: str | None = None,
    attachments: Sequence[UploadRef] = (),
    custom: Mapping[str, Any] | None = None,
    customer_custom: Mapping[str, Any] | None = None,
) -> ChatSession:
    """Open a chat with the visitor's first line and route it. Sending the same start again
    (same client id) returns the chat it opened.

    ``custom`` / ``customer_custom``: the pre-chat form's custom field answers for the chat's
    ticket and the visitor's customer record; FieldErrors keyed ``custom.<key>`` /
    ``customer_custom.<key>`` (:func:`prechat_answers`)."""
    settings = chat_settings(session)
    client_id = check_client_id(client_id)
    text = check_text(text)
    email = (email or "").strip() or None
    if email:
        email = normalize_email(email)
    elif settings.email_required:
        raise ServiceError(_("Please enter your email address."))
    if settings.name_required and not (name or "").strip():
        raise ServiceError(_("Please enter your name."))
    if team_id is not None and session.get(Team, team_id) is None:
        team_id = None
    answers = prechat_answers(session, visitor_id, email, custom, customer_custom)
    received = receive(
        session,
        inbound_message(
            visitor_id=visitor_id,
            email=email,
            name=(name or "").strip()[:200] or None,
            text=text,
            client_id=client_id,
            ticket_id=None,
            language=language,
            attachments=attachments,
            channel_id=settings.channel_id,
            custom=answers.custom,
            customer_custom=answers.customer_custom,
        ),
    )
    existing = find_chat(session, received.ticket.id)
    if existing is not None:
        if existing.visitor_id != visitor_id:
            raise NotFound(_("Chat not found."))
        return existing
    _link_visitor(session, received, visitor_id)
    team = team_id or settings.team_id
    chat = ChatSession(
        ticket_id=received.ticket.id,
        visitor_id=visitor_id,
        customer_id=received.ticket.customer_id,
        channel_id=settings.channel_id,
        status=ChatStatus.WAITING,
        team_id=team,
        language=language,
        page_url=(page_url or "")[:2000] or None,
        declined=[],
    )
    chat.ticket = received.ticket
    session.add(chat)
    session.flush()
    give_default_team(session, received.ticket, team)
    announce_line(session, chat, received.message)
    route(session, chat)
    announce_queue(session)
    return chat


def prechat_answers(
    session: Session,
    visitor_id: str,
    email: str | None,
    custom: Mapping[str, Any] | None,
    customer_custom: Mapping[str, Any] | None,
) -> customer_forms.Answers:
    """The pre-chat form's custom answers, checked like the portal's. The visitor may change
    values their customer record holds only when it is the customer this browser (its visitor
    token) already chats as; an email address typed into the form proves nothing."""
    fields = customer_forms.form_fields(session, "prechat")
    if not fields:
        return customer_forms.Answers()
    by_visitor = find_by_identity(session, IdentityKind.CHAT, visitor_id)
    owner = find_by_identity(session, IdentityKind.EMAIL, email) if email else by_visitor
    return customer_forms.check_answers(
        fields,
        {customer_forms.TICKET_GROUP: custom, customer_forms.CUSTOMER_GROUP: customer_custom},
        owner,
        verified=owner is not None and by_visitor is not None and owner.id == by_visitor.id,
    )


def end_chat(session: Session, chat: ChatSession, actor: Actor) -> None:
    """End the chat (either side). The ticket stays for follow-up by email."""
    if chat.status is ChatStatus.ENDED:
        return
    chat.status = ChatStatus.ENDED
    chat.ended_at = utcnow()
    chat_history.record(session, chat, actor, "chat.ended")
    announcements.announce(session, chat.ticket)
    announce_chat(session, chat)
    dispatch(session)


def mark(
    session: Session,
    chat: ChatSession,
    *,
    by: str,
    delivered: int | None = None,
    read: int | None = None,
) -> None:
    """Delivered/read marks (highest message id). ``by`` is ``visitor`` or ``agent``."""
    changed = False
    if by == "visitor":
        if delivered is not None and delivered > chat.visitor_delivered_id:
            chat.visitor_delivered_id, changed = delivered, True
        if read is not None and read > chat.visitor_read_id:
            chat.visitor_read_id, changed = read, True
            chat.visitor_delivered_id = max(chat.visitor_delivered_id, read)
    elif read is not None and read > chat.agent_read_id:
        chat.agent_read_id, changed = read, True
    if not changed:
        return
    payload = {
        "ticket_id": chat.ticket_id,
        "by": by,
        "delivered_id": chat.visitor_delivered_id if by == "visitor" else chat.agent_read_id,
        "read_id": chat.visitor_read_id if by == "visitor" else chat.agent_read_id,
    }
    if by == "visitor":
        events.send_event_on_commit(
            session, "chat.read", payload, rooms=[f"ticket:{chat.ticket_id}"]
        )
    else:
        events.send_event_on_commit(
            session, "chat.read", payload, rooms=[f"chat:{chat.ticket_id}"],
            namespace=CHAT_NAMESPACE,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Offline form and transcript
# ---------------------------------------------------------------------------------------------


def offline_ticket(
    session: Session,
    *,
    visitor_id: str,
    email: str,
    text: str,
    client_id: str,
    name: str | None = None,
    language: str | None = None,
) -> Received:
    """No agent (or outside hours): the message becomes a ticket answered later by email."""
    client_id = check_client_id(client_id)
    text = check_text(text)
    if not (email or "").strip():
        raise ServiceError(_("Please enter your email address."))
    email = normalize_email(email)
    settings = chat_settings(session)
    received = receive(
        session,
        inbound_message(
            visitor_id=visitor_id,
            email=email,
            name=(name or "").strip()[:200] or None,
            text=text,
            client_id=client_id,
            ticket_id=None,
            language=language,
            attachments=(),
            channel_id=settings.channel_id,
            meta={"chat_offline": True},
        ),
    )
    if not received.duplicate:
        _link_visitor(session, received, visitor_id)
        chat = ChatSession(
            ticket_id=received.ticket.id,
            visitor_id=visitor_id,
            customer_id=received.ticket.customer_id,
            channel_id=settings.channel_id,
            status=ChatStatus.ENDED,
            ended_at=utcnow(),
            team_id=settings.team_id,
            language=language,
            declined=[],
        )
        session.add(chat)
        session.flush()
    return received


def request_transcript(session: Session, chat: ChatSession, email: str | None = None) -> Message:
    """Queue "email me the transcript" in the outbox (the chat sender hands it to mail)."""
    if not chat_settings(session).transcript:
        raise ServiceError(_("Transcripts by email are turned off."))
    customer = chat.ticket.customer
    address = normalize_email(email) if email else customer.email
    if not address:
        raise ServiceError(_("Please enter your email address."))
    if customer.email is None:
        add_identity(session, customer, IdentityKind.EMAIL, address)
    elif address != customer.email:
        # Only the customer's own address: the transcript must not go to a stranger.
        raise ServiceError(_("The transcript goes to the address you gave when the chat began."))
    lines = []
    for m in history(session, chat):
        who = m.author_name or (_("You") if line_from(m) == "visitor" else _("Support"))
        # The instance's time zone (or the customer's), in the transcript's language.
        lines.append(f"[{format_datetime(m.created_at, 'short')}] {who}: {m.body_text}")
    text = _("Transcript of your chat (ticket #%(n)d)", n=chat.ticket.number)
    message = messages.append_message(
        session,
        chat.ticket,
        direction=Direction.OUTBOUND,
        kind=MessageKind.SYSTEM,
        author=None,
        text=text + "\n\n" + "\n".join(lines),
        subject=_("Transcript of your chat (ticket #%(n)d)", n=chat.ticket.number),
        message_id=make_message_id(chat.ticket_id),
        recipients=[address],
        delivery_status=DeliveryStatus.QUEUED,
        meta={"chat_transcript": True},
    )
    chat_history.record(session, chat, customer, "chat.transcript", message_id=message.id)
    wake_worker_on_commit(session)
    return message
