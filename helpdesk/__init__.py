"""The helpdesk core. ``create_app`` builds the Flask app:
config -> extensions -> blueprints -> channel senders -> CLI.

``create_app(web=False)`` is the app of a one-off command (``helpdesk mail fetch --once``,
``tickets list``, ...): the same config, database, translations, services' hooks, channels'
registrations and CLI, without the web layer (blueprints, Socket.IO, sign-in, CSRF, rate
limits), which it does not even import: ~0.4 s of start-up instead of ~2 s."""

from __future__ import annotations

import os
import sys

# `helpdesk serve` runs on gevent unless HELPDESK_ASYNC_MODE says otherwise (the benchmark's
# choice, see docs/chat.md "Server model"); every other command (worker, CLI, tests) on plain
# threads. The standard library must be patched before anything else imports it.
# `helpdesk serve` is the console script's first command (options aside).
if (
    "HELPDESK_ASYNC_MODE" not in os.environ
    and os.path.basename(sys.argv[0] if sys.argv else "") == "helpdesk"
    and [a for a in sys.argv[1:] if not a.startswith("-")][:1] == ["serve"]
):
    os.environ["HELPDESK_ASYNC_MODE"] = "gevent"
if os.environ.get("HELPDESK_ASYNC_MODE") == "gevent":
    from gevent import monkey

    monkey.patch_all()

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where the app is made: a mail parser process imports ``helpdesk.inbound``,
    # hence this package, and needs no Flask (0.1 s of its start).
    from flask import Flask

ROOT = Path(__file__).resolve().parent.parent

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None, *, web: bool = True) -> Flask:
    """The app: with the web layer (``helpdesk serve``, ``worker``, tests), or without it
    (``web=False``: what ``helpdesk`` builds for its one-off commands, see
    :data:`helpdesk.cli.CORE_COMMANDS`)."""
    config = dict(config or {})
    instance_path = (
        config.pop("INSTANCE_PATH", None)
        or os.environ.get("HELPDESK_INSTANCE_PATH")
        or str(ROOT / "instance")
    )
    from flask import Flask

    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()),
        template_folder=str(ROOT / "templates"),
        static_folder="static",
    )

    from helpdesk.config import load_config

    if web:
        from helpdesk.web.converters import DatabaseId

        # Every <int:...> in a URL is a database id: one the database cannot hold (2^31 and
        # up) is a page that does not exist (404), not an OverflowError in the driver (500).
        app.url_map.converters["int"] = DatabaseId
    load_config(app, config)
    _init_logging(app)
    _init_core_extensions(app)
    if web:
        _init_web_extensions(app)
        _register_blueprints(app)
    else:
        _init_core_only(app)
    _register_channels(app, web=web)
    _register_worker_tasks(app)

    from helpdesk import cli

    cli.register(app)
    return app


