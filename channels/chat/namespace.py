"""The visitors' Socket.IO namespace ``/chat`` (adapter): every event is parse, check, one
service call, commit, then the acknowledgement. Event names and payloads: docs/chat-protocol.md;
each handler declares its payload (``@accepts``), checked before it runs
(``helpdesk.socket_payloads``).

Exactly-once: the widget gives every line a client id and keeps it until the acknowledgement,
which is sent only after the commit; the server stores the client id as the Message's id, and
``services.inbound.receive`` ignores a line it already has. So a line re-sent after a reconnect
or a server restart is stored once and acknowledged again with the same message id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from flask import current_app, request
from flask_babel import force_locale
from flask_socketio import join_room

from channels.chat import satisfaction as chat_satisfaction
from channels.chat import suggest
from channels.chat.lifecycle import (
    end_chat,
    mark,
    offline_ticket,
    request_transcript,
    start_chat,
    visitor_chat,
)
from channels.chat.lines import (
    CLIENT_ID,
    LINE_TEXT,
    MAX_TEXT,
    history,
    uploads_for,
    visitor_message,
)
from channels.chat.models import ChatSession
from channels.chat.payloads import chat_line, chat_state
from channels.chat.routing import agents_online
from channels.chat.settings import chat_settings, is_open
from channels.chat.tokens import new_visitor, read_token
from helpdesk.db import read_only_transactions
from helpdesk.extensions import db, socketio
from helpdesk.i18n import _
from helpdesk.realtime import IsolatedNamespace, internal_error
from helpdesk.services import customer_forms
from helpdesk.services.custom_fields import FieldErrors
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.satisfaction import MAX_COMMENT
from helpdesk.socket_payloads import (
    Bool,
    Field,
    Id,
    Ids,
    Int,
    PayloadError,
    Str,
    accepts,
    error_ack,
)

log = logging.getLogger("helpdesk.chat")

NAMESPACE = "/chat"


class _Bucket:
    """A sliding-window limit for one connection: at most ``limit`` events per ``window``."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.times: deque[float] = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


class _Connection:
    def __init__(self, visitor_id: str | None, language: str) -> None:
        self.visitor_id = visitor_id
        self.language = language
        self.bucket: _Bucket | None = None
        self.ticket_id: int | None = None


def _sid() -> str:
    return str(request.sid)  # type: ignore[attr-defined]


def _too_fast(**extra: Any) -> dict[str, Any]:
    return {"ok": False, "code": "rate_limited", "error": _("You are sending too fast."), **extra}


EMAIL = Str(max_length=320)
NAME = Str(max_length=200)


