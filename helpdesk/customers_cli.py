"""``helpdesk customers import FILE.csv [--organizations] [--dry-run]``: the admin page's CSV
import (``services.customer_import``) from the server's command line, with a progress bar on
stderr and the report (created, updated, skipped and why, errors by row) on stdout.
``helpdesk customers export [--organizations]`` and ``helpdesk tickets export [filters]``
write the pages' CSV exports (``services.csv_export``) to stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from flask.cli import with_appcontext

from helpdesk.cli import field_args
from helpdesk.extensions import db
from helpdesk.models import ChannelKind, TicketStatus
from helpdesk.services import csv_export, customer_import
from helpdesk.services.errors import ServiceError
from helpdesk.services.queue import QueueFilter


@click.group("customers")
def customers_group() -> None:
    """Customers and organizations in bulk."""


@customers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--organizations", "as_organizations", is_flag=True, help="The file lists organizations."
)
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
def customers_import(file: Path, as_organizations: bool, dry_run: bool, as_json: bool) -> None:
    """Import customers (email, name, language, organization, notes) or organizations (name,
    domains, notes; ``cf.<key>`` for a custom field, as the export writes them) from a CSV file:
    a known email (name) is updated, a bad row is reported and the others imported. Exits 1
    when a row had an error."""
    kind: customer_import.Kind = "organizations" if as_organizations else "customers"
    try:
        parsed = customer_import.parse_csv(file.read_bytes(), kind)
    except (OSError, ServiceError) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    with click.progressbar(length=len(parsed.rows), label="Importing", file=sys.stderr) as bar:
        report = customer_import.import_rows(db.session, parsed, None, progress=bar.update)
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    counts = report.counts
    if as_json:
        click.echo(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "kind": kind,
                    **counts,
                    "ignored_columns": report.ignored_columns,
                    "rows": [
                        {
                            "row": o.row,
                            "key": o.key,
                            "outcome": o.outcome,
                            "field": o.field,
                            "reason": o.reason,
                        }
                        for o in report.outcomes
                    ],
                },
                ensure_ascii=False,
            )
        )
    else:
        verb = "Would create" if dry_run else "Created"
        click.echo(
            f"{verb} {counts['created']}, updated {counts['updated']}, skipped "
            f"{counts['skipped']}, {counts['error']} rows with errors."
        )
        if report.ignored_columns:
            click.echo("Ignored columns: " + ", ".join(report.ignored_columns))
        for o in report.outcomes:
            if o.outcome in ("skipped", "error", "updated") and (o.reason or o.field):
                where = f" [{o.field}]" if o.field else ""
                click.echo(f"  row {o.row} {o.key}: {o.outcome}{where}: {o.reason}")
    if counts["error"]:
        sys.exit(1)  # the good rows are in (unless --dry-run); scripts see that some were not


def _write(chunks: Iterator[str]) -> None:
    out = sys.stdout.buffer  # UTF-8 whatever the terminal's locale
    for chunk in chunks:
        out.write(chunk.encode("utf-8"))
    out.flush()


@customers_group.command("export")
@click.option("--organizations", "as_organizations", is_flag=True, help="Export the organizations.")
@with_appcontext
def customers_export(as_organizations: bool) -> None:
    """Write every customer (or organization) as CSV to stdout (UTF-8 with a BOM)."""
    if as_organizations:
        _write(csv_export.organizations_csv(db.session))
    else:
        _write(csv_export.customers_csv(db.session))


@click.command("export")
@click.option("--status", type=click.Choice([s.value for s in TicketStatus]))
@click.option("--channel", type=click.Choice([c.value for c in ChannelKind]))
@click.option(
    "--view",
    type=click.Choice(["unassigned", "open", "pending", "resolved", "all"]),
    default="all",
    show_default=True,
)
@click.option("--tag", default=None)
@click.option("--organization", type=int, default=None, help="An organization's id.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="KEY=VALUE",
    help="A custom ticket field has this value (a dropdown's option value; repeatable).",
)
@with_appcontext
def tickets_export(
    status: str | None,
    channel: str | None,
    view: str,
    tag: str | None,
    organization: int | None,
    fields: tuple[str, ...],
) -> None:
    """Write the matching tickets as CSV to stdout, most recently updated first (the queue's
    export: ``helpdesk tickets export --status open > open.csv``)."""
    try:
        flt = QueueFilter.from_args(
            {
                "status": status,
                "channel": channel,
                "view": view,
                "tag": tag,
                "organization": organization,
                **field_args(fields),
            }
        )
        chunks = csv_export.tickets_csv(db.session, flt)  # checks the filter before any row
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    _write(chunks)
