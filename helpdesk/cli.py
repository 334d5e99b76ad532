"""The ``helpdesk`` command (also ``flask --app helpdesk``).

Errors a user can cause print one line and exit non-zero; lists have ``--json`` for scripts.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole, ChannelKind, Message, TicketStatus
from helpdesk.services.errors import ServiceError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a ServiceError into ``Error: <message>`` and exit status 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ServiceError as exc:
            raise click.ClickException(str(exc)) from None

    return cast(F, wrapper)


def field_args(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--field key=value`` options as the queue's ``cf.<key>`` arguments."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE.", param_hint="--field")
        out[f"cf.{key.strip()}"] = value.strip()
    return out


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


# ---------------------------------------------------------------------------------------------


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from helpdesk.migrate import upgrade

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    upgrade(app)
    _index_existing_tickets(app)
    click.echo(f"Database ready: {_safe_url(current_app.config['DATABASE_URL'])}")
    click.echo(f"Instance folder: {current_app.instance_path}")


def _index_existing_tickets(app: Flask) -> None:
    """After the migration that adds the search index, index the tickets that already exist
    (new ones are indexed in their own transaction from then on); after an upgrade that changed
    the text analysis, index them again (the old documents answer searches meanwhile)."""
    from sqlalchemy import text
    from tqdm import tqdm

    from helpdesk.models import Ticket
    from helpdesk.models.search import TABLE
    from helpdesk.services import search_index

    engine = db.engine(app)
    with engine.connect() as conn:
        tickets = conn.execute(select(Ticket.id).limit(1)).first()
        indexed = conn.execute(text(f"SELECT 1 FROM {TABLE} LIMIT 1")).first()  # noqa: S608
        outdated = search_index.index_outdated(conn)
        total = search_index.count_tickets(conn) if tickets is not None else 0
    if tickets is not None and (indexed is None or outdated):
        click.echo(
            "Indexing existing tickets for search..."
            if indexed is None
            else "The search's text analysis changed: indexing the tickets again..."
        )
        with tqdm(total=total, unit="ticket", disable=None) as bar:
            search_index.reindex_all(engine, progress=bar.update)
    elif outdated or indexed is None:
        with engine.begin() as conn:
            search_index.record_analyzer(conn)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Only load when the database has no agents yet.")
@with_appcontext
def demo_command(if_empty: bool) -> None:
    """Load demo agents, teams, customers, tickets and tasks (English and Bengali)."""
    from helpdesk.demo import load_demo

    with db.transaction() as session:
        if if_empty and session.scalar(select(Agent.id).limit(1)) is not None:
            click.echo("Demo data already present; nothing loaded.")
            return
        summary = load_demo(session)
        # Channels and the knowledge base add their own demo data through registered hooks.
        for hook in current_app.extensions.get("helpdesk.demo_hooks", []):
            hook(session)
    click.echo(
        f"Demo loaded: {summary['agents']} agents, {summary['customers']} customers, "
        f"{summary['tickets']} tickets, {summary['tasks']} tasks."
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--threads",
    default=64,
    show_default=True,
    type=int,
    help="Threads, i.e. concurrent connections, on threading; gevent serves at least 1,000.",
)
@click.option("--no-worker", is_flag=True, help="Do not run the worker loop in this process.")
@with_appcontext
def serve_command(host: str, port: int, threads: int, no_worker: bool) -> None:
    """Run the web app, Socket.IO and (by default) the worker in one process (gevent unless
    HELPDESK_ASYNC_MODE=threading)."""
    from helpdesk.links import base_url, served_url
    from helpdesk.server import serve

    app = current_app
    # Links in mail point here unless HELPDESK_BASE_URL says otherwise; the worker process
    # that serve starts inherits it through the environment.
    app.config["SERVED_URL"] = os.environ["HELPDESK_SERVED_URL"] = served_url(host, port)
    base = base_url()
    click.echo(f"Agents sign in at {base}/login; the customer portal is {base}/portal/")
    if not app.config.get("BASE_URL"):
        click.echo(f"Links in mail point at {base}: set HELPDESK_BASE_URL to the public address.")
    serve(current_app._get_current_object(), host, port, threads, worker=not no_worker)  # type: ignore[attr-defined]


@click.command("worker")
@click.option(
    "--services-only",
    is_flag=True,
    help="Only the long-running services (mail fetching), not the tasks: how `helpdesk serve` "
    "runs its worker process.",
)
@with_appcontext
def worker_command(services_only: bool) -> None:
    """Run the worker alone: outbox delivery, mail fetching, timers."""
    import threading

    from helpdesk import worker, worker_link
    from helpdesk.services import channels as channel_service
    from helpdesk.services.effects import set_worker_waker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()

    def _stop(*_args: Any) -> None:
        stop.set()
        worker.kick()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    link = worker_link.child_link(app)
    if link is not None:
        # Started by `helpdesk serve`: the tasks that deliver what services queue run in the web
        # process, so a commit here wakes that one (this process's own loop runs no tasks).
        set_worker_waker(lambda: link.notify("kick"))

        def on_message(kind: str) -> None:
            if kind == "channels_changed":
                channel_service.notify_channels_changed()

        def _orphaned() -> None:
            # The web process is gone (exited, or killed with -9), and a new one may already
            # have started a worker of its own: stop now, and for certain within a few
            # seconds (a batch cut short is rolled back and read again from the checkpoint).
            _stop()
            timer = threading.Timer(worker_link.ORPHAN_GRACE_SECONDS, os._exit, args=(0,))
            timer.daemon = True
            timer.start()

        worker_link.serve_link(link, on_message, on_close=_orphaned)
    worker.run_forever(app, stop, tasks=not services_only)


# ---------------------------------------------------------------------------------------------


@click.group("agent")
def agent_group() -> None:
    """Manage agents."""


@agent_group.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option("--password", default=None, help="Password; asked for when omitted.")
@click.option(
    "--role", type=click.Choice([r.value for r in AgentRole]), default="agent", show_default=True
)
@click.option("--language", type=click.Choice(["en", "bn"]), default=None)
@click.option("--kb-editor", is_flag=True, help="May publish knowledge-base articles.")
@click.option("--timezone", default=None, help="IANA time zone, e.g. Asia/Dhaka.")
@with_appcontext
@user_errors
def agent_add(
    email: str,
    name: str,
    password: str | None,
    role: str,
    language: str | None,
    kb_editor: bool,
    timezone: str | None,
) -> None:
    """Create an agent who can sign in (the Agents admin page invites by mail instead)."""
    from helpdesk.services.agents import create_agent, update_profile

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with db.transaction() as session:
        agent = create_agent(session, email, name, password, role, language)
        agent.kb_editor = kb_editor
        if timezone:
            update_profile(session, agent, name=agent.name, language=language, timezone=timezone)
        click.echo(f"Agent {agent.email} ({agent.role.value}) created with id {agent.id}.")


@agent_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def agent_list(as_json: bool) -> None:
    """List agents."""
    agents = db.session.scalars(select(Agent).order_by(Agent.id)).all()
    rows = [
        {
            "id": a.id,
            "email": a.email,
            "name": a.name,
            "role": a.role.value,
            "kb_editor": a.kb_editor,
            "active": a.active,
            "timezone": a.timezone,
            "invited": a.password_hash is None,
        }
        for a in agents
    ]
    if as_json:
        _emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:>4}  {r['email']:<32} {r['role']:<6} {r['name']}")


# ---------------------------------------------------------------------------------------------


@click.group("events")
def events_group() -> None:
    """Read the event stream (docs/architecture.md#the-event-stream)."""


@events_group.command("tail")
@click.option("--after", type=int, default=None, help="Start after this event id.")
@click.option(
    "--last",
    "count",
    type=int,
    default=20,
    show_default=True,
    help="Without --after: show the newest N events.",
)
@click.option("--follow", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_appcontext
def events_tail(after: int | None, count: int, follow: bool, as_json: bool) -> None:
    """Print events in id order."""
    import time

    from helpdesk.db import read_only_transactions
    from helpdesk.services import stream

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with read_only_transactions():
        with db.transaction(app) as s:
            last = after if after is not None else max(0, stream.last_id(s) - count)
        while True:
            with db.transaction(app) as s:
                batch = stream.read(s, last, 500)
            for event in batch:
                last = event.id
                if as_json:
                    click.echo(json.dumps(event.as_dict(), ensure_ascii=False))
                else:
                    actor = f"{event.actor_type}:{event.actor_id}" if event.actor_id else "system"
                    ticket = f" ticket {event.ticket_id}" if event.ticket_id else ""
                    click.echo(
                        f"{event.id:>8}  {event.occurred_at:%Y-%m-%d %H:%M:%S}  {event.name:<20} "
                        f"{event.subject_type}:{event.subject_id}{ticket}  by {actor}  "
                        + json.dumps(event.data, ensure_ascii=False)
                    )
            if len(batch) == 500:
                continue
            if not follow:
                return
            time.sleep(1.0)


# ---------------------------------------------------------------------------------------------


@click.group("tickets")
def tickets_group() -> None:
    """Look at tickets."""


@tickets_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in TicketStatus]))
@click.option("--channel", type=click.Choice([c.value for c in ChannelKind]))
@click.option(
    "--view",
    type=click.Choice(["unassigned", "open", "pending", "resolved", "all"]),
    default="all",
    show_default=True,
)
@click.option("--tag", default=None)
@click.option(
    "--organization",
    default=None,
    metavar="NAME_OR_ID",
    help="Tickets of this organization's customers (its name or id).",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="KEY=VALUE",
    help="A custom ticket field has this value (a dropdown's option value; repeatable).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N tickets.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@with_appcontext
@user_errors
def tickets_list(
    status: str | None,
    channel: str | None,
    view: str,
    tag: str | None,
    organization: str | None,
    fields: tuple[str, ...],
    limit: int | None,
    as_json: bool,
) -> None:
    """List tickets, most recently updated first (all matching unless --limit)."""
    from helpdesk.services.organizations import find_by_name
    from helpdesk.services.queue import QueueFilter, iter_tickets, ticket_row

    org_id: str | None = None
    if organization is not None:
        found = find_by_name(db.session, organization)
        if found is None and organization.strip().lstrip("#").isdigit():
            org_id = organization.strip().lstrip("#")
        elif found is None:
            raise click.ClickException(f"No organization named {organization!r}.")
        else:
            org_id = str(found.id)
    flt = QueueFilter.from_args(
        {
            "status": status,
            "channel": channel,
            "view": view,
            "tag": tag,
            "organization": org_id,
            **field_args(fields),
        }
    )
    rows: list[dict[str, Any]] = []
    for ticket in iter_tickets(db.session, flt):
        rows.append(ticket_row(ticket))
        if limit is not None and len(rows) >= limit:
            break
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("No tickets.")
    for r in rows:
        click.echo(
            f"#{r['number']:<7} {r['status']:<9} {r['channel']:<7} "
            f"{(r['customer_email'] or r['customer_name'] or '')[:28]:<28} {r['subject'][:60]}"
        )


@tickets_group.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
@user_errors
def tickets_show(number: str, as_json: bool) -> None:
    """Show one ticket (by its number, e.g. 1042 or #1042) with its messages."""
    from helpdesk.models import Ticket
    from helpdesk.services.queue import ticket_row

    raw = number.lstrip("#")
    if not raw.isdigit():
        raise click.BadParameter(f"not a ticket number: {number}", param_hint="NUMBER")
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == int(raw)))
    if ticket is None:
        raise click.ClickException(f"Ticket #{raw} not found.")
    messages = db.session.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
    ).all()
    if as_json:
        from helpdesk.web.api import message_json

        _emit_json({**ticket_row(ticket), "messages": [message_json(m) for m in messages]})
        return
    row = ticket_row(ticket)
    click.echo(f"#{row['number']}  {row['subject']}")
    click.echo(
        f"status {row['status']} · priority {row['priority']} · channel {row['channel']} · "
        f"customer {row['customer_name']} <{row['customer_email'] or '-'}> · "
        f"assignee {row['assignee_name'] or '-'}"
    )
    for m in messages:
        flag = " [internal]" if m.internal else ""
        delivery = f" ({m.delivery_status.value})" if m.delivery_status else ""
        click.echo(
            f"\n--- {m.created_at:%Y-%m-%d %H:%M} {m.author_name or 'system'}"
            f" · {m.kind.value}{flag}{delivery}"
        )
        click.echo(m.body_text)


