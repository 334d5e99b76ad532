"""``helpdesk tickets search QUERY`` and ``helpdesk tickets reindex`` (added to the tickets group
by :func:`register`, called from ``helpdesk.web.search.init_app``)."""

from __future__ import annotations

import html

import click
from flask import current_app
from flask.cli import with_appcontext
from markupsafe import Markup
from tqdm import tqdm

from helpdesk.cli import _emit_json, tickets_group, user_errors
from helpdesk.extensions import db
from helpdesk.i18n import _
from helpdesk.services import search_index
from helpdesk.services.search import RANK_WINDOW, SearchFilter, hit_row, search_tickets


def _plain(marked: Markup) -> str:
    """Highlighted HTML as terminal text: matches in bold (plain when not a terminal)."""
    text = str(marked)
    out = []
    for i, part in enumerate(text.split("<mark>")):
        inner, _sep, rest = part.partition("</mark>") if i else ("", "", part)
        if inner:
            out.append(click.style(html.unescape(inner), bold=True))
        out.append(html.unescape(rest))
    return "".join(out)


@click.command("search")
@click.argument("query")
@click.option("--status", default=None, help="Only tickets with this status.")
@click.option("--channel", default=None, help="Only tickets from this channel.")
@click.option("--assignee", default=None, help="An agent id, or 'none' for unassigned.")
@click.option("--from", "date_from", default=None, help="Created on or after (YYYY-MM-DD).")
@click.option("--to", "date_to", default=None, help="Created on or before (YYYY-MM-DD).")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@with_appcontext
@user_errors
def search_command(
    query: str,
    status: str | None,
    channel: str | None,
    assignee: str | None,
    date_from: str | None,
    date_to: str | None,
    page: int,
    as_json: bool,
) -> None:
    """Find tickets by words in their subject, messages, customer or number."""
    flt = SearchFilter.from_args(
        {"status": status, "channel": channel, "assignee": assignee,
         "from": date_from, "to": date_to}
    )  # fmt: skip
    results = search_tickets(db.session, query, flt, page=page)
    if as_json:
        _emit_json(
            {
                "query": results.query,
                "page": results.page,
                "next_page": results.page + 1 if results.has_next else None,
                "any_word": results.any_word,
                "narrowed": results.narrowed,
                "tickets": [hit_row(h) for h in results.hits],
            }
        )
        return
    if results.only_stopwords:
        click.echo(_("Those words are too common to search for. Add a more specific word."))
        return
    if not results.hits:
        click.echo(_("No tickets found."))
        return
    if results.any_word:
        click.echo(_("No ticket has all of the words; these have some of them."))
    if results.narrowed:
        click.echo(
            _(
                "Many tickets match: these are the best matches among the newest %(n)d."
                " Add a word or a filter to narrow the search.",
                n=RANK_WINDOW,
            )
        )
    for hit in results.hits:
        t = hit.ticket
        click.echo(
            f"{t.display_number:>9}  {t.status.value:<8} {_plain(hit.subject_html)}"
            f"  — {_plain(hit.people_html)}"
        )
        if hit.snippet_html:
            click.echo(f"{'':11}{_plain(hit.snippet_html)}")
    if results.has_next:
        click.echo(_("More results: add --page %(page)d.", page=results.page + 1))


@click.command("reindex")
@click.option("--batch", default=2000, show_default=True, type=click.IntRange(1, 50_000))
@with_appcontext
def reindex_command(batch: int) -> None:
    """Rebuild the ticket search index from the database (safe while the helpdesk runs)."""
    engine = db.engine(current_app._get_current_object())  # type: ignore[attr-defined]
    with engine.connect() as conn:
        total = search_index.count_tickets(conn)
    with tqdm(total=total, unit="ticket", disable=None) as bar:
        count = search_index.reindex_all(engine, batch=batch, progress=bar.update)
    click.echo(_("Indexed %(n)d tickets.", n=count))


def register() -> None:
    tickets_group.add_command(search_command)
    tickets_group.add_command(reindex_command)
