"""``helpdesk serve``: gunicorn, in-process, with one worker process.

By default (``HELPDESK_ASYNC_MODE`` unset or ``gevent``) gunicorn's gevent worker serves
Flask-SocketIO in ``gevent`` mode: every connection a greenlet, so 1,000 chat visitors are not
1,000 threads handing one GIL around (the benchmark behind this choice: docs/chat.md, "Server
model"). ``HELPDESK_ASYNC_MODE=threading`` keeps gunicorn's gthread worker (one thread per
connection, simple-websocket).

The worker's periodic tasks (outbox, timers, the KB index) run in the same process, as a thread
or a greenlet; its long-running services (mail fetching) in a worker process this one starts and
restarts (:mod:`helpdesk.worker_link`), so a mail backlog never holds up the web. With
``--no-worker`` neither: run ``helpdesk worker`` separately, with ``HELPDESK_MESSAGE_QUEUE`` so
that its Socket.IO events reach this process's clients (docs/operations.md, scaling out).
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from helpdesk.profiling import EventProfiler


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


# Collector thresholds for the serving process: (young, middle, old); CPython's are (700, 10, 10).
GC_THRESHOLDS = (20_000, 50, 100)


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a server holding many connections.

    With 1,000 WebSocket clients the heap holds millions of container objects (threads, queues,
    sockets, each connection's Flask environ), and CPython's defaults ran a young collection
    every 700 allocations and a full one, walking all of them and holding the GIL for ~0.5 s,
    every few seconds under chat load: measured, a quarter of the CPU of a chat line and the
    worst stalls (docs/performance.md, "Live chat"). The app's own objects, loaded once, are
    moved out of the collector's sight (``gc.freeze``: they live as long as the process), and
    collections run less often; cycles are still collected, a full pass about once a minute
    at 100 chat lines/s.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(app: Flask, host: str, port: int, threads: int, *, worker: bool = True) -> None:
    state: dict[str, Any] = {}
    _raise_open_files_limit()
    profiler: EventProfiler | None = None
    if os.environ.get("HELPDESK_PROFILE"):
        profiler = EventProfiler(
            os.environ["HELPDESK_PROFILE"], bool(os.environ.get("HELPDESK_PROFILE_CPU_ONLY"))
        )

    # Engine.IO already runs every incoming message in a thread (greenlet) of its own; Socket.IO
    # would start a second one per event to run the handler in. One is enough: the handler runs
    # in Engine.IO's, which never holds up the connection's reader.
    app.extensions["socketio"].server.async_handlers = False

    def post_worker_init(w: Any) -> None:
        _tune_gc()
        if profiler is not None:
            profiler.install(app)
        if worker and app.config.get("WORKER_ENABLED", True):
            from helpdesk import worker as worker_mod
            from helpdesk.worker_link import WorkerProcess

            socketio = app.extensions["socketio"]
            child = WorkerProcess(
                app,
                spawn=socketio.start_background_task,
                sleep=socketio.sleep,
                # gunicorn clears `alive` on SIGTERM/SIGQUIT/SIGINT, before worker_exit runs
                # (which it may never do if open connections outlast the graceful timeout).
                shutting_down=lambda: not w.alive,
            )
            child.start()
            state["child"] = child
            _thread, stop = worker_mod.start_thread(app, services=False)
            state["stop"] = stop

    def worker_exit(_server: Any, _w: Any) -> None:
        if profiler is not None:
            profiler.dump()
        stop = state.get("stop")
        if stop is not None:
            stop.set()
        child = state.get("child")
        if child is not None:
            child.stop()

    if app.config.get("ASYNC_MODE") == "gevent":
        # Let greenlets started while the app was built finish before gunicorn forks (Flask-
        # Limiter's in-memory storage starts a 10 ms expiry Timer): one forked mid-flight ends
        # in the worker process and trips threading's bookkeeping with a KeyError traceback.
        import gevent

        gevent.sleep(0.1)
    print(f"Helpdesk running on http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    _Server(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": 1,
            **(
                {"worker_class": "gevent", "worker_connections": max(threads, 1000)}
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
