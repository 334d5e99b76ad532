"""The floor for bench/chat.py: a bare python-socketio server doing the least a chat server can
(forward each visitor line to the agents' room, acknowledge it), in the same server model as
`helpdesk serve` (threading mode + simple-websocket under gunicorn's gthread worker), so the
difference is what the helpdesk adds: auth, routing, a database commit per line, events.

    gunicorn -k gthread --threads 1200 -b 127.0.0.1:PORT bench._echo_server:app
    BENCH_ASYNC_MODE=gevent gunicorn -k gevent -b 127.0.0.1:PORT bench._echo_server:app
"""

from __future__ import annotations

import os
from typing import Any

import socketio

# bench/chat.py --mode picks it; explicit either way, as in the helpdesk.
sio = socketio.Server(
    async_mode=os.environ.get("BENCH_ASYNC_MODE", "threading"), cors_allowed_origins="*"
)
app = socketio.WSGIApp(sio)


@sio.on("connect", namespace="/agent")
def agent_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    sio.enter_room(sid, "agents", namespace="/agent")


@sio.on("chat.message", namespace="/chat")
def chat_message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    sio.emit("chat.message", data, to="agents", namespace="/agent")
    return {"ok": True, "line": data}


@sio.on("connect", namespace="/chat")
def chat_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    pass
