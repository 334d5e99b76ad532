"""Live chat verbs: start, lines both ways, routing to agents, accept/decline/transfer, end.

A chat is a Ticket (channel ``chat``) and its lines are Messages written through
``services.inbound.receive`` (visitor) and ``services.tickets.reply_to_ticket`` (agent), so chats
sit in the one queue and the customer's timeline. :class:`ChatSession` keeps the routing state.

Routing: an *available* agent has effective presence ``online`` (chosen online and at least one
live connection) and fewer live chats (offered + active) than their capacity; a chat goes to the
available agent (of its team, when it has one) with the fewest live chats, ties broken round
robin (the one assigned longest ago first). With nobody free it waits; :func:`dispatch` routes
waiting chats oldest first whenever capacity frees up.

Like every service here, nothing commits; live events are sent on commit. Event names and payloads
are documented in docs/chat-protocol.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import Select, bindparam, delete, func, select
from sqlalchemy.orm import Session, joinedload

from helpdesk.db import utcnow
from helpdesk.i18n import _
from helpdesk.inbound import InboundAttachment, InboundMessage
from helpdesk.models import (
    Agent,
    AgentConnection,
    AgentPresence,
    Channel,
    ChannelKind,
    ChatSession,
    ChatStatus,
    ChatUpload,
    DeliveryStatus,
    Direction,
    IdentityKind,
    Message,
    MessageKind,
    PresenceStatus,
    Team,
    Ticket,
    TicketStatus,
)
from helpdesk.services import announcements, audit, events, messages, tickets
from helpdesk.services.attachments import clean_filename, read_bytes, store_bytes
from helpdesk.services.audit import Actor
from helpdesk.services.conversations import make_message_id
from helpdesk.services.customers import add_identity, find_by_identity, normalize_email
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.inbound import Received, give_default_team, receive
from helpdesk.services.presence import (
    effective_presence,
    live_connection_agents,
    presence_row,
    reset_missed,
)

CHAT_NAMESPACE = "/chat"
AGENT_NAMESPACE = "/agent"

MAX_TEXT = 5000
MAX_CLIENT_ID = 64
LIVE = (ChatStatus.OFFERED, ChatStatus.ACTIVE)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatSettings:
    """The chat channel's settings: the ``Channel`` row (kind ``chat``) over ``CHAT_*`` config.

    ``hours``: ``{"timezone": "Asia/Dhaka", "weekly": {"mon": ["09:00-17:00"], ...}}``; an empty
    mapping means always open. ``allowed_origins``: sites that may embed the widget (the
    helpdesk's own origin always may); ``["*"]`` allows any.
    """

    channel_id: int | None = None
    team_id: int | None = None
    email_required: bool = False
    name_required: bool = False
    capacity: int = 3
    # Seconds an agent has to accept an offer before it moves on (0 = offers never time out);
    # after ``away_after_missed`` offers missed in a row the agent is set away (0 = never).
    offer_timeout: float = 30.0
    away_after_missed: int = 2
    transcript: bool = True  # visitors may ask for the transcript by email
    allowed_origins: tuple[str, ...] = ()
    hours: dict[str, Any] = field(default_factory=dict)
    rate_limit: int = 20  # lines per rate window and connection
    rate_window: float = 10.0
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_types: tuple[str, ...] = ()


def chat_channel(session: Session) -> Channel | None:
    return session.scalar(
        select(Channel)
        .where(Channel.kind == ChannelKind.CHAT, Channel.active.is_(True))
        .order_by(Channel.id)
        .limit(1)
    )


def chat_settings(session: Session) -> ChatSettings:
    config = current_app.config
    channel = chat_channel(session)
    s: dict[str, Any] = dict(channel.settings or {}) if channel else {}

    def pick(key: str, default: Any) -> Any:
        return s.get(key, config.get(f"CHAT_{key.upper()}", default))

    origins = pick("allowed_origins", [])
    if isinstance(origins, str):
        origins = [o.strip() for o in origins.split(",") if o.strip()]
    return ChatSettings(
        channel_id=channel.id if channel else None,
        team_id=channel.team_id if channel else None,
        email_required=bool(pick("email_required", False)),
        name_required=bool(pick("name_required", False)),
        capacity=max(int(pick("capacity", 3)), 1),
        offer_timeout=max(float(pick("offer_timeout", 30.0)), 0.0),
        away_after_missed=max(int(pick("away_after_missed", 2)), 0),
        transcript=bool(pick("transcript", True)),
        allowed_origins=tuple(str(o).rstrip("/") for o in origins),
        hours=dict(pick("hours", {}) or {}),
        rate_limit=int(pick("rate_limit", 20)),
        rate_window=float(pick("rate_window", 10.0)),
        upload_max_bytes=int(pick("upload_max_bytes", 10 * 1024 * 1024)),
        upload_types=tuple(
            pick(
                "upload_types",
                ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
                 "text/plain"],
            )
        ),
    )  # fmt: skip


def configure_chat_channel(
    session: Session,
    *,
    name: str = "Chat",
    address: str | None = None,
    team: Team | None = None,
    **settings: Any,
) -> Channel:
    """Create or update the chat channel row (settings as in :class:`ChatSettings`)."""
    channel = chat_channel(session)
    if channel is None:
        channel = Channel(kind=ChannelKind.CHAT, name=name, settings={})
        session.add(channel)
    channel.address = address or channel.address
    channel.team_id = team.id if team else channel.team_id
    if "hours" in settings:
        _check_hours(settings["hours"] or {})
    channel.settings = {**(channel.settings or {}), **settings}
    session.flush()
    return channel


def _parse_range(text: str) -> tuple[time, time]:
    start, _sep, end = text.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def _check_hours(hours: dict[str, Any]) -> None:
    try:
        if hours:
            ZoneInfo(str(hours.get("timezone", "UTC")))
            for day, ranges in dict(hours.get("weekly", {})).items():
                if day not in _DAYS:
                    raise ValueError(day)
                for r in ranges:
                    _parse_range(r)
    except (ValueError, ZoneInfoNotFoundError, TypeError, AttributeError):
        raise ServiceError(_("Business hours are not valid.")) from None


def is_open(settings: ChatSettings, now: datetime | None = None) -> bool:
    """Within the channel's business hours (always, when none are set)."""
    hours = settings.hours
    if not hours or not hours.get("weekly"):
        return True
    local = (now or utcnow()).astimezone(ZoneInfo(str(hours.get("timezone", "UTC"))))
    for text in hours["weekly"].get(_DAYS[local.weekday()], []):
        start, end = _parse_range(text)
        if start <= local.time().replace(tzinfo=None) < end:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Presence
# ---------------------------------------------------------------------------------------------


def _announce_presence(session: Session, agent: Agent) -> None:
    events.send_event_on_commit(
        session,
        "presence.updated",
        {"agent_id": agent.id, "status": effective_presence(session, agent).value},
        rooms=["agents"],
    )


def set_presence(session: Session, agent: Agent, status: PresenceStatus | str) -> None:
    """The agent chooses online / away / offline. Going online takes waiting chats."""
    try:
        status = PresenceStatus(status)
    except ValueError:
        raise ServiceError(_("Unknown availability.")) from None
    row = presence_row(session, agent)
    row.status = status
    row.updated_at = utcnow()
    _announce_presence(session, agent)
    if status is PresenceStatus.ONLINE:
        reset_missed(session, agent)  # back at the desk: missed offers start counting afresh
        dispatch(session)
    else:
        _requeue_offers(session, agent)


def _requeue_offers(session: Session, agent: Agent) -> None:
    """Chats offered to an agent who is no longer available go to someone else (or wait);
    chats they already accepted stay theirs."""
    offered = session.scalars(
        select(ChatSession).where(
            ChatSession.agent_id == agent.id, ChatSession.status == ChatStatus.OFFERED
        )
    ).all()
    for chat in offered:
        chat.status = ChatStatus.WAITING
        chat.agent_id = None
        chat.agent = None
        session.flush()
        route(session, chat)
    if offered:
        _announce_queue(session)


def set_capacity(session: Session, agent: Agent, capacity: int | None) -> None:
    if capacity is not None and not 1 <= capacity <= 50:
        raise ServiceError(_("Capacity must be between 1 and 50."))
    presence_row(session, agent).capacity = capacity


def agent_connected(session: Session, agent: Agent, sid: str) -> None:
    before = effective_presence(session, agent)
    session.merge(AgentConnection(sid=sid, agent_id=agent.id, seen_at=utcnow()))
    presence_row(session, agent)
    session.flush()
    if effective_presence(session, agent) is not before:  # only news is announced
        _announce_presence(session, agent)
        dispatch(session)


def agent_heartbeat(session: Session, agent: Agent, sid: str) -> None:
    agent_connected(session, agent, sid)


def agent_disconnected(session: Session, agent: Agent, sid: str) -> None:
    """A connection closed; without another one the agent is offline (for routing too)."""
    before = effective_presence(session, agent)
    session.execute(delete(AgentConnection).where(AgentConnection.sid == sid))
    session.flush()
    if effective_presence(session, agent) is not before:
        _announce_presence(session, agent)
        _requeue_offers(session, agent)


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------


def _live_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(ChatSession.agent_id, func.count())
        .where(ChatSession.status.in_(LIVE), ChatSession.agent_id.is_not(None))
        .group_by(ChatSession.agent_id)
    )
    return {int(agent_id): int(n) for agent_id, n in rows if agent_id is not None}


