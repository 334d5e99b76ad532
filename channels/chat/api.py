"""``/api/v1/chats``: live chats in the REST API v1, read-only. A chat is a ticket (channel
``chat``) with its routing state (:class:`~channels.chat.models.ChatSession`); this resource
gives both: the visitor (their customer record and chat identity), the page they chatted from,
the status, when it started, was offered, accepted and ended, the agent, the ticket's number
and the lines of the conversation. Follow-ups by email after the chat are on the ticket
(``GET /api/v1/tickets/<number>``).

An agent's token sees what the agent sees in the agent UI: every chat while the agent is
active (:func:`helpdesk.services.access.access_ticket`, the rule of the ticket page and of
:func:`channels.chat.lifecycle.agent_chat`). Registered by :func:`channels.chat.init_app`
through :func:`helpdesk.api.register_resource` (``helpdesk`` never imports ``channels``).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from channels.chat.models import ChatSession, ChatStatus
from channels.chat.payloads import line_from
from helpdesk.api.auth import me
from helpdesk.api.common import errors_doc, id_page, next_cursor
from helpdesk.api.schemas import ID, AttachmentOut, Person, TeamRef, date_time
from helpdesk.api.serialize import attachment_json, iso
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.models import Message, MessageKind, Ticket
from helpdesk.services import webhook_payloads
from helpdesk.services.access import access_ticket
from helpdesk.services.errors import NotFound

blp = Blueprint(
    "api_chats",
    __name__,
    url_prefix="/api/v1/chats",
    description="Live chats (read-only): visitor, page, status, times, agent, ticket, lines.",
)

STATUSES = [s.value for s in ChatStatus]
LINE_FROM = ["visitor", "agent", "system"]


# --- shapes ------------------------------------------------------------------------------------


class ChatVisitor(ma.Schema):
    id = ma.fields.String(
        required=True,
        metadata={"description": "The visitor id (the customer's `chat` identity)"},
    )
    customer = ma.fields.Nested(Person, required=True)


class ChatSummary(ma.Schema):
    id = ma.fields.Integer(required=True)
    ticket_id = ma.fields.Integer(required=True, metadata={"description": "The events' ticket_id"})
    number = ma.fields.Integer(required=True, metadata={"description": "The ticket's number"})
    subject = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(STATUSES))
    open = ma.fields.Boolean(required=True, metadata={"description": "Not ended yet"})
    visitor = ma.fields.Nested(ChatVisitor, required=True)
    page_url = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "The page the chat started on"}
    )
    language = ma.fields.String(required=True, allow_none=True)
    agent = ma.fields.Nested(
        Person,
        required=True,
        allow_none=True,
        metadata={"description": "Chatting (active), or offered to (offered)"},
    )
    team = ma.fields.Nested(TeamRef, required=True, allow_none=True)
    started_at = date_time(required=True)
    offered_at = date_time(required=True, allow_none=True)
    accepted_at = date_time(required=True, allow_none=True)
    ended_at = date_time(required=True, allow_none=True)


class ChatLine(ma.Schema):
    id = ma.fields.Integer(required=True, metadata={"description": "The message's id"})
    # ("from" is a Python keyword: the JSON name comes from data_key, the value from the dict.)
    from_ = ma.fields.String(
        data_key="from", attribute="from", required=True, validate=validate.OneOf(LINE_FROM)
    )
    author = ma.fields.String(required=True)
    text = ma.fields.String(required=True)
    created_at = date_time(required=True)
    attachments = ma.fields.List(ma.fields.Nested(AttachmentOut), required=True)


class ChatOut(ChatSummary):
    lines = ma.fields.List(
        ma.fields.Nested(ChatLine),
        required=True,
        metadata={"description": "The conversation, oldest first"},
    )


class ChatPage(ma.Schema):
    chats = ma.fields.List(ma.fields.Nested(ChatSummary), required=True)
    next_cursor = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "null on the last page"}
    )


class ChatQuery(ma.Schema):
    status = ma.fields.String(validate=validate.OneOf(STATUSES))
    open = ma.fields.Boolean(metadata={"description": "true: not ended; false: ended"})
    agent = ma.fields.String(
        validate=validate.Regexp(r"^(me|none|[0-9]{1,9})$"),
        metadata={"description": "An agent's id, `me` or `none`"},
    )
    ticket = ma.fields.Integer(validate=ID, metadata={"description": "A ticket's number"})
    customer = ma.fields.Integer(validate=ID, metadata={"description": "A customer's id"})
    limit = ma.fields.Integer(validate=validate.Range(1, 100), load_default=25)
    cursor = ma.fields.String(validate=validate.Length(1, 500))


# --- JSON --------------------------------------------------------------------------------------


def _person(person: Any) -> dict[str, Any] | None:
    if person is None:
        return None
    name = getattr(person, "display_name", None) or person.name
    return {"id": person.id, "name": name, "email": person.email}


def chat_summary(chat: ChatSession) -> dict[str, Any]:
    ticket = chat.ticket
    team = ticket.team
    return {
        "id": chat.id,
        "ticket_id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": chat.status.value,
        "open": chat.status.live,
        "visitor": {"id": chat.visitor_id, "customer": _person(ticket.customer)},
        "page_url": chat.page_url,
        "language": chat.language,
        "agent": _person(chat.agent),
        "team": None if team is None else {"id": team.id, "name": team.name},
        "started_at": iso(chat.created_at),
        "offered_at": iso(chat.offered_at),
        "accepted_at": iso(chat.accepted_at),
        "ended_at": iso(chat.ended_at),
    }


def chat_json(session: Session, chat: ChatSession) -> dict[str, Any]:
    # The conversation's lines as both sides saw them (channels.chat.lines.history's rule),
    # all of them: a transcript is never cut short.
    messages = session.scalars(
        select(Message)
        .where(
            Message.ticket_id == chat.ticket_id,
            Message.kind == MessageKind.CHAT,
            Message.internal.is_(False),
        )
        .order_by(Message.id)
        .options(
            selectinload(Message.attachments),
            selectinload(Message.author_agent),
            selectinload(Message.author_customer),
        )
    )
    return {
        **chat_summary(chat),
        "lines": [
            {
                "id": m.id,
                "from": line_from(m),
                "author": m.author_name,
                "text": m.body_text,
                "created_at": iso(m.created_at),
                "attachments": [attachment_json(a) for a in m.attachments],
            }
            for m in messages
        ],
    }


def _options() -> list[Any]:
    return [
        joinedload(ChatSession.ticket).joinedload(Ticket.customer),
        joinedload(ChatSession.ticket).joinedload(Ticket.team),
        joinedload(ChatSession.agent),
    ]


# --- views -------------------------------------------------------------------------------------


@blp.route("", methods=["GET"])
@blp.arguments(ChatQuery, location="query", as_kwargs=True)
@blp.response(200, ChatPage)
@errors_doc(blp, 400, 401, 429)
def list_chats(**args: Any) -> dict[str, Any]:
    """Chats, newest first (`status`, `open`, `agent`, `ticket`, `customer` filter)."""
    limit = int(args["limit"])
    q = select(ChatSession)
    if args.get("status"):
        q = q.where(ChatSession.status == ChatStatus(args["status"]))
    if args.get("open") is not None:
        ended = ChatSession.status == ChatStatus.ENDED
        q = q.where(~ended if args["open"] else ended)
    agent = args.get("agent")
    if agent == "me":
        q = q.where(ChatSession.agent_id == me().id)
    elif agent == "none":
        q = q.where(ChatSession.agent_id.is_(None))
    elif agent:
        q = q.where(ChatSession.agent_id == int(agent))
    if args.get("ticket") is not None:
        q = q.where(
            ChatSession.ticket_id.in_(select(Ticket.id).where(Ticket.number == args["ticket"]))
        )
    if args.get("customer") is not None:
        q = q.where(ChatSession.customer_id == args["customer"])
    q = id_page(q, ChatSession.id, "chats", args.get("cursor"), limit).options(*_options())
    rows = list(db.session.scalars(q))
    return {
        "chats": [chat_summary(c) for c in rows[:limit]],
        "next_cursor": next_cursor(rows, "chats", limit),
    }


@blp.route("/<int:chat_id>", methods=["GET"])
@blp.response(200, ChatOut)
@errors_doc(blp, 401, 404, 429)
def get_chat(chat_id: int) -> dict[str, Any]:
    """One chat with its lines (the transcript)."""
    chat = db.session.get(ChatSession, chat_id, options=_options())
    if chat is None:
        raise NotFound(_("Chat not found."))
    try:
        access_ticket(db.session, me(), chat.ticket_id)
    except NotFound:
        raise NotFound(_("Chat not found.")) from None
    return chat_json(db.session, chat)


def chat_payload(session: Session, chat_id: int) -> dict[str, Any] | None:
    """A webhook's ``data`` for a chat (the subject of the ``chat.*`` events): as
    ``GET /api/v1/chats/<id>`` returns it."""
    chat = session.get(ChatSession, chat_id, options=_options())
    return chat_json(session, chat) if chat is not None else None


def register(app: Flask) -> None:
    """Serve ``/api/v1/chats`` in the REST API v1 and give webhooks the chat (called by
    :func:`channels.chat.init_app`)."""
    from helpdesk.api import register_resource

    register_resource(app, blp, "Chats")
    webhook_payloads.register_payload("chat", chat_payload)