@click.group("team")
def team_group() -> None:
    """Manage teams and their automatic assignment."""


def _team_json(team: Any) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "members": [m.email for m in sorted(team.members, key=lambda m: m.id)],
        "mode": team.assignment_mode.value,
        "max_open": team.assignment_max_open,
    }


@team_group.command("add")
@click.argument("name")
@click.option("--member", "members", multiple=True, help="An agent's email (repeatable).")
@with_appcontext
@user_errors
def team_add(name: str, members: tuple[str, ...]) -> None:
    """Create a team (automatic assignment off; see set-assignment)."""
    from helpdesk.services.agents import save_team
    from helpdesk.services.customers import normalize_email

    with db.transaction() as session:
        ids = []
        for email in members:
            agent = session.scalar(select(Agent).where(Agent.email == normalize_email(email)))
            if agent is None:
                raise ServiceError(f"No agent with the email {email}.")
            ids.append(agent.id)
        team = save_team(session, None, name=name, member_ids=ids, mode="off", max_open=None)
        click.echo(f"Team {team.name} created with id {team.id}.")


@team_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@with_appcontext
def team_list(as_json: bool) -> None:
    """List teams with their members and assignment mode."""
    from helpdesk.models import Team

    rows = [_team_json(t) for t in db.session.scalars(select(Team).order_by(Team.name))]
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("No teams.")
    for r in rows:
        cap = f" max {r['max_open']}" if r["max_open"] is not None else ""
        click.echo(f"{r['id']:>4}  {r['name']:<24} {r['mode']}{cap}  {', '.join(r['members'])}")