def available_agents(
    session: Session, *, team_id: int | None = None, exclude: Iterable[int] = ()
) -> list[tuple[Agent, int]]:
    """Agents who may take one more chat now, best first, with their live chat counts."""
    settings = chat_settings(session)
    connected = live_connection_agents(session)
    counts = _live_counts(session)
    excluded = set(exclude)
    query = (
        select(Agent, AgentPresence)
        .join(AgentPresence, AgentPresence.agent_id == Agent.id)
        .where(Agent.active.is_(True), AgentPresence.status == PresenceStatus.ONLINE)
    )
    if team_id is not None:
        query = query.where(Agent.teams.any(Team.id == team_id))
    found: list[tuple[Agent, int, datetime | None]] = []
    for agent, presence in session.execute(query):
        if agent.id in excluded or agent.id not in connected:
            continue
        n = counts.get(agent.id, 0)
        if n < (presence.capacity or settings.capacity):
            found.append((agent, n, presence.last_assigned_at))
    epoch = datetime.min.replace(tzinfo=utcnow().tzinfo)
    found.sort(key=lambda f: (f[1], f[2] or epoch, f[0].id))
    return [(a, n) for a, n, _at in found]


def agents_online(session: Session, team_id: int | None = None) -> bool:
    """Someone could answer (online and connected), even if busy: then a chat waits in line."""
    connected = live_connection_agents(session)
    query = (
        select(Agent.id)
        .join(AgentPresence, AgentPresence.agent_id == Agent.id)
        .where(Agent.active.is_(True), AgentPresence.status == PresenceStatus.ONLINE)
    )
    if team_id is not None:
        query = query.where(Agent.teams.any(Team.id == team_id))
    return any(agent_id in connected for agent_id in session.scalars(query))


