"""``helpdesk import tickets FILE.json [--dry-run]``: the REST API's ticket import
(``services.imports``) from a file, for a migration run on the server itself (no web layer).

The file is ``{"tickets": [...]}`` (the API's body) or the list itself, of any length. Every
ticket of the whole file is checked first (fields, agents): nothing is written when one is
wrong. Then it is imported in parts of a request's size (at most 1,000 tickets and 20,000
messages), each committed on its own, with a progress bar; a part that fails stops the run,
and running the same file again skips what was imported (``external_id``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.models import Agent, AgentRole
from helpdesk.services import imports
from helpdesk.services.errors import ServiceError


@click.group("import")
def import_group() -> None:
    """Bring data over from another helpdesk."""


def _admin(email: str | None) -> Agent:
    query = select(Agent).where(Agent.role == AgentRole.ADMIN, Agent.active.is_(True))
    if email:
        query = query.where(Agent.email == email.strip().lower())
    admins = list(db.session.scalars(query.limit(2)))
    if len(admins) == 1:
        return admins[0]
    if email:
        raise click.ClickException(f"No active admin with the email {email}.")
    raise click.ClickException("Name the admin the import is recorded as: --admin EMAIL.")


def _read(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path}: not a JSON file ({exc}).") from None
    if isinstance(data, dict):
        data = data.get("tickets")
    if not isinstance(data, list):
        raise click.ClickException(f'{path}: expected {{"tickets": [...]}} or a list of tickets.')
    return data


def _parts(raw: list[Any]) -> list[tuple[int, int]]:
    """The file cut into requests' worth: at most 1,000 tickets and 20,000 messages each."""
    parts: list[tuple[int, int]] = []
    start, messages = 0, 0
    for i, ticket in enumerate(raw):
        count = len(ticket.get("messages") or []) if isinstance(ticket, dict) else 0
        count = count if isinstance(count, int) else 0
        if i > start and (
            i - start >= imports.MAX_TICKETS or messages + count > imports.MAX_REQUEST_MESSAGES
        ):
            parts.append((start, i))
            start, messages = i, 0
        messages += count
    if start < len(raw):
        parts.append((start, len(raw)))
    return parts


def _fail(exc: imports.InvalidImport) -> click.ClickException:
    lines = [str(exc)] + [f"  {where}: {message}" for where, message in exc.fields.items()]
    return click.ClickException("\n".join(lines))


@import_group.command("tickets")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--admin", "email", help="The admin it is recorded as (default: the only admin).")
@click.option("--dry-run", is_flag=True, help="Check the file and count; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@with_appcontext
def import_tickets(file: Path, email: str | None, dry_run: bool, as_json: bool) -> None:
    """Import tickets with their messages from FILE.json (the API's format, docs/api.md
    "Imports"): every time kept, no mail, notification, assignment or rule."""
    raw = _read(file)
    actor = _admin(email)
    parts: list[list[imports.ImportTicket]] = []
    try:
        for start, end in _parts(raw):
            parts.append(imports.parse_tickets(raw[start:end], start=start))
        every = [t for part in parts for t in part]
        seen: dict[str, int] = {}
        for i, t in enumerate(every):
            if t.external_id is not None and seen.setdefault(t.external_id, i) != i:
                first = seen[t.external_id]
                message = f"The same external_id as tickets.{first}."
                raise imports.InvalidImport({f"tickets.{i}.external_id": message})
        imports.agent_ids(db.session, every)
    except imports.InvalidImport as exc:
        raise _fail(exc) from None
    results: list[imports.ImportedTicket] = []
    progress = sys.stderr  # stdout stays the result (--json)
    with click.progressbar(length=len(every), label="Importing", file=progress) as bar:
        for part in parts:
            try:
                result = imports.import_tickets(db.session, actor, part)
            except ServiceError as exc:
                db.session.rollback()
                raise click.ClickException(str(exc)) from None
            if dry_run:
                db.session.rollback()
            else:
                db.session.commit()
            results.extend(result.tickets)
            bar.update(len(part))
    imported = [t.number for t in results if not t.skipped]
    skipped = sum(1 for t in results if t.skipped)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "imported": len(imported),
                    "skipped": skipped,
                    "tickets": [
                        {"number": t.number, "external_id": t.external_id, "skipped": t.skipped}
                        for t in results
                    ],
                }
            )
        )
        return
    verb = "Would import" if dry_run else "Imported"
    span = f" (#{imported[0]}–#{imported[-1]})" if imported and not dry_run else ""
    click.echo(f"{verb} {len(imported)} tickets{span}; {skipped} imported before, skipped.")
