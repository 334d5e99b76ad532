"""Category verbs: create, rename and translate, reorder, delete (only when empty, or moving the
articles to another category). The only writers of ``kb_categories``; none of them commits.
Customers see the categories: an ``actor`` must be an admin or a KB editor (kb.permissions).

A category's slug is made once from its first name and never changes, so portal links and
import files that name the category keep working after a rename; :func:`find_category` also
matches the current and translated names.

Every change is an event of the durable stream, in the same transaction (``stream.record``;
docs/architecture.md#the-event-stream): ``category.created`` (``name, names, slug,
position``), ``category.updated`` (``changes: {field: {from, to}}`` for ``name``, ``names``,
``position``: a move renumbers the categories, so every one whose place changed has one) and
``category.deleted`` (``name, names, slug, moved_to_id, articles``: how many moved; each
moved article also has its ``article.updated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.i18n import _
from helpdesk.models import Agent
from helpdesk.services import stream
from helpdesk.services.errors import Conflict, NotFound, ServiceError
from kb.analysis import normalize
from kb.article_rows import mark_dirty, slugify
from kb.models import Article, Category
from kb.permissions import require_category_editor

#: Languages a category name can be translated into (the default name is English).
TRANSLATED = ("bn",)
MAX_NAME = 200


def _clean(name: str | None) -> str:
    return normalize(" ".join((name or "").split()))


def _check_name(name: str) -> None:
    if not name:
        raise ServiceError(_("A category needs a name."))
    if len(name) > MAX_NAME:
        raise ServiceError(_("A category name can have at most %(n)d characters.", n=MAX_NAME))


def _clean_names(names: Mapping[str, str | None] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for lang, value in (names or {}).items():
        if lang not in TRANSLATED:
            raise ServiceError(_("Unknown language: %(lang)s", lang=lang))
        text = _clean(value)
        if len(text) > MAX_NAME:
            raise ServiceError(_("A category name can have at most %(n)d characters.", n=MAX_NAME))
        if text:
            out[lang] = text
    return out


def ordered(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.position, Category.id)))


def find_category(session: Session, name: str) -> Category | None:
    """The category an editor or an import file means by ``name``: by slug, then by its
    current name, then by a translated name (case-insensitive)."""
    name = _clean(name)
    if not name:
        return None
    found = session.scalar(select(Category).where(Category.slug == slugify(name)))
    if found is not None:
        return found
    wanted = name.casefold()
    for category in ordered(session):
        labels = [category.name, *(category.names or {}).values()]
        if any(label.casefold() == wanted for label in labels):
            return category
    return None


def _check_unique(session: Session, name: str, names: dict[str, str], own: int | None) -> None:
    for label in (name, *names.values()):
        other = find_category(session, label)
        if other is not None and other.id != own:
            raise Conflict(
                _("A category named %(name)s already exists.", name=label), code="category_exists"
            )


def create_category(
    session: Session,
    name: str,
    names: Mapping[str, str | None] | None = None,
    *,
    actor: Agent | None = None,
) -> Category:
    """A new category, placed last."""
    require_category_editor(actor)
    clean, translated = _clean(name), _clean_names(names)
    _check_name(clean)
    _check_unique(session, clean, translated, None)
    slug = slugify(clean)[:120]
    if session.scalar(select(Category.id).where(Category.slug == slug)) is not None:
        raise Conflict(
            _("A category named %(name)s already exists.", name=clean), code="category_exists"
        )
    last = session.scalar(select(func.max(Category.position)))
    category = Category(
        slug=slug, name=clean, names=translated, position=(last if last is not None else -1) + 1
    )
    session.add(category)
    session.flush()
    stream.record(
        session,
        "category.created",
        "category",
        category.id,
        actor,
        name=category.name,
        names=dict(category.names or {}),
        slug=category.slug,
        position=category.position,
    )
    return category


def _updated(session: Session, category: Category, actor: Agent | None, **changes: Any) -> None:
    """``category.updated`` with ``changes`` as ``{field: (before, after)}`` (unchanged dropped)."""
    changed = {k: {"from": b, "to": a} for k, (b, a) in changes.items() if b != a}
    if changed:
        stream.record(session, "category.updated", "category", category.id, actor, changes=changed)


def rename_category(
    session: Session,
    category: Category,
    name: str,
    names: Mapping[str, str | None] | None = None,
    *,
    actor: Agent | None = None,
) -> bool:
    """Change the default and translated names (``names`` replaces all translations); the
    slug stays. Returns whether anything changed."""
    require_category_editor(actor)
    clean, translated = _clean(name), _clean_names(names)
    _check_name(clean)
    _check_unique(session, clean, translated, category.id)
    before = (category.name, dict(category.names or {}))
    if (clean, translated) == before:
        return False
    category.name, category.names = clean, translated
    _updated(session, category, actor, name=(before[0], clean), names=(before[1], translated))
    return True


def move_category(
    session: Session, category: Category, offset: int, *, actor: Agent | None = None
) -> None:
    """Move ``category`` ``offset`` places (negative: towards the top), renumbering all."""
    require_category_editor(actor)
    rows = ordered(session)
    index = next(i for i, c in enumerate(rows) if c.id == category.id)
    target = max(0, min(len(rows) - 1, index + offset))
    rows.insert(target, rows.pop(index))
    for position, row in enumerate(rows):
        if row.position != position:
            _updated(session, row, actor, position=(row.position, position))
            row.position = position


def article_count(session: Session, category: Category) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Article).where(Article.category_id == category.id)
        )
        or 0
    )


def counts(session: Session) -> dict[int, int]:
    """Articles per category id, every status and visibility (what deleting would touch)."""
    rows = session.execute(
        select(Article.category_id, func.count())
        .where(Article.category_id.is_not(None))
        .group_by(Article.category_id)
    ).all()
    return {int(cid): int(n) for cid, n in rows if cid is not None}


def delete_category(
    session: Session,
    category: Category,
    *,
    move_to: Category | None = None,
    actor: Agent | None = None,
) -> int:
    """Delete ``category``. One with articles (drafts and internal ones count) is deleted only
    when ``move_to`` names another category to move them to; returns how many moved."""
    require_category_editor(actor)
    if move_to is not None and move_to.id == category.id:
        raise ServiceError(_("Choose another category to move the articles to."))
    articles = list(session.scalars(select(Article).where(Article.category_id == category.id)))
    if articles and move_to is None:
        raise Conflict(
            _(
                "%(name)s still has %(n)d articles: choose a category to move them to.",
                name=category.name,
                n=len(articles),
            ),
            code="category_not_empty",
        )
    for article in articles:
        article.category = move_to
        # The index stores each article's category: the worker must see the move.
        mark_dirty(session, article)
        stream.record(
            session, "article.updated", "article", article.id, actor, fields=["category_id"]
        )
    stream.record(
        session,
        "category.deleted",
        "category",
        category.id,
        actor,
        name=category.name,
        names=dict(category.names or {}),
        slug=category.slug,
        moved_to_id=move_to.id if move_to is not None else None,
        articles=len(articles),
    )
    session.delete(category)
    session.flush()
    return len(articles)


def get_category(session: Session, category_id: int) -> Category:
    category = session.get(Category, category_id)
    if category is None:
        raise NotFound(_("Category not found."))
    return category