def _offer(session: Session, chat: ChatSession, agent: Agent) -> None:
    now = utcnow()
    chat.status = ChatStatus.OFFERED
    chat.agent_id = agent.id
    chat.agent = agent
    chat.offered_at = now
    presence_row(session, agent).last_assigned_at = now
    ticket = chat.ticket
    events.send_event_on_commit(
        session,
        "chat.offer",
        {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "subject": ticket.subject,
            "customer": ticket.customer.display_name,
        },
        rooms=[f"agent:{agent.id}"],
    )


def route(session: Session, chat: ChatSession) -> None:
    """Offer the chat to the best available agent, or leave it waiting."""
    if chat.status is not ChatStatus.WAITING:
        return
    candidates = available_agents(session, team_id=chat.team_id, exclude=chat.declined)
    if candidates:
        _offer(session, chat, candidates[0][0])
    _announce_chat(session, chat)


def dispatch(session: Session) -> None:
    """Route waiting chats, oldest first, while anyone has capacity."""
    waiting = session.scalars(
        select(ChatSession)
        .where(ChatSession.status == ChatStatus.WAITING)
        .order_by(ChatSession.created_at, ChatSession.id)
        .limit(200)
    ).all()
    for chat in waiting:
        route(session, chat)
    if waiting:
        _announce_queue(session)


