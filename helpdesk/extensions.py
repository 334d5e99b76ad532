"""Extension objects, created unbound and bound to an app in ``create_app``.

``db`` and ``babel`` are what every app has. The web's (``socketio``, ``login_manager``,
``csrf``, ``limiter``) are made on first use, so an app without the web layer (one-off
commands: ``create_app(web=False)``) never imports Flask-SocketIO, Flask-Limiter, Flask-Login
or Flask-WTF (~0.4 s of start-up).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask_babel import Babel

from helpdesk.db import Database

if TYPE_CHECKING:
    from flask_limiter import Limiter
    from flask_login import LoginManager
    from flask_socketio import SocketIO
    from flask_wtf import CSRFProtect

    socketio: SocketIO
    login_manager: LoginManager
    csrf: CSRFProtect
    limiter: Limiter

db = Database()
babel = Babel()


def _socketio() -> Any:
    from flask_socketio import SocketIO

    # async_mode is explicit: auto-detection picks eventlet/gevent when merely installed, which
    # would silently change the server model. Threading + simple-websocket runs under gunicorn's
    # gthread.
    return SocketIO(async_mode="threading")


def _login_manager() -> Any:
    from flask_login import LoginManager

    return LoginManager()


def _csrf() -> Any:
    from flask_wtf import CSRFProtect

    return CSRFProtect()


def _limiter() -> Any:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    return Limiter(key_func=get_remote_address, default_limits=[])


_LAZY: dict[str, Callable[[], Any]] = {
    "socketio": _socketio,
    "login_manager": _login_manager,
    "csrf": _csrf,
    "limiter": _limiter,
}
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """The web's extension objects, each made once on first use (PEP 562)."""
    factory = _LAZY.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        made = globals().get(name)
        if made is None:
            made = globals()[name] = factory()
    return made
