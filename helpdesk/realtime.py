"""The agents' Socket.IO namespace ``/agent``: live queue and ticket pages.

Rooms: ``agents`` (every connected agent: queue updates), ``agent:<id>`` (one agent's
notifications), ``team:<id>`` (a team's agents), ``ticket:<id>`` (everyone on a ticket page).

Server -> client events (payloads in docs/architecture.md#events):
``ticket.created`` / ``ticket.updated`` (room ``agents``; ticket summary),
``ticket.message`` (room ``ticket:<id>``; {ticket_id, message_id, direction, kind, internal}),
``message.delivery`` (room ``ticket:<id>``; {ticket_id, message_id, status, error, event}).
Client -> server: ``join_ticket`` {ticket_id} and ``leave_ticket`` {ticket_id}; both answer
with an acknowledgement ``{"ok": bool}``.

Collision detection (payloads in helpdesk/services/ticket_presence.py): server -> client
``ticket.presence`` and ``ticket.typing`` (room ``ticket:<id>``); client -> server
``ticket.heartbeat`` {ticket_id} (ack ``{"ok": bool}``) and ``ticket.typing``
{ticket_id, mode, typing} (no ack). Joining, leaving and disconnecting update the viewers.

Agent presence (payloads in docs/chat-protocol.md): server -> client ``presence.updated``;
client -> server ``presence.set`` and ``presence.heartbeat``, acknowledged with
``{"ok": bool, ...}`` after the commit.

Channels add client -> server events of their own with :func:`register_agent_event` when the app
is created (live chat: ``chat.accept``, ``chat.send``, ... in ``channels/chat/agent_events.py``,
payloads in docs/chat-protocol.md); :func:`agent_call` runs one for the signed-in agent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from flask import current_app, has_app_context, has_request_context, request
from flask_babel import force_locale
from flask_login import current_user
from flask_socketio import Namespace, join_room, leave_room, rooms

from helpdesk.db import read_only_transactions
from helpdesk.extensions import db, socketio
from helpdesk.i18n import _
from helpdesk.models import Agent, Ticket
from helpdesk.services import presence as presence_service
from helpdesk.services import ticket_presence
from helpdesk.services.access import access_ticket
from helpdesk.services.errors import NotFound, ServiceError
from helpdesk.services.events import Event, add_publisher
from helpdesk.socket_payloads import Bool, Id, Int, PayloadError, Str, accepts, error_ack, shape_of

log = logging.getLogger("helpdesk.realtime")

NAMESPACE = "/agent"

AgentEventHandler = Callable[..., Any]
# Client -> server events channels add to the namespace, by handler name (``on_chat_send``).
_agent_events: dict[str, AgentEventHandler] = {}


def _handler_name(event: str) -> str:
    # Event names are dotted ("chat.send"); handlers are on_chat_send.
    return "on_" + (event or "").replace(".", "_")


def register_agent_event(name: str, handler: AgentEventHandler) -> None:
    """Handle the client -> server event ``name`` on ``/agent`` (called by a channel when the
    app is created). ``handler(data)`` runs like a method of the namespace would: in the
    connection's request context (``request.sid``, the agent's session, ``join_room``), with
    ``data`` checked against the shape it declares with ``helpdesk.socket_payloads.accepts``;
    what it returns is the acknowledgement. The namespace's own events cannot be replaced."""
    attr = _handler_name(name)
    if attr in vars(AgentNamespace):
        raise ValueError(f"{name} is an event of the agents' namespace itself")
    if shape_of(handler) is None:
        raise ValueError(f"{name}: the handler declares no payload shape (@accepts)")
    _agent_events[attr] = handler


def current_agent() -> Agent | None:
    """The signed-in, active agent of this connection (re-checked on every event)."""
    return _agent()


def _agent() -> Agent | None:
    user = current_user._get_current_object() if current_user else None
    if isinstance(user, Agent) and user.is_active:
        return user
    return None