def queue_position(session: Session, chat: ChatSession) -> int | None:
    if chat.status is not ChatStatus.WAITING:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(ChatSession)
        .where(
            ChatSession.status == ChatStatus.WAITING,
            (ChatSession.created_at < chat.created_at)
            | ((ChatSession.created_at == chat.created_at) & (ChatSession.id < chat.id)),
        )
    )
    return int(ahead or 0) + 1


def chat_state(session: Session, chat: ChatSession) -> dict[str, Any]:
    """Payload of ``chat.state`` (/chat): ``{ticket_id, number, status, agent: {name} | null,
    position: int | null, visitor_read_id, agent_read_id}``."""
    return {
        "ticket_id": chat.ticket_id,
        "number": chat.ticket.number,
        "status": chat.status.value,
        "agent": {"name": chat.agent.name} if chat.agent and chat.status is ChatStatus.ACTIVE
        else None,
        "position": queue_position(session, chat),
        "agent_read_id": chat.agent_read_id,
    }  # fmt: skip


def chat_summary(chat: ChatSession) -> dict[str, Any]:
    """Payload of ``chat.updated`` (/agent, room ``agents``)."""
    return {
        "ticket_id": chat.ticket_id,
        "number": chat.ticket.number,
        "status": chat.status.value,
        "agent_id": chat.agent_id,
        "team_id": chat.team_id,
    }


def _announce_chat(session: Session, chat: ChatSession) -> None:
    session.flush()
    events.send_event_on_commit(
        session, "chat.updated", chat_summary(chat), rooms=["agents", f"ticket:{chat.ticket_id}"]
    )
    events.send_event_on_commit(
        session,
        "chat.state",
        chat_state(session, chat),
        rooms=[f"chat:{chat.ticket_id}"],
        namespace=CHAT_NAMESPACE,
    )


def _announce_queue(session: Session) -> None:
    """Everyone still waiting hears their new place in line."""
    waiting = session.scalars(
        select(ChatSession)
        .where(ChatSession.status == ChatStatus.WAITING)
        .order_by(ChatSession.created_at, ChatSession.id)
        .limit(500)
    ).all()
    for position, chat in enumerate(waiting, start=1):
        events.send_event_on_commit(
            session,
            "chat.queue",
            {"ticket_id": chat.ticket_id, "position": position},
            rooms=[f"chat:{chat.ticket_id}"],
            namespace=CHAT_NAMESPACE,
        )


# ---------------------------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadRef:
    filename: str
    content_type: str
    data: bytes


def check_client_id(client_id: Any) -> str:
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise ServiceError(_("Every message needs a client id."))
    return client_id