@dataclass(frozen=True)
class FormAnswers(Field):
    """A pre-chat form's custom field answers: ``{key: value}``, each value text, a number,
    true/false or a list of option values, as custom fields take them (the service checks them
    against the fields, one error per field)."""

    max_keys: int = 100

    def check(self, key: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or len(value) > self.max_keys:
            raise self.invalid(key)
        for name, answer in value.items():
            items = answer if isinstance(answer, list) else [answer]
            if len(name) > 40 or len(items) > 500:
                raise self.invalid(key)
            for item in items:
                if item is None or isinstance(item, (bool, int, float)):
                    continue
                if not isinstance(item, str) or len(item) > 20_000:
                    raise self.invalid(f"{key}.{name}")
                if "\x00" in item:
                    raise PayloadError(_("Text may not contain NUL characters."),
                                       code="nul_character", field=f"{key}.{name}")  # fmt: skip
        return dict(value)


def _field_errors_ack(exc: FieldErrors) -> dict[str, Any]:
    """Bad pre-chat answers: ``invalid`` naming the first field (``custom.<key>``), with every
    field's message in ``fields`` so the widget shows each beside its input."""
    return {
        "ok": False,
        "code": "invalid",
        "field": next(iter(exc.fields)),
        "error": str(exc),
        "fields": exc.fields,
    }


def _prechat_fields(language: str) -> list[dict[str, Any]]:
    """The custom fields of the pre-chat form, for ``chat.hello``: labels in ``language``."""
    return [
        {
            "name": f.name,
            "group": f.group,
            "key": f.field.key,
            "type": f.field.type.value,
            "label": f.field.label(language),
            "required": f.field.required_on_forms,
            "options": [
                {"value": v, "label": f.field.option_label(v, language)}
                for v in f.field.option_values
            ],
        }
        for f in customer_forms.form_fields(db.session, "prechat")
    ]


class ChatNamespace(IsolatedNamespace):
    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self._conns: dict[str, _Connection] = {}
        self._lock = threading.Lock()

    # -- helpers --------------------------------------------------------------------------------

    def language(self) -> str | None:
        conn = self._conn()
        return conn.language if conn else "en"

    def _conn(self) -> _Connection | None:
        with self._lock:
            return self._conns.get(_sid())

    def _visitor(self) -> tuple[_Connection, str]:
        conn = self._conn()
        if conn is None or conn.visitor_id is None:
            raise NotFound(_("Chat not found."))
        return conn, conn.visitor_id

    def _limited(self, conn: _Connection) -> bool:
        if conn.bucket is None:
            settings = chat_settings(db.session)
            conn.bucket = _Bucket(settings.rate_limit, settings.rate_window)
        return not conn.bucket.allow()

    def _join(self, conn: _Connection, chat: ChatSession) -> None:
        # The only place a visitor enters a room: the chat was looked up by its own visitor id.
        join_room(f"chat:{chat.ticket_id}")
        conn.ticket_id = chat.ticket_id

    def _call(self, fn: Any, data: dict[str, Any], *, readonly: bool = False) -> dict[str, Any]:
        conn = self._conn()
        lang = conn.language if conn else "en"
        # Handlers that only read begin SQLite transactions DEFERRED, so they never take (or
        # wait for) the write lock: a reconnect storm of history fetches does not queue behind
        # writers, nor block them.
        with force_locale(lang), read_only_transactions() if readonly else nullcontext():
            try:
                result: dict[str, Any] = fn(data)
                return result
            except FieldErrors as exc:
                db.session.rollback()
                return _field_errors_ack(exc)
            except ServiceError as exc:
                db.session.rollback()
                return error_ack(exc)
            except Exception:
                db.session.rollback()
                # Never a stack trace to the visitor; the line stays unacknowledged in the
                # widget, which sends it again.
                log.exception("chat event failed")
                return internal_error(_("Something went wrong. Retrying…"))

    # -- connection -----------------------------------------------------------------------------

    def on_connect(self, auth: Any = None) -> None:
        settings = chat_settings(db.session)
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, settings.allowed_origins, request.host_url):
            raise ConnectionRefusedError("origin not allowed")
        auth = auth if isinstance(auth, dict) else {}
        language = auth.get("language") if auth.get("language") in ("en", "bn") else "en"
        with self._lock:
            self._conns[_sid()] = _Connection(read_token(auth.get("token")), str(language))

    def on_disconnect(self, reason: Any = None) -> None:
        with self._lock:
            conn = self._conns.pop(_sid(), None)
        if conn is not None and conn.ticket_id is not None:
            socketio.emit(
                "chat.typing",
                {"ticket_id": conn.ticket_id, "from": "visitor", "typing": False},
                to=f"ticket:{conn.ticket_id}",
                namespace="/agent",
            )

    # -- events ---------------------------------------------------------------------------------

    @accepts(team=Id())
    def on_chat_hello(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn = self._conn()
            assert conn is not None
            token = None
            if conn.visitor_id is None:
                conn.visitor_id, token = new_visitor()
            settings = chat_settings(db.session)
            team_id = data["team"]
            state = None
            try:
                chat = visitor_chat(db.session, conn.visitor_id)
                self._join(conn, chat)
                state = chat_state(db.session, chat)
            except NotFound:
                pass
            return {
                "ok": True,
                "token": token,
                "settings": {
                    "email_required": settings.email_required,
                    "name_required": settings.name_required,
                    "transcript": settings.transcript,
                    "upload_max_bytes": settings.upload_max_bytes,
                    "upload_types": list(settings.upload_types),
                    "max_text": MAX_TEXT,
                    "fields": _prechat_fields(conn.language),
                    # Whether the widget offers a rating at the chat's end, on which scale.
                    "rating": chat_satisfaction.widget_settings(),
                },
                "open": is_open(settings),
                "available": is_open(settings)
                and agents_online(db.session, team_id or settings.team_id),
                "chat": state,
            }

        return self._call(run, data, readonly=True)

    @accepts(
        client_id=CLIENT_ID,
        text=LINE_TEXT,
        name=NAME,
        email=EMAIL,
        team=Id(),
        page_url=Str(max_length=2000, clip=True),
        attachments=Ids(),
        custom=FormAnswers(),
        customer_custom=FormAnswers(),
    )
    def on_chat_start(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            if self._limited(conn):
                return _too_fast(retry=True)
            settings = chat_settings(db.session)
            team_id = data["team"]
            # Nobody to answer (or outside hours): say so before writing anything, so the
            # widget turns into the offline form with the visitor's text still in it.
            if not is_open(settings) or not agents_online(db.session, team_id or settings.team_id):
                db.session.rollback()
                return {"ok": False, "offline": True, "code": "offline",
                        "error": _("No one is available to chat.")}  # fmt: skip
            chat = start_chat(
                db.session,
                visitor_id=visitor,
                text=data["text"],
                client_id=data["client_id"],
                name=data["name"] or None,
                email=data["email"] or None,
                team_id=team_id,
                language=conn.language,
                page_url=data["page_url"] or None,
                attachments=uploads_for(db.session, visitor, data["attachments"] or []),
                custom=data["custom"],
                customer_custom=data["customer_custom"],
            )
            db.session.commit()
            self._join(conn, chat)
            lines = history(db.session, chat)
            return {
                "ok": True,
                "chat": chat_state(db.session, chat),
                "messages": [chat_line(m) for m in lines],
            }

        return self._call(run, data)

    @accepts(
        client_id=CLIENT_ID,
        # Optional: a line may be only a file (the widget then sends "").
        text=Str(max_length=LINE_TEXT.max_length, too_long=LINE_TEXT.too_long),
        attachments=Ids(),
        ticket_id=Id(),
    )
    def on_chat_message(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            if self._limited(conn):
                return _too_fast(retry=True)
            chat = visitor_chat(db.session, visitor, data["ticket_id"] or conn.ticket_id)
            received = visitor_message(
                db.session,
                chat,
                text=data["text"] or "",
                client_id=data["client_id"],
                attachments=uploads_for(db.session, visitor, data["attachments"] or []),
            )
            # Built before the commit expires the message (else two more SELECTs per line);
            # still sent only after the commit succeeded.
            line = chat_line(received.message)
            db.session.commit()
            if conn.ticket_id != chat.ticket_id:
                self._join(conn, chat)
            return {"ok": True, "line": line}

        return self._call(run, data)

    @accepts(after=Int(), ticket_id=Id())
    def on_chat_history(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            after = data["after"] or 0
            chat = visitor_chat(db.session, visitor, data["ticket_id"] or conn.ticket_id)
            self._join(conn, chat)
            return {
                "ok": True,
                "chat": chat_state(db.session, chat),
                "messages": [chat_line(m) for m in history(
                    db.session, chat, after)],
            }  # fmt: skip

        return self._call(run, data, readonly=True)

    @accepts(typing=Bool(required=True))
    def on_chat_typing(self, data: dict[str, Any]) -> None:
        conn = self._conn()
        if conn is None or conn.ticket_id is None:
            return
        # Ephemeral: nothing is stored, so no transaction and no outbox.
        socketio.emit(
            "chat.typing",
            {"ticket_id": conn.ticket_id, "from": "visitor", "typing": data["typing"]},
            to=f"ticket:{conn.ticket_id}",
            namespace="/agent",
        )

    @accepts(delivered=Int(), read=Int())
    def on_chat_read(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            chat = visitor_chat(db.session, visitor, conn.ticket_id)
            mark(db.session, chat, by="visitor", delivered=data["delivered"], read=data["read"])
            db.session.commit()
            return {"ok": True}

        return self._call(run, data)

    @accepts()
    def on_chat_end(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            chat = visitor_chat(db.session, visitor, conn.ticket_id)
            end_chat(db.session, chat, chat.ticket.customer)
            db.session.commit()
            return {"ok": True, "chat": chat_state(db.session, chat)}

        return self._call(run, data)

    @accepts(
        score=Str(required=True, max_length=4, choices=chat_satisfaction.SCORES),
        comment=Str(max_length=MAX_COMMENT),
    )
    def on_chat_rate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The visitor rates the ended chat (channels/chat/satisfaction.py)."""

        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            if self._limited(conn):
                return _too_fast()
            chat = visitor_chat(db.session, visitor, conn.ticket_id)
            survey = chat_satisfaction.rate_chat(db.session, chat, data["score"], data["comment"])
            db.session.commit()
            return {"ok": True, "rating": chat_satisfaction.rating_state(survey)}

        return self._call(run, data)

    @accepts(email=EMAIL)
    def on_chat_transcript(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            if self._limited(conn):
                return _too_fast()
            chat = visitor_chat(db.session, visitor, conn.ticket_id)
            request_transcript(db.session, chat, data["email"] or None)
            db.session.commit()
            return {"ok": True}

        return self._call(run, data)

    @accepts(
        client_id=CLIENT_ID,
        email=Str(required=True, max_length=320),
        text=LINE_TEXT,
        name=NAME,
    )
    def on_chat_offline(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, visitor = self._visitor()
            if self._limited(conn):
                return _too_fast(retry=True)
            received = offline_ticket(
                db.session,
                visitor_id=visitor,
                email=data["email"],
                text=data["text"],
                client_id=data["client_id"],
                name=data["name"] or None,
                language=conn.language,
            )
            db.session.commit()
            return {"ok": True, "number": received.ticket.number}

        return self._call(run, data)

    @accepts(
        # The visitor's first question: its beginning is query enough.
        q=Str(required=True, max_length=500, clip=True),
        lang=Str(max_length=5, choices=("en", "bn")),
    )
    def on_chat_suggest(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(data: dict[str, Any]) -> dict[str, Any]:
            conn, _visitor = self._visitor()
            if self._limited(conn):
                return {"ok": True, "articles": []}
            query = data["q"]
            lang = data["lang"] or conn.language
            # The KB records the search in its own transaction: hold no database lock meanwhile.
            db.session.rollback()
            return {"ok": True, "articles": suggest.suggest(current_app, query, str(lang))}

        return self._call(run, data, readonly=True)


def origin_allowed(origin: str | None, allowed: tuple[str, ...] | list[str], host_url: str) -> bool:
    """The helpdesk's own pages, and the sites the chat channel lists, may embed the widget."""
    if not origin:
        return True  # not a browser (a script or server-side client): tokens still apply
    origin = origin.rstrip("/")
    return origin == host_url.rstrip("/") or "*" in allowed or origin in allowed