@team_group.command("set-assignment")
@click.argument("team")
@click.option(
    "--mode",
    type=click.Choice(["off", "round-robin", "least-open"]),
    required=True,
    help="Who gets the team's new tickets.",
)
@click.option(
    "--max-open",
    type=click.IntRange(min=1),
    default=None,
    help="At most N new/open/pending tickets per agent (unchanged when omitted).",
)
@click.option("--no-max-open", is_flag=True, help="Remove the maximum.")
@with_appcontext
@user_errors
def team_set_assignment(team: str, mode: str, max_open: int | None, no_max_open: bool) -> None:
    """Turn automatic assignment of TEAM (name or id) off, round robin or least open."""
    from helpdesk.services.agents import find_team
    from helpdesk.services.assignment import set_assignment

    with db.transaction() as session:
        row = find_team(session, team)
        cap = None if no_max_open else (max_open or row.assignment_max_open)
        set_assignment(session, row, mode, cap, None)
        click.echo(
            f"Team {row.name}: {row.assignment_mode.value}"
            + (f", at most {cap} open tickets per agent" if cap else "")
        )


COMMANDS = [
    init_command,
    demo_command,
    serve_command,
    worker_command,
    agent_group,
    tickets_group,
    team_group,
    events_group,
]


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
    from helpdesk.api.cli import token

    app.cli.add_command(token)  # helpdesk token create|list|revoke (REST API tokens)
    from helpdesk.webhooks_cli import webhooks_group

    app.cli.add_command(webhooks_group)  # helpdesk webhooks listen (a local receiver)
    from helpdesk.import_cli import import_group

    app.cli.add_command(import_group)  # helpdesk import tickets FILE.json (services.imports)
    from helpdesk.customers_cli import customers_group, tickets_export

    app.cli.add_command(customers_group)  # helpdesk customers import FILE.csv | export
    tickets_group.add_command(tickets_export)  # helpdesk tickets export [filters] > file.csv