def _same_origin() -> bool:
    """Agents connect from the helpdesk's own pages only (Engine.IO lets the chat widget's
    origins through, so the agents' namespace checks for itself)."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    configured = current_app.config.get("SOCKETIO_CORS_ORIGINS") or []
    return (
        origin.rstrip("/") == request.host_url.rstrip("/")
        or configured == "*"
        or origin in configured
    )


def _sid() -> str:
    return str(request.sid)  # type: ignore[attr-defined]


def unauthorized() -> dict[str, Any]:
    """The acknowledgement of an event from a connection whose agent is signed out or
    deactivated."""
    return {"ok": False, "code": "unauthorized", "error": _("Sign in again to continue.")}


def agent_call(
    fn: Callable[[Agent, dict[str, Any]], dict[str, Any]], data: dict[str, Any]
) -> dict[str, Any]:
    """Run one action for the signed-in agent: service, commit, then the acknowledgement
    (``{"ok": False, "code": ..., "error": ...}`` for a refused one, with ``"retry": True`` for
    a failure). ``data`` is the payload as checked against the event's shape."""
    agent = _agent()
    if agent is None:
        return unauthorized()
    with force_locale(agent.language or "en"):
        try:
            result = fn(agent, data)
            db.session.commit()
            return result
        except ServiceError as exc:
            db.session.rollback()
            return error_ack(exc)
        except Exception:
            db.session.rollback()
            log.exception("agent event failed")
            return internal_error(_("Something went wrong. Try again."))


def internal_error(message: str) -> dict[str, Any]:
    """Server trouble: the same event sent again later may succeed."""
    return {"ok": False, "retry": True, "code": "internal", "error": message}


class IsolatedNamespace(Namespace):
    """A namespace whose every event runs in an application context of its own.

    Engine.IO closes a connection whose client stopped answering pings the moment something is
    sent to it, and runs that connection's ``disconnect`` handler right there, inside the
    sender's call. When the sender was another handler's after-commit emit (a tab's departure
    announced to a room of other tabs that went silent with it: a laptop closed), the nested
    handler used to find the outer handler's application context, so the same database session
    (in the middle of its commit: "session is in 'committed' state"), the same ``g`` and the same
    signed-in user; it failed and its viewers stayed until the heartbeat sweep. A handler called
    inside another request or event now gets a fresh context: its own session and user. (Called
    from no request, as a server calls it, Flask-SocketIO makes a fresh one itself. Tests that
    drive handlers in-process from inside a request context therefore end their own
    transaction first, as a concurrent request would have to.)

    Every other event's payload is checked against the shape its handler declares
    (``helpdesk.socket_payloads.accepts``) before the handler runs: a payload of another shape,
    or an event nobody handles, is answered with an error acknowledgement
    (``{ok: false, code, error}``) and never reaches a handler.
    """

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        for attr in dir(type(self)):
            handles = attr.startswith("on_") and attr not in ("on_connect", "on_disconnect")
            if handles and shape_of(getattr(type(self), attr)) is None:
                raise TypeError(f"{type(self).__name__}.{attr} declares no payload (@accepts)")

    def language(self) -> str | None:
        """The language of this connection's error messages (None: the request's locale)."""
        return None

    def trigger_event(self, event: str, *args: Any) -> Any:
        # Event names are dotted ("chat.send"); handlers are on_chat_send.
        name = (event or "").replace(".", "_")
        if name in ("connect", "disconnect"):
            return self._isolated(lambda: super(IsolatedNamespace, self).trigger_event(name, *args))
        handler = getattr(self, "on_" + name, None) if name else None

        def checked(*payload: Any) -> Any:
            shape = shape_of(handler)
            language = self.language()
            with force_locale(language) if language else nullcontext():
                try:
                    if handler is None or shape is None:
                        raise PayloadError(_("Unknown event."), code="unknown_event")
                    data = shape.validate(payload)
                except PayloadError as exc:
                    return exc.ack()
            try:
                return handler(data)
            except Exception:
                log.exception("%s handler failed", event)
                return internal_error(_("Something went wrong. Try again."))

        return self._isolated(
            lambda: self.socketio._handle_event(checked, event, self.namespace, *args)
        )

    @staticmethod
    def _isolated(call: Callable[[], Any]) -> Any:
        if not has_request_context():
            return call()  # as a server calls: Flask-SocketIO makes a fresh context itself
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        with app.app_context():
            return call()


