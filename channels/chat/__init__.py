"""Live chat: the channel's adapter, sender, rows and services, all here.

- ``namespace.py``: the visitors' ``/chat`` Socket.IO namespace; ``views.py``: the widget
  bundle, uploads and attachments over HTTP; ``tokens.py``: signed visitor tokens;
  ``suggest.py``: KB suggestions; ``strings.py``: the widget's translated strings.
- ``agent_events.py``: the agents' chat events on ``/agent`` (``chat.accept``, ``chat.send``, ...);
  ``agent_views.py``: an agent sends a file; ``admin.py``: the settings page; ``api.py``:
  ``/api/v1/chats`` in the REST API (read-only).
- ``sender.py``: agent lines to the visitor's room, or by mail after the chat.
- ``models.py``: ``ChatSession``, ``ChatUpload``, ``MissedOffers``.
- services (nothing commits; events on commit): ``settings.py`` (the channel's settings and
  business hours), ``routing.py`` (who handles a chat: offers, accept / decline / transfer,
  timeouts, missed offers), ``lines.py`` (client ids, uploads, the visitor's and the agent's
  lines, history), ``lifecycle.py`` (finding, starting and ending a chat, read marks, offline
  form, transcript), ``payloads.py`` (what the sockets hear).

``channels.registry.register_chat`` (called once by ``create_app``, the composition root) calls
:func:`init_app` and registers what the core asks of the chat."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask


def init_app(app: Flask) -> None:
    from channels.chat.namespace import NAMESPACE, ChatNamespace, origin_allowed
    from channels.chat.views import bp
    from helpdesk.extensions import socketio

    app.register_blueprint(bp)
    socketio.on_namespace(ChatNamespace(NAMESPACE))

    from channels.chat.history import register_history_labels

    register_history_labels()

    from channels.chat.admin import bp as admin_bp
    from channels.chat.agent_views import bp as agent_bp
    from channels.chat.routing import expire_due
    from helpdesk import worker

    app.register_blueprint(admin_bp)
    app.register_blueprint(agent_bp)
    # GET /api/v1/chats[/<id>] in the token API (helpdesk.api's extension point).
    from channels.chat.api import register as register_api

    register_api(app)
    # Offers nobody accepted move on; the database says which are due (any process's worker).
    worker.register_task(app, expire_due)

    # Engine.IO checks the Origin of every Socket.IO request before any namespace sees it. The
    # widget runs on customers' sites, so the chat channel's allowed origins must pass here too;
    # the agents' namespace refuses any foreign origin itself (helpdesk.realtime).
    configured = app.config.get("SOCKETIO_CORS_ORIGINS")
    cache: dict[str, Any] = {"at": 0.0, "origins": ()}

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if configured and (configured == "*" or origin in configured):
            return True
        now = time.monotonic()
        if now - cache["at"] > 5.0:
            from channels.chat.settings import chat_settings
            from helpdesk.extensions import db

            with app.app_context():
                cache["origins"] = chat_settings(db.session).allowed_origins
            cache["at"] = now
        host = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin_allowed(origin, cache["origins"], host)

    server = getattr(socketio, "server", None)
    if server is not None:
        server.eio.cors_allowed_origins = allowed
