"""Import and export a folder of Markdown files with YAML front matter.

Front matter keys: ``title``, ``category``, ``language`` (en|bn), ``tags`` (list or comma
separated), ``visibility`` (public|internal), ``status`` (draft|published|archived, default
published), ``slug`` (default: the file name without extension), ``translation_of`` (the slug
of the article this one translates). Re-importing updates articles by slug instead of
duplicating them; ``export`` writes the same format, so export -> import is a round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from helpdesk.i18n import _
from helpdesk.services.errors import ServiceError
from kb import services
from kb.models import Article

FRONT = "---"


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file name, message)


@dataclass
class ParsedFile:
    slug: str
    meta: dict[str, Any]
    body: str


def parse_file(path: Path) -> ParsedFile:
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    meta: dict[str, Any] = {}
    body = text
    if text.startswith(FRONT + "\n"):
        end = text.find("\n" + FRONT, len(FRONT))
        if end == -1:
            raise ServiceError(_("The front matter is not closed with ---."))
        try:
            loaded = yaml.safe_load(text[len(FRONT) + 1 : end]) or {}
        except yaml.YAMLError as exc:
            raise ServiceError(
                _("The front matter is not valid YAML: %(error)s", error=str(exc))
            ) from None
        if not isinstance(loaded, dict):
            raise ServiceError(_("The front matter must be a mapping of keys to values."))
        meta = loaded
        body = text[end + len(FRONT) + 1 :].lstrip("\n")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    meta["tags"] = [str(t) for t in tags]
    slug = str(meta.get("slug") or path.stem)
    if not meta.get("title"):
        raise ServiceError(_("The front matter has no title."))
    return ParsedFile(services.slugify(slug), meta, body)


def import_folder(
    session: Session, folder: Path, progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Create or update one article per ``*.md`` file (recursively). The caller commits."""
    if not folder.is_dir():
        raise ServiceError(_("Not a folder: %(path)s", path=str(folder)))
    result = ImportResult()
    parsed: list[tuple[str, ParsedFile]] = []
    for path in sorted(folder.rglob("*.md")):
        name = str(path.relative_to(folder))
        try:
            parsed.append((name, parse_file(path)))
        except (ServiceError, UnicodeDecodeError) as exc:
            result.errors.append((name, str(exc)))
    by_slug: dict[str, Article] = {}
    for name, pf in parsed:
        meta = pf.meta
        try:
            # A savepoint per file: one bad file is reported, the others still import.
            with session.begin_nested():
                article = session.scalar(select(Article).where(Article.slug == pf.slug))
                fields = {
                    "title": str(meta["title"]),
                    "body": pf.body,
                    "language": str(meta.get("language") or "en"),
                    "category": str(meta.get("category") or "") or None,
                    "tags": meta["tags"],
                    "visibility": str(meta.get("visibility") or "public"),
                }
                status = str(meta.get("status") or "published")
                if article is None:
                    article = services.create_article(
                        session, slug=pf.slug, status=status, **fields
                    )
                    result.created.append(pf.slug)
                else:
                    changed = services.update_article(session, article, **fields)
                    if status != article.status.value:
                        services.set_status(session, article, status)
                        changed = True
                    (result.updated if changed else result.unchanged).append(pf.slug)
                by_slug[pf.slug] = article
        except (ServiceError, ValueError) as exc:
            result.errors.append((name, str(exc)))
        if progress is not None:
            progress(1)
    # Second pass: translations may name an article that comes later in the folder.
    for name, pf in parsed:
        target = pf.meta.get("translation_of")
        article = by_slug.get(pf.slug)
        if not target or article is None:
            continue
        original = by_slug.get(services.slugify(str(target))) or session.scalar(
            select(Article).where(Article.slug == services.slugify(str(target)))
        )
        if original is None:
            result.errors.append((name, _("translation_of names an unknown article.")))
            continue
        changed = services.update_article(session, article, translation_of=original)
        if changed and pf.slug in result.unchanged:
            result.unchanged.remove(pf.slug)
            result.updated.append(pf.slug)
    return result


def export_folder(session: Session, folder: Path) -> int:
    """Write every article as ``<slug>.md`` with front matter; returns how many."""
    folder.mkdir(parents=True, exist_ok=True)
    articles = list(
        session.scalars(
            select(Article).options(selectinload(Article.category)).order_by(Article.id)
        )
    )
    by_id = {a.id: a for a in articles}
    for a in articles:
        meta: dict[str, Any] = {
            "title": a.title,
            "slug": a.slug,
            "language": a.language,
            "category": a.category.name if a.category else None,
            "tags": list(a.tags),
            "visibility": a.visibility.value,
            "status": a.status.value,
        }
        original = by_id.get(a.translation_group or a.id)
        if original is not None and original.id != a.id:
            meta["translation_of"] = original.slug
        meta = {k: v for k, v in meta.items() if v not in (None, [])}
        front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
        (folder / f"{a.slug}.md").write_text(
            f"{FRONT}\n{front}{FRONT}\n\n{a.body_md.rstrip()}\n", encoding="utf-8"
        )
    return len(articles)