# The commands that run on an app without the web layer (``create_app(web=False)``: no
# blueprints, Socket.IO, sign-in; ~0.4 s of start-up instead of ~2 s), and ``helpdesk`` with
# no command (``--help``). Every other command (``serve``, ``worker``, ``kb`` and ``demo``,
# which need the knowledge base's registration, and any command added later) gets the web app.
CORE_COMMANDS = frozenset(
    {
        "agent",
        "channel",
        "customers",
        "events",
        "import",
        "init",
        "mail",
        "team",
        "tickets",
        "token",
        "webhooks",
    }
)


class _HelpdeskGroup(FlaskGroup):
    """Builds the app only once it knows the command, without the web layer for one-off
    commands (:data:`CORE_COMMANDS`)."""

    def __init__(self, **kwargs: Any) -> None:
        self._command: str | None = None
        super().__init__(create_app=self._create_app, **kwargs)
        # No plugin commands (Flask's ``flask.commands`` entry points): importing them cost
        # every command start-up (Flask-Limiter's, 0.2 s); ``flask --app helpdesk`` has them.
        self._loaded_plugin_commands = True

    def _create_app(self) -> Flask:
        from helpdesk import create_app

        web = self._command is not None and self._command not in CORE_COMMANDS
        app = create_app(web=web)
        if not web:
            # What start-up made (modules, the app, its mappers: ~160,000 objects) lives as
            # long as the command: out of the collector's sight, and collections rarer, so a
            # mail fetch's objects are not scanned again and again (a tenth of its CPU).
            gc.freeze()
            gc.set_threshold(20_000, 10, 10)
        gc.enable()  # off since main(): no collections while start-up makes those objects
        return app

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        # The first name asked for is the command being run (the app is built after this).
        if self._command is None:
            self._command = name
        return super().get_command(ctx, name)


def main() -> None:
    gc.disable()  # until the app is built (_HelpdeskGroup._create_app)
    group = _HelpdeskGroup(
        add_default_commands=False,
        add_version_option=False,
        load_dotenv=False,
        help="The helpdesk: one queue for email, portal and chat.",
    )
    sys.exit(group.main())