class AgentNamespace(IsolatedNamespace):

    def __getattr__(self, name: str) -> AgentEventHandler:
        # Asked only for names the class does not have: the events channels registered.
        try:
            return _agent_events[name]
        except KeyError:
            raise AttributeError(name) from None

    def on_connect(self, auth: Any = None) -> None:
        agent = _agent()
        if agent is None or not _same_origin():
            # Refuses the connection; the client sees a connect_error.
            raise ConnectionRefusedError("unauthorized")
        join_room("agents")
        join_room(f"agent:{agent.id}")
        for team in agent.teams:
            join_room(f"team:{team.id}")
        try:
            presence_service.agent_connected(db.session, agent, _sid())
            db.session.commit()
        except Exception:
            # Presence is best effort: the queue page must work even if this write fails.
            db.session.rollback()
            log.exception("recording the agent's connection failed")

    def on_disconnect(self, reason: Any = None) -> None:
        # Ticket pages first and whoever the agent is: others must stop seeing this tab.
        try:
            ticket_presence.disconnect(db.session, _sid())
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("removing a closed connection from its tickets failed")
        agent = _agent()
        if agent is None:
            return
        try:
            presence_service.agent_disconnected(db.session, agent, _sid())
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("recording the agent's disconnect failed")

    # -- presence -------------------------------------------------------------------------------

    @accepts(
        status=Str(required=True, max_length=20, choices=("online", "away", "offline")),
        capacity=Int(nullable=True),
    )
    def on_presence_set(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
            presence_service.set_presence(db.session, agent, data["status"])
            if "capacity" in data:  # null: back to the channel's default
                presence_service.set_capacity(db.session, agent, data["capacity"])
            db.session.flush()
            status = presence_service.effective_presence(db.session, agent)
            return {"ok": True, "status": status.value}

        return agent_call(run, data)

    @accepts()
    def on_presence_heartbeat(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(agent: Agent, data: dict[str, Any]) -> dict[str, Any]:
            presence_service.agent_heartbeat(db.session, agent, _sid())
            return {"ok": True}

        return agent_call(run, data)

    # -- ticket pages: rooms and collision detection (payloads: services/ticket_presence.py) -----

    @accepts(ticket_id=Id(required=True))
    def on_join_ticket(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(ticket: Ticket, agent: Agent) -> None:
            # Joined before the commit, so this connection hears its own snapshot.
            join_room(f"ticket:{ticket.id}")
            ticket_presence.join(db.session, ticket, agent, _sid())

        return _viewer_call(data, run)

    @accepts(ticket_id=Id(required=True))
    def on_ticket_heartbeat(self, data: dict[str, Any]) -> dict[str, Any]:
        def run(ticket: Ticket, agent: Agent) -> None:
            ticket_presence.heartbeat(db.session, ticket, agent, _sid())

        return _viewer_call(data, run)

    @accepts(ticket_id=Id(required=True))
    def on_leave_ticket(self, data: dict[str, Any]) -> dict[str, Any]:
        ticket_id: int = data["ticket_id"]
        leave_room(f"ticket:{ticket_id}", sid=request.sid)  # type: ignore[attr-defined]
        try:
            ticket_presence.leave(db.session, ticket_id, _sid())
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("recording that an agent left a ticket failed")
        return {"ok": True}

    @accepts(
        ticket_id=Id(required=True),
        typing=Bool(required=True),
        mode=Str(max_length=10, choices=("reply", "note")),
    )
    def on_ticket_typing(self, data: dict[str, Any]) -> None:
        """Relay "X is typing a reply / writing a note" to the others on the ticket page.

        Ephemeral, nothing stored: the page repeats ``typing: true`` every few seconds while
        keys are pressed and the others let it expire, so a closed tab stops "typing" by itself.
        Only a connection that joined the room (access checked then) may speak in it.
        """
        ticket_id: int = data["ticket_id"]
        if f"ticket:{ticket_id}" not in rooms():
            return
        with read_only_transactions():  # loading the agent must not take SQLite's write lock
            agent = _agent()
        if agent is None:
            return
        socketio.emit(
            "ticket.typing",
            {"ticket_id": ticket_id, "agent_id": agent.id, "name": agent.name,
             "mode": data["mode"] or "reply", "typing": data["typing"]},
            to=f"ticket:{ticket_id}",
            skip_sid=_sid(),
            namespace=NAMESPACE,
        )  # fmt: skip


def _viewer_call(data: dict[str, Any], fn: Callable[[Ticket, Agent], object]) -> dict[str, Any]:
    """Check the agent and their access to the ticket, run one viewer change, commit.

    ``ok`` answers "may this connection follow the ticket": recording the viewer is best
    effort, so a failed write never costs the page its live updates (delivery badges).
    """
    # Every handler re-checks the session: an agent deactivated mid-session loses access.
    agent = _agent()
    if agent is None:
        return unauthorized()
    try:
        ticket = access_ticket(db.session, agent, data["ticket_id"])
    except NotFound as exc:
        db.session.rollback()
        return error_ack(exc)
    assert agent is not None  # access_ticket refuses a missing actor
    try:
        fn(ticket, agent)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("recording an agent on a ticket failed")
    return {"ok": True}


def _emit(event: Event) -> None:
    socketio.emit(event.name, event.payload, to=list(event.rooms), namespace=event.namespace)


class TicketUpdates:
    """``ticket.updated`` events marked ``coalesce`` (chat lines: :func:`helpdesk.services.events.
    coalesce_ticket_updates`) to the room ``agents``: at most one flush per ``window`` seconds,
    carrying at most one event per ticket (its latest state, by ``version``).

    Every connected agent hears every ticket's changes, so with many agents online the queue's
    updates were the largest fan-out of a busy chat: one send per agent per line. Coalesced, a
    burst of lines from any number of chats reaches each agent's socket as one batch per window
    instead of one wake-up per line, and the queue and ticket pages stay exact: the trailing
    edge is always delivered and a ticket's event carries its final state. The first update
    after a quiet window goes at once (leading edge), so a lone line is not delayed; later ones
    wait at most ``window``. Other ticket changes (status, assignee, a reply) are sent at once,
    and drop the ticket's held update when theirs is newer, so a page never steps back.

    Per process: with a message queue each process coalesces what it emits. Updates still held
    when a process stops are lost like any event a browser missed; pages refresh on reconnect.
    """

    def __init__(
        self,
        emit: Callable[[Event], None],
        window: float,
        start: Callable[..., Any],
        sleep: Callable[[float], Any],
    ) -> None:
        self._emit = emit
        self.window = window
        self._start = start
        self._sleep = sleep
        self._lock = threading.Lock()
        # Held while a batch or an immediate update goes out (taken before ``_lock``), so a
        # ticket's older held state is never sent after a newer immediate one.
        self._sending = threading.Lock()
        self._pending: dict[Any, Event] = {}
        self._scheduled = False
        self._last_flush = float("-inf")

    @staticmethod
    def is_queue_update(event: Event) -> bool:
        return (
            event.name == "ticket.updated"
            and event.rooms == ("agents",)
            and event.namespace == NAMESPACE
        )

    @classmethod
    def applies(cls, event: Event) -> bool:
        return event.coalesce and cls.is_queue_update(event)

    def send_now(self, event: Event) -> None:
        """Send a ticket's update that is not coalesced, forgetting an older held one."""
        with self._sending:
            with self._lock:
                key = event.payload.get("id")
                held = self._pending.get(key)
                if held is not None and _version(held) <= _version(event):
                    del self._pending[key]
            self._emit(event)

    def publish(self, event: Event, window: float | None = None) -> None:
        if window is not None:
            self.window = window
        if self.window <= 0:
            self._emit(event)
            return
        with self._lock:
            now = time.monotonic()
            if not self._scheduled and now - self._last_flush >= self.window:
                self._last_flush = now
                send_now, delay = True, 0.0
            else:
                key = event.payload.get("id")
                held = self._pending.get(key)
                # Commits of one ticket can reach us out of order: keep its latest state.
                if held is None or _version(event) >= _version(held):
                    self._pending[key] = event
                send_now, delay = False, self.window - (now - self._last_flush)
                if self._scheduled:
                    return
                self._scheduled = True
        if send_now:
            self._emit(event)
        else:
            self._start(self._flush_after, max(delay, 0.0))

    def _flush_after(self, delay: float) -> None:
        self._sleep(delay)
        self.flush()

    def flush(self) -> None:
        with self._sending:
            with self._lock:
                events = list(self._pending.values())
                self._pending.clear()
                self._scheduled = False
                self._last_flush = time.monotonic()
            for event in events:
                try:
                    self._emit(event)
                except Exception:  # one failed send must not lose the rest of the batch
                    log.exception("sending a coalesced ticket update failed")


def _version(event: Event) -> int:
    version = event.payload.get("version")
    return version if isinstance(version, int) else 0


# Seconds over which ``ticket.updated`` is coalesced; ``TICKET_UPDATES_WINDOW`` in the config
# (``HELPDESK_TICKET_UPDATES_WINDOW``), 0 sends every update at once.
DEFAULT_UPDATES_WINDOW = 0.25
_updates = TicketUpdates(
    _emit, DEFAULT_UPDATES_WINDOW, socketio.start_background_task, socketio.sleep
)


def _publish(event: Event) -> None:
    if TicketUpdates.applies(event):
        window = (
            float(current_app.config.get("TICKET_UPDATES_WINDOW", DEFAULT_UPDATES_WINDOW))
            if has_app_context()
            else None
        )
        _updates.publish(event, window)
        return
    if TicketUpdates.is_queue_update(event):
        _updates.send_now(event)
    else:
        _emit(event)


def init_app() -> None:
    socketio.on_namespace(AgentNamespace(NAMESPACE))
    add_publisher(_publish)