def _check_text(text: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(text, str):
        raise ServiceError(_("A message must be text."))
    text = text.strip()
    if not text and not allow_empty:
        raise ServiceError(_("A message cannot be empty."))
    if len(text) > MAX_TEXT:
        raise ServiceError(_("A message can have at most %(n)d characters.", n=MAX_TEXT))
    return text


def uploads_for(session: Session, visitor_id: str, ids: Sequence[Any]) -> list[UploadRef]:
    """The visitor's own uploads by id ("missing" and "not yours" are the same error)."""
    refs: list[UploadRef] = []
    for upload_id in ids[:10]:
        upload = session.get(ChatUpload, upload_id) if isinstance(upload_id, int) else None
        if upload is None or upload.visitor_id != visitor_id:
            raise NotFound(_("Attachment not found."))
        refs.append(UploadRef(upload.filename, upload.content_type, read_bytes(upload.sha256)))
    return refs


def check_upload(
    settings: ChatSettings, filename: str, content_type: str, data: bytes
) -> UploadRef:
    """A file for the chat (either side) within the channel's type and size limits."""
    content_type = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if content_type not in settings.upload_types:
        raise ServiceError(_("This type of file cannot be sent in the chat."))
    if len(data) > settings.upload_max_bytes:
        limit = settings.upload_max_bytes
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
        raise ServiceError(_("Files can be at most %(size)s.", size=size))
    if not data:
        raise ServiceError(_("The file is empty."))
    return UploadRef(clean_filename(filename), content_type, data)


def store_upload(
    session: Session,
    settings: ChatSettings,
    visitor_id: str,
    filename: str,
    content_type: str,
    data: bytes,
) -> ChatUpload:
    ref = check_upload(settings, filename, content_type, data)
    upload = ChatUpload(
        visitor_id=visitor_id,
        filename=ref.filename,
        content_type=ref.content_type,
        size=len(data),
        sha256=store_bytes(data),
    )
    session.add(upload)
    session.flush()
    return upload


def line_from(message: Message) -> str:
    if message.direction is Direction.INBOUND and message.kind is MessageKind.CHAT:
        return "visitor"
    if message.author_agent_id is not None:
        return "agent"
    return "system"


def chat_line(message: Message) -> dict[str, Any]:
    """One chat line, as both namespaces send it (``chat.message``):

    ``{ticket_id, id, client_id, from: "visitor"|"agent"|"system", author, text, html,
    created_at, attachments: [{id, filename, content_type, size}]}``. ``html`` is the sanitized
    rendering of the text (links made clickable); clients may show it as HTML.
    """
    return {
        "ticket_id": message.ticket_id,
        "id": message.id,
        "client_id": (message.meta or {}).get("client_id"),
        "from": line_from(message),
        "author": message.author_name,
        "text": message.body_text,
        "html": message.body_html or "",
        "created_at": message.created_at.isoformat(),
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in message.attachments
        ],
    }  # fmt: skip


def _announce_line(session: Session, chat: ChatSession, message: Message) -> None:
    line = chat_line(message)
    rooms = [f"ticket:{chat.ticket_id}"]
    if chat.agent_id is not None:
        rooms.append(f"agent:{chat.agent_id}")
    events.send_event_on_commit(session, "chat.message", line, rooms=rooms)
    if message.direction is Direction.INBOUND:
        # The visitor's other tabs; the visitor's own agent-bound lines need no outbox.
        events.send_event_on_commit(
            session, "chat.message", line, rooms=[f"chat:{chat.ticket_id}"],
            namespace=CHAT_NAMESPACE,
        )  # fmt: skip


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


