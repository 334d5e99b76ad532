"""``helpdesk kb ...``: import, export, search, reindex, status."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from tqdm import tqdm

from helpdesk.extensions import db
from helpdesk.services.errors import ServiceError


@click.group("kb")
def kb_group() -> None:
    """The knowledge base."""


def _app() -> object:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@kb_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@with_appcontext
def import_command(path: Path) -> None:
    """Import a folder of Markdown files with YAML front matter (re-import updates)."""
    from kb.importer import import_folder
    from kb.indexer import index_pending

    total = len(list(path.rglob("*.md"))) if path.is_dir() else 0
    try:
        with tqdm(total=total, unit="file", disable=None) as bar:
            result = import_folder(db.session, path, progress=bar.update)
    except ServiceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    # The CLI may run with no worker about: bring the index up to date now (the same writer
    # function the worker runs, serialised with it by the index's writer lock).
    app = _app()
    while index_pending(app):  # type: ignore[arg-type]
        pass
    click.echo(
        f"created {len(result.created)}, updated {len(result.updated)}, "
        f"unchanged {len(result.unchanged)}, errors {len(result.errors)}"
    )
    for name, message in result.errors:
        click.echo(f"{name}: {message}", err=True)
    if result.errors:
        raise SystemExit(1)


@kb_group.command("export")
@click.argument("path", type=click.Path(path_type=Path, file_okay=False))
@with_appcontext
def export_command(path: Path) -> None:
    """Write every article as Markdown with front matter (the import format)."""
    from kb.importer import export_folder

    count = export_folder(db.session, path)
    click.echo(f"exported {count} articles to {path}")


@kb_group.command("search")
@click.argument("query")
@click.option("--lang", type=click.Choice(["en", "bn"]), default=None)
@click.option("--limit", type=click.IntRange(1, 100), default=10)
@click.option("--mode", type=click.Choice(["bm25", "hybrid"]), default="hybrid")
@click.option("--internal", is_flag=True, help="Include internal articles (agents' view).")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def search_command(
    query: str, lang: str | None, limit: int, mode: str, internal: bool, as_json: bool
) -> None:
    """Search published articles, best first."""
    from kb.indexer import get_index

    hits = get_index().search(
        query,
        lang=lang,
        limit=limit,
        mode="bm25" if mode == "bm25" else "hybrid",
        include_internal=internal,
    )
    if as_json:
        out = [
            {
                "slug": h.slug,
                "title": h.title,
                "language": h.language,
                "score": round(h.score, 6),
                "snippet": h.snippet,
            }
            for h in hits
        ]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not hits:
        suggestion = get_index().did_you_mean(query, lang=lang)
        click.echo("no results" + (f"; did you mean: {suggestion}" if suggestion else ""))
        return
    for h in hits:
        click.echo(f"{h.score:8.4f}  [{h.language}] {h.slug}  {h.title}")


@kb_group.command("reindex")
@with_appcontext
def reindex_command() -> None:
    """Rebuild the search index from the database."""
    from sqlalchemy import func, select

    from kb.indexer import reindex_all
    from kb.models import Article

    total = int(db.session.scalar(select(func.count()).select_from(Article)) or 0)
    db.session.rollback()
    with tqdm(total=total, unit="article", disable=None) as bar:
        count = reindex_all(_app(), progress=bar.update)  # type: ignore[arg-type]
    click.echo(f"indexed {count} articles")


@kb_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def status_command(as_json: bool) -> None:
    """Index size, articles waiting to be indexed, and whether semantic search is on."""
    from kb.indexer import get_index, pending_count

    index = get_index()
    data = {
        "indexed": index.doc_count(),
        "pending": pending_count(db.session),
        "semantic_available": index.semantic_available,
    }
    if as_json:
        click.echo(json.dumps(data))
    else:
        for k, v in data.items():
            click.echo(f"{k}: {v}")
