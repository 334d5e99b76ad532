"""``helpdesk serve``: gunicorn with the gthread worker, in-process.

Flask-SocketIO in ``threading`` mode with simple-websocket runs WebSocket connections on
gunicorn's threaded worker (one process, many threads; see docs/operations.md for scaling out
with several processes behind Redis). The worker loop runs as a thread in the same process
unless ``--no-worker`` (then run ``helpdesk worker`` separately).
"""

from __future__ import annotations

import contextlib
import resource
import threading
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def _raise_open_files_limit() -> None:
    """Each WebSocket is an open file; many systems start processes with a soft limit of 1,024,
    below what ``--threads 1200`` serves. Lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        # If refused, keep the limit we have: connections beyond it are refused, not crashed.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(app: Flask, host: str, port: int, threads: int, *, worker: bool = True) -> None:
    state: dict[str, threading.Event] = {}
    _raise_open_files_limit()

    def post_worker_init(_w: Any) -> None:
        if worker and app.config.get("WORKER_ENABLED", True):
            from helpdesk import worker as worker_mod

            _thread, stop = worker_mod.start_thread(app)
            state["stop"] = stop

    def worker_exit(_server: Any, _w: Any) -> None:
        stop = state.get("stop")
        if stop is not None:
            stop.set()

    print(f"Helpdesk running on http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    _Server(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": 1,
            **(
                {"worker_class": "gevent", "worker_connections": threads}
                if app.config.get("ASYNC_MODE") == "gevent"
                # gthread also caps open connections at worker_connections (default 1,000:
                # why earlier runs stopped at 980 visitors + 20 agents). A WebSocket holds a
                # thread; idle keep-alive HTTP connections don't, and gunicorn keeps only
                # worker_connections - threads of them (0 would turn keep-alive off).
                else {
                    "worker_class": "gthread",
                    "threads": threads,
                    "worker_connections": 2 * threads,
                }
            ),
            # WebSocket and long-polling connections stay open; don't kill the worker for it.
            "timeout": 0,
            "graceful_timeout": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "post_worker_init": post_worker_init,
            "worker_exit": worker_exit,
        },
    ).run()
