"""Extension objects, created unbound and bound to an app in ``create_app``."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_socketio import SocketIO
from flask_wtf import CSRFProtect

from helpdesk.db import Database

db = Database()
# async_mode is explicit: auto-detection picks eventlet/gevent when merely installed, which would
# silently change the server model. Threading + simple-websocket runs under gunicorn's gthread.
socketio = SocketIO(async_mode="threading")
babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
