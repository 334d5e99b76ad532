"""``helpdesk channel ...`` and ``helpdesk mail ...``: email channels from the command line.

Errors a user can cause print one line and exit non-zero; lists have ``--json``. Passwords are
taken from options or prompted for, stored encrypted, and never printed.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import date, datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from channels.email import accounts as channel_service
from channels.email import services as mail_service
from channels.email.accounts import SECURITY_MODES, OAuth2Config, ServerConfig
from helpdesk.cli import user_errors
from helpdesk.extensions import db
from helpdesk.services import channels as core_channels

_SECURITY = click.Choice(SECURITY_MODES)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _app() -> Flask:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


@click.group("channel")
def channel_group() -> None:
    """Configure channels (email accounts)."""


@channel_group.command("add-email")
@click.argument("name")
@click.option("--address", required=True, help="The support address, e.g. support@example.com.")
@click.option("--imap-host", required=True)
@click.option(
    "--imap-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Default: 993 with ssl, else 143.",
)
@click.option("--imap-user", required=True)
@click.option("--imap-password", default=None, help="Prompted for if no token.")
@click.option("--imap-oauth2-token", default=None, help="A fixed XOAUTH2 access token.")
@click.option(
    "--imap-oauth2-token-url",
    default=None,
    help="OAuth2 token endpoint: sign in with XOAUTH2, access tokens from a refresh token.",
)
@click.option("--imap-oauth2-client-id", default=None)
@click.option("--imap-oauth2-client-secret", default=None)
@click.option("--imap-oauth2-refresh-token", default=None, help="Prompted for if not given.")
@click.option("--imap-oauth2-scope", default=None, help="E.g. https://mail.google.com/")
@click.option("--imap-security", type=_SECURITY, default="ssl", show_default=True)
@click.option("--imap-folder", default="INBOX", show_default=True)
@click.option("--imap-move-to", default=None, help="Move fetched mail here (else: flag Seen).")
@click.option("--team", default=None, help="Team (name or id) new tickets go to.")
@click.option("--smtp-host", default=None)
@click.option(
    "--smtp-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Default: 465 with ssl, 587 with starttls, else 25.",
)
@click.option("--smtp-user", default=None)
@click.option("--smtp-password", default=None)
@click.option("--smtp-security", type=_SECURITY, default="starttls", show_default=True)
@click.option(
    "--smtp-oauth2", is_flag=True, help="Sign in to SMTP with the IMAP OAuth2 settings (XOAUTH2)."
)
@click.option(
    "--acknowledge/--no-acknowledge",
    default=False,
    show_default=True,
    help="Send an automatic acknowledgement for each new ticket.",
)
@with_appcontext
@user_errors
def channel_add_email(
    name: str,
    address: str,
    imap_host: str,
    imap_port: int | None,
    imap_user: str,
    imap_password: str | None,
    imap_oauth2_token: str | None,
    imap_oauth2_token_url: str | None,
    imap_oauth2_client_id: str | None,
    imap_oauth2_client_secret: str | None,
    imap_oauth2_refresh_token: str | None,
    imap_oauth2_scope: str | None,
    imap_security: str,
    imap_folder: str,
    imap_move_to: str | None,
    team: str | None,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_user: str | None,
    smtp_password: str | None,
    smtp_security: str,
    smtp_oauth2: bool,
    acknowledge: bool,
) -> None:
    """Add an email channel: IMAP in, SMTP out (the global SMTP server without --smtp-host)."""
    oauth2 = None
    if imap_oauth2_token_url:
        if imap_oauth2_refresh_token is None:
            imap_oauth2_refresh_token = click.prompt("OAuth2 refresh token", hide_input=True)
        oauth2 = OAuth2Config(
            token_url=imap_oauth2_token_url,
            client_id=imap_oauth2_client_id or "",
            client_secret=imap_oauth2_client_secret,
            refresh_token=imap_oauth2_refresh_token,
            scope=imap_oauth2_scope,
        )
    elif smtp_oauth2:
        raise click.UsageError("--smtp-oauth2 needs --imap-oauth2-token-url.")
    if imap_password is None and imap_oauth2_token is None and oauth2 is None:
        imap_password = click.prompt("IMAP password", hide_input=True)
    if smtp_host and smtp_user and smtp_password is None and not smtp_oauth2:
        smtp_password = click.prompt("SMTP password", hide_input=True)
    imap = ServerConfig(
        host=imap_host,
        port=imap_port or (993 if imap_security == "ssl" else 143),
        user=imap_user,
        password=imap_password,
        oauth2_token=imap_oauth2_token,
        security=imap_security,
        folder=imap_folder,
        move_to=imap_move_to,
        auth="oauth2" if oauth2 is not None else "password",
    )
    smtp = None
    if smtp_host:
        default_port = {"ssl": 465, "starttls": 587}.get(smtp_security, 25)
        smtp = ServerConfig(
            host=smtp_host,
            port=smtp_port or default_port,
            user=smtp_user,
            password=smtp_password,
            security=smtp_security,
            auth="oauth2" if smtp_oauth2 else "password",
        )
    with db.transaction() as session:
        channel = channel_service.add_email_channel(
            session,
            name,
            address=address,
            imap=imap,
            smtp=smtp,
            team=team,
            acknowledge=acknowledge,
            oauth2=oauth2,
        )
        click.echo(f"Email channel {channel.name!r} ({channel.address}) added, id {channel.id}.")


@channel_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@with_appcontext
def channel_list(as_json: bool) -> None:
    """List channels with their health (status, last error, last success, last UID)."""
    from sqlalchemy import select

    from helpdesk.models import Channel

    session = db.session
    rows = [
        channel_service.channel_row(session, c)
        for c in session.scalars(select(Channel).order_by(Channel.id))
    ]
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("No channels.")
    for r in rows:
        click.echo(
            f"{r['id']:>4}  {r['name']:<20} {r['kind']:<6} {r['address'] or '-':<28} "
            f"{r['status']:<8} last success {r['last_success_at'] or '-'} · "
            f"last UID {r['last_uid'] if r['last_uid'] is not None else '-'}"
        )
        if r["last_error"] and r["status"] == "error":
            click.echo(f"      last error: {r['last_error']}")


@click.group("mail")
def mail_group() -> None:
    """Fetch mail and look after quarantined mail."""


def _parse_since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"not a date (YYYY-MM-DD): {value}", param_hint="--since"
        ) from None


def _counts(result: Any) -> str:
    return (
        f"{result.fetched} mails, {result.created} new tickets, "
        f"{result.duplicates} duplicates, {result.quarantined} quarantined, "
        f"{result.held} automatic mails held"
    )


@mail_group.command("fetch")
@click.option("--channel", "channel_name", default=None, help="Only this channel (name or id).")
@click.option("--once", is_flag=True, help="Fetch what is there and exit (else keep watching).")
@click.option("--since", default=None, help="Backfill mail since this date (YYYY-MM-DD).")
@click.option("--verbose", "-v", is_flag=True, help="Print a line per committed batch.")
@with_appcontext
@user_errors
def mail_fetch(channel_name: str | None, once: bool, since: str | None, verbose: bool) -> None:
    """Fetch mail now: new mail, or a --since window, never duplicating what is stored."""
    from channels.email import imap

    since_date = _parse_since(since)
    app = _app()
    with db.transaction() as session:
        if channel_name is not None:
            channels = [core_channels.get_channel(session, channel_name)]
        else:
            channels = channel_service.email_channels(session, active_only=True)
        targets = [(c.id, c.name) for c in channels]
    if not targets:
        raise click.ClickException("No email channels configured.")

    def progress(result: imap.FetchResult) -> None:
        if verbose:
            click.echo(
                f"batch committed: {_counts(result)}",
                err=True,
            )
            sys.stderr.flush()

    failed = False
    for channel_id, name in targets:
        try:
            result = imap.fetch_once(app, channel_id, since=since_date, on_batch=progress)
        except Exception as exc:
            failed = True
            click.echo(f"{name}: {type(exc).__name__}: {exc}", err=True)
            continue
        click.echo(f"{name}: {_counts(result)}")
    if once:
        if failed:
            sys.exit(1)
        return
    stop = threading.Event()

    def _stop(*_args: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo("Watching for new mail (IMAP IDLE); Ctrl+C to stop.")
    watchers = imap.MailWatchers(app, stop, [cid for cid, _n in targets], on_batch=progress)
    watchers.start()
    while not stop.wait(1.0):
        pass
    watchers.join(timeout=30)


@mail_group.group("quarantine")
def quarantine_group() -> None:
    """Mail that could not be processed, kept with its error for replay, and automatic mail
    of no conversation (reason "automatic"), held instead of opening a ticket."""


@quarantine_group.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed mail.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@with_appcontext
def quarantine_list(include_replayed: bool, as_json: bool) -> None:
    """List quarantined mail."""
    rows = [
        mail_service.quarantine_row(item)
        for item in mail_service.quarantined(db.session, include_replayed=include_replayed)
    ]
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("No quarantined mail.")
    for r in rows:
        when = datetime.fromisoformat(r["received_at"]).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{r['id']:>5}  {when}  {r['size']:>8} B  {r['reason']:<9}  {r['error'][:80]}")


@quarantine_group.command("replay")
@click.argument("item_id", type=int)
@with_appcontext
@user_errors
def quarantine_replay(item_id: int) -> None:
    """Run a quarantined mail through the pipeline again."""
    from helpdesk.models import Message

    with db.transaction() as session:
        item = mail_service.get_quarantined(session, item_id)
        outcome = mail_service.replay(session, item)
        if isinstance(outcome, Message):
            click.echo(f"Replayed: message {outcome.id} on ticket #{outcome.ticket.number}.")
            return
        if outcome.reason == mail_service.AUTOMATIC:
            click.echo(
                f"Automatic mail of no conversation ({outcome.error}): held as {outcome.id}."
            )
            return
        error = outcome.error
    # Still failing: the new quarantine entry is committed, and the command says so.
    raise click.ClickException(f"Still cannot process this mail: {error}")


COMMANDS = [channel_group, mail_group]