def _inbound(
    *,
    visitor_id: str,
    email: str | None,
    name: str | None,
    text: str,
    client_id: str,
    ticket_id: int | None,
    language: str | None,
    attachments: Sequence[UploadRef],
    channel_id: int | None,
    meta: dict[str, Any] | None = None,
) -> InboundMessage:
    return InboundMessage(
        channel_kind="chat",
        identity_kind="email" if email else "chat",
        sender_address=email or visitor_id,
        sender_name=name,
        text=text,
        # Scoped to the visitor: one visitor's ids can never collide with another's lines.
        message_id=f"{visitor_id}/{client_id}",
        ticket_id=ticket_id,
        language=language,
        channel_id=channel_id,
        attachments=[InboundAttachment(a.filename, a.content_type, a.data) for a in attachments],
        meta={**(meta or {}), "client_id": client_id},
    )


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
) -> ChatSession:
    """Open a chat with the visitor's first line and route it. Sending the same start again
    (same client id) returns the chat it opened."""
    settings = chat_settings(session)
    client_id = check_client_id(client_id)
    text = _check_text(text)
    email = (email or "").strip() or None
    if email:
        email = normalize_email(email)
    elif settings.email_required:
        raise ServiceError(_("Please enter your email address."))
    if settings.name_required and not (name or "").strip():
        raise ServiceError(_("Please enter your name."))
    if team_id is not None and session.get(Team, team_id) is None:
        team_id = None
    received = receive(
        session,
        _inbound(
            visitor_id=visitor_id,
            email=email,
            name=(name or "").strip()[:200] or None,
            text=text,
            client_id=client_id,
            ticket_id=None,
            language=language,
            attachments=attachments,
            channel_id=settings.channel_id,
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
    _announce_line(session, chat, received.message)
    route(session, chat)
    _announce_queue(session)
    return chat


def visitor_message(
    session: Session,
    chat: ChatSession,
    *,
    text: str,
    client_id: str,
    attachments: Sequence[UploadRef] = (),
) -> Received:
    """A visitor's line. Idempotent by client id: a re-sent line writes nothing new."""
    client_id = check_client_id(client_id)
    text = _check_text(text, allow_empty=bool(attachments))
    received = receive(
        session,
        _inbound(
            visitor_id=chat.visitor_id,
            # The identity the chat's customer is known by (an email given in the pre-chat form
            # resolves to the same Customer as their mail and portal tickets).
            email=chat.ticket.customer.email,
            name=None,
            text=text,
            client_id=client_id,
            ticket_id=chat.ticket_id,
            language=chat.language,
            attachments=attachments,
            channel_id=chat.channel_id,
        ),
        # The chat's customer, found with the chat (visitor_chat): resolving the identity above
        # again would find the same row with one more SELECT per line.
        sender=chat.ticket.customer,
    )
    if received.duplicate and received.ticket.id != chat.ticket_id:
        raise NotFound(_("Chat not found."))
    if not received.duplicate:
        if received.ticket.id != chat.ticket_id:  # merged away: the line went to the survivor
            raise NotFound(_("Chat not found."))
        _announce_line(session, chat, received.message)
        # The queue needs a chat's latest count and time, not every line's (realtime.py).
        events.coalesce_ticket_updates(session)
    return received


def _find_agent_line(session: Session, chat: ChatSession, client_id: str) -> Message | None:
    recent = session.scalars(
        select(Message)
        .where(Message.ticket_id == chat.ticket_id, Message.direction == Direction.OUTBOUND)
        .order_by(Message.id.desc())
        .limit(200)
    )
    for message in recent:
        if (message.meta or {}).get("client_id") == client_id:
            return message
    return None


def agent_message(
    session: Session,
    chat: ChatSession,
    agent: Agent,
    *,
    text: str,
    client_id: str,
    attachments: Sequence[UploadRef] = (),
) -> tuple[Message, bool]:
    """An agent's line: a reply through the outbox (the chat sender emits it to the visitor,
    or mails it once the chat has ended). Returns ``(message, duplicate)``.

    ``attachments`` were checked against the channel's limits (:func:`check_upload`); the
    visitor opens them with their own token only."""
    client_id = check_client_id(client_id)
    existing = _find_agent_line(session, chat, client_id)
    if existing is not None:
        return existing, True
    text = _check_text(text, allow_empty=bool(attachments))
    if chat.status in (ChatStatus.WAITING, ChatStatus.OFFERED):
        accept(session, chat, agent)
    files = [InboundAttachment(a.filename, a.content_type, a.data) for a in attachments]
    # A file sent alone is a line named after it, so the transcript and a mailed reply say what
    # was sent.
    message = tickets.reply_to_ticket(
        session, chat.ticket, agent, text or ", ".join(a.filename for a in files),
        attachments=files,
    )  # fmt: skip
    message.meta = {**(message.meta or {}), "client_id": client_id, "chat": True}
    session.flush()
    _announce_line(session, chat, message)
    events.coalesce_ticket_updates(session)
    return message, False


def history(session: Session, chat: ChatSession, after_id: int = 0) -> list[Message]:
    """The conversation's lines after ``after_id`` (what a reconnecting side missed)."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.ticket_id == chat.ticket_id,
                Message.id > after_id,
                Message.kind == MessageKind.CHAT,
                Message.internal.is_(False),
            )
            .order_by(Message.id)
            .limit(500)
        )
    )


# ---------------------------------------------------------------------------------------------
# Accept, decline, transfer, end
# ---------------------------------------------------------------------------------------------


def accept(session: Session, chat: ChatSession, agent: Agent) -> None:
    if chat.status is ChatStatus.ENDED:
        raise ServiceError(_("This chat has ended."))
    if chat.status is ChatStatus.ACTIVE and chat.agent_id == agent.id:
        return
    if chat.status is ChatStatus.ACTIVE:
        raise ServiceError(_("Another agent already took this chat."))
    chat.status = ChatStatus.ACTIVE
    chat.agent_id = agent.id
    chat.agent = agent
    chat.accepted_at = utcnow()

    reset_missed(session, agent)
    tickets.assign_ticket(session, chat.ticket, agent, agent)
    if chat.ticket.status is TicketStatus.NEW:
        tickets.set_status(session, chat.ticket, TicketStatus.OPEN, agent)
    audit.record(session, chat.ticket, agent, "chat.accepted")
    _announce_chat(session, chat)
    _announce_queue(session)


def decline(session: Session, chat: ChatSession, agent: Agent) -> None:
    if chat.status is not ChatStatus.OFFERED or chat.agent_id != agent.id:
        raise ServiceError(_("This chat is not offered to you."))
    chat.declined = [*chat.declined, agent.id]
    chat.status = ChatStatus.WAITING
    chat.agent_id = None
    chat.agent = None
    audit.record(session, chat.ticket, agent, "chat.declined")
    route(session, chat)
    _announce_queue(session)


def transfer(
    session: Session,
    chat: ChatSession,
    actor: Agent,
    *,
    to_agent: Agent | None = None,
    to_team: Team | None = None,
) -> None:
    """Hand the chat to another agent (offered to them) or to a team (routed within it)."""
    if chat.status is ChatStatus.ENDED:
        raise ServiceError(_("This chat has ended."))
    if (to_agent is None) == (to_team is None):
        raise ServiceError(_("Choose an agent or a team."))
    if to_agent is not None:
        if not to_agent.active or to_agent.id == chat.agent_id:
            raise ServiceError(_("Choose another agent."))
        if effective_presence(session, to_agent) is not PresenceStatus.ONLINE:
            raise ServiceError(_("%(name)s is not available for chats.", name=to_agent.name))
        chat.declined = [d for d in chat.declined if d != to_agent.id]
        _offer(session, chat, to_agent)
        tickets.assign_ticket(session, chat.ticket, to_agent, actor)
        audit.record(session, chat.ticket, actor, "chat.transferred", to=to_agent.name)
        _announce_chat(session, chat)
    else:
        assert to_team is not None
        chat.team_id = to_team.id
        chat.status = ChatStatus.WAITING
        chat.agent_id = None
        chat.agent = None
        chat.declined = [actor.id]
        tickets.set_team(session, chat.ticket, to_team, actor)
        tickets.assign_ticket(session, chat.ticket, None, actor)
        audit.record(session, chat.ticket, actor, "chat.transferred", to=to_team.name)
        route(session, chat)
    _announce_queue(session)


def end_chat(session: Session, chat: ChatSession, actor: Actor) -> None:
    """End the chat (either side). The ticket stays for follow-up by email."""
    if chat.status is ChatStatus.ENDED:
        return
    chat.status = ChatStatus.ENDED
    chat.ended_at = utcnow()
    audit.record(session, chat.ticket, actor, "chat.ended")
    announcements.announce(session, chat.ticket)
    _announce_chat(session, chat)
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
    text = _check_text(text)
    if not (email or "").strip():
        raise ServiceError(_("Please enter your email address."))
    email = normalize_email(email)
    settings = chat_settings(session)
    received = receive(
        session,
        _inbound(
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
        lines.append(f"[{m.created_at.strftime('%Y-%m-%d %H:%M')} UTC] {who}: {m.body_text}")
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
    audit.record(session, chat.ticket, customer, "chat.transcript", message_id=message.id)
    wake_worker_on_commit(session)
    return message