def _init_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def _init_core_extensions(app: Flask) -> None:
    from helpdesk import i18n
    from helpdesk.extensions import babel, db

    db.init_app(app)
    babel.init_app(
        app,
        locale_selector=i18n.select_locale,
        timezone_selector=i18n.select_timezone,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    i18n.install_jinja(app)  # templates' gettext writes counts in the locale's digits


def _init_web_extensions(app: Flask) -> None:
    from helpdesk import auth
    from helpdesk.extensions import csrf, limiter, login_manager

    csrf.init_app(app)
    limiter.init_app(app)
    auth.init_login(app, login_manager)
    _init_socketio(app)


def _init_core_only(app: Flask) -> None:
    """What the web's set-up does that an app without it still needs."""
    from helpdesk import search_cli
    from helpdesk.db import HelpdeskSession
    from helpdesk.services import search_index

    search_index.install(HelpdeskSession)  # new tickets are indexed in their transaction
    search_cli.register()  # `helpdesk tickets search`, `reindex`
    if app.config.get("MESSAGE_QUEUE"):
        # Scaled out: what a one-off command changes (mail it fetched) reaches the agents'
        # browsers through the queue, as from any web process.
        _init_socketio(app)


def _init_socketio(app: Flask) -> None:
    from helpdesk import realtime, worker_link
    from helpdesk.extensions import socketio

    link = worker_link.child_link(app)
    manager: dict[str, Any] = (
        # `helpdesk serve`'s worker process: its emits reach the browsers through the web
        # process that started it (with no message queue to share).
        {"client_manager": worker_link.LinkManager(link)}
        if link is not None and not app.config.get("MESSAGE_QUEUE")
        else {}
    )
    if not manager:
        # Flask-SocketIO keeps the options of the last init_app, and a message queue's client
        # manager is one it only ever sets: an app made without a queue after one made with it
        # (tests, tools that build two apps) would still publish through that queue.
        socketio.server_options.pop("client_manager", None)
    socketio.init_app(
        app,
        **manager,
        # Explicit, never detected: threading (gunicorn gthread) unless configured otherwise.
        async_mode=app.config.get("ASYNC_MODE") or "threading",
        message_queue=app.config.get("MESSAGE_QUEUE"),
        cors_allowed_origins=app.config.get("SOCKETIO_CORS_ORIGINS"),
        ping_interval=float(app.config["SOCKETIO_PING_INTERVAL"]),
        ping_timeout=float(app.config["SOCKETIO_PING_TIMEOUT"]),
        max_http_buffer_size=int(app.config["SOCKETIO_MAX_FRAME_BYTES"]),
        # Keeps the Flask session (the login) visible to handlers, per connection.
        manage_session=True,
        logger=False,
        engineio_logger=False,
    )
    realtime.init_app()


def _register_blueprints(app: Flask) -> None:
    from helpdesk.web import (
        admin,
        admin_agents,  # noqa: F401  (routes on the admin blueprint)
        admin_calendars,  # noqa: F401  (routes on the admin blueprint)
        admin_custom_fields,  # noqa: F401  (routes on the admin blueprint)
        admin_rules,  # noqa: F401  (routes on the admin blueprint)
        admin_sla,  # noqa: F401  (routes on the admin blueprint)
        admin_teams,  # noqa: F401  (routes on the admin blueprint)
        admin_webhooks,  # noqa: F401  (routes on the admin blueprint)
        agent,
        agent_actions,  # noqa: F401  (routes on the agent blueprint)
        api,
        attachments,
        auth_views,
        customers,  # noqa: F401  (routes on the agent blueprint)
        errors,
        filters,
        macros,  # noqa: F401  (routes on the agent blueprint)
        notifications,  # noqa: F401  (routes on the agent blueprint)
        profile,
        security,
        tasks,  # noqa: F401  (routes on the agent blueprint)
        views,  # noqa: F401  (routes on the agent blueprint)
    )

    filters.register(app)

    @app.get("/")
    def index() -> Any:
        from flask import redirect, url_for
        from flask_login import current_user

        # Agents land on their queue, everyone else on the customer portal.
        target = "agent.queue" if getattr(current_user, "is_agent", False) else "portal.home"
        return redirect(url_for(target))

    errors.register(app)
    security.register(app)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(agent.bp)
    app.register_blueprint(attachments.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(profile.bp)  # /agent/profile, /welcome/<token>
    from helpdesk import api as rest_api

    rest_api.init_app(app)  # /api/v1/ (token API, OpenAPI), /api/docs
    from helpdesk import search_cli
    from helpdesk.web import search

    search.init_app(app)
    search_cli.register()
    from helpdesk.web import satisfaction as satisfaction_views

    satisfaction_views.register(app)  # ratings on the ticket, agents and timeline pages


def _register_worker_tasks(app: Flask) -> None:
    from helpdesk import worker
    from helpdesk.services import tickets
    from helpdesk.services.assignment import assign_waiting_task, auto_assign
    from helpdesk.services.effects import set_worker_waker

    # Services wake the worker through effects, never by importing it.
    set_worker_waker(worker.kick)
    # A ticket moved into a team is offered to its auto-assignment (tickets cannot import it).
    tickets.on_team_set(auto_assign)

    # Tickets that arrived while nobody in an auto-assigning team was available.
    worker.register_task(app, assign_waiting_task)
    # Durable timers in the database: tasks' reminders, tickets' follow-up dates.
    from helpdesk.services import reminders

    worker.register_task(app, reminders.fire_due)
    # SLA: warnings and breaches from their durable timers, and the background recompute of
    # open tickets after a policy or calendar change (noted by a stream consumer).
    from helpdesk.services import sla, stream

    sla.forget()  # a new app may be a new database (tests): no policies kept from another
    worker.register_task(app, sla.fire_due)
    stream.register_consumer(sla.CONSUMER, sla.on_change, start_at_end=True)
    # Automation rules: triggers on the stream (from its end when first run: a new rule is
    # not run on the past), time rules swept from the worker.
    from helpdesk.services import rules

    rules.forget()
    stream.register_consumer(rules.CONSUMER, rules.on_event, start_at_end=True)
    worker.register_task(app, rules.run_time_rules)
    # Satisfaction surveys: asked when a ticket is resolved (a consumer of ticket.updated).
    from helpdesk.services import satisfaction

    stream.register_consumer(satisfaction.CONSUMER, satisfaction.on_event, start_at_end=True)

    # Webhooks: their own loop among the worker's services (serve's worker process), which
    # fans new events out into deliveries (a durable stream consumer) and sends what is due.
    from helpdesk.services import webhook_service

    worker.register_service(app, webhook_service.start_service)


def _register_channels(app: Flask, *, web: bool = True) -> None:
    """Outbound senders by channel kind; the core only ever asks "deliver this message"."""
    import kb
    from channels.portal import init_app as init_portal
    from channels.registry import register_chat, register_email, register_senders

    register_senders(app, web=web)
    register_email(app, web=web)
    init_portal(app, web=web)
    if web:
        kb.init_app(app)
    else:
        # The knowledge base registers itself with its pages; without the web, its commands
        # are listed (`helpdesk --help`) but run on the web app (helpdesk.cli.CORE_COMMANDS).
        from kb.cli import kb_group

        app.cli.add_command(kb_group)
    # Ticket search analyses text by the KB's rules (Bengali + English); helpdesk never
    # imports kb, so the analyzer is handed over here, in the composition root.
    from helpdesk.services.search_index import register_analyzer
    from kb.analysis import ANALYZER_VERSION, analyzer_for

    register_analyzer(app, analyzer_for("bn"), version=ANALYZER_VERSION)
    register_chat(app, web=web)
