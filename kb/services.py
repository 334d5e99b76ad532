"""KB verbs: the only writers of knowledge-base rows. None of them commits.

Every change that affects search marks the article dirty (``updated_at`` moves past
``indexed_at``) and wakes the worker after commit; the worker's index task is the one index
writer (:mod:`kb.indexer`). Web processes only read the index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from markdown_it import MarkdownIt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.html import sanitize_html
from helpdesk.i18n import _
from helpdesk.models import Agent, Customer
from helpdesk.services import stream
from helpdesk.services.effects import wake_worker_on_commit
from helpdesk.services.errors import Conflict, NotFound, ServiceError
from kb.analysis import normalize
from kb.article_rows import mark_dirty, slugify
from kb.categories import create_category, find_category
from kb.models import (
    Article,
    ArticleRevision,
    ArticleStatus,
    ArticleVote,
    Category,
    KbEvent,
    KbEventKind,
    Visibility,
)
from kb.permissions import require_publisher

LANGUAGES = ("en", "bn")
MAX_TITLE = 300
MAX_BODY = 200_000
MAX_COMMENT = 2000
MAX_QUERY = 300

# CommonMark plus tables; raw HTML in the source is not passed through (nh3 would strip most of
# it anyway, but an author should see in the preview exactly what readers get).
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(source: str) -> str:
    """Markdown -> sanitized HTML (the same function serves the preview and the stored copy)."""
    return sanitize_html(_md.render(source or ""))


def _clean_tags(tags: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for t in tags:
        tag = normalize(" ".join(str(t).split())).lower()[:64]
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def _kick_indexer(session: Session) -> None:
    wake_worker_on_commit(session)


def _check(title: str, body: str, language: str) -> None:
    if not title.strip():
        raise ServiceError(_("An article needs a title."))
    if len(title) > MAX_TITLE:
        raise ServiceError(_("A title can have at most %(n)d characters.", n=MAX_TITLE))
    if len(body) > MAX_BODY:
        raise ServiceError(_("The article is too long."))
    if language not in LANGUAGES:
        raise ServiceError(_("Unknown language: %(lang)s", lang=language))


def _unique_slug(session: Session, slug: str, article_id: int | None = None) -> str:
    slug = slugify(slug)
    other = session.scalar(select(Article.id).where(Article.slug == slug))
    if other is not None and other != article_id:
        raise Conflict(
            _("Another article already uses the address %(slug)s.", slug=slug), code="slug_taken"
        )
    return slug


def get_or_create_category(session: Session, name: str) -> Category | None:
    """The category an editor or import file names (see :func:`kb.categories.find_category`),
    created if there is none yet."""
    if not " ".join((name or "").split()):
        return None
    return find_category(session, name) or create_category(session, name)


def _category(session: Session, category: Category | str | None) -> Category | None:
    if category is None or isinstance(category, Category):
        return category
    return get_or_create_category(session, category)


def _add_revision(session: Session, article: Article, author: Agent | None) -> None:
    article.revision_count = (article.revision_count or 0) + 1
    session.add(
        ArticleRevision(
            article_id=article.id,
            number=article.revision_count,
            title=article.title,
            body_md=article.body_md,
            tags=list(article.tags),
            author_agent_id=author.id if author else None,
        )
    )


def create_article(
    session: Session,
    *,
    title: str,
    body: str,
    language: str = "en",
    category: Category | str | None = None,
    tags: Iterable[str] = (),
    visibility: Visibility | str = Visibility.PUBLIC,
    status: ArticleStatus | str = ArticleStatus.DRAFT,
    slug: str | None = None,
    author: Agent | None = None,
    translation_of: Article | None = None,
) -> Article:
    title, body = normalize(title.strip()), normalize(body or "")
    _check(title, body, language)
    try:
        vis, st = Visibility(visibility), ArticleStatus(status)
    except ValueError:
        raise ServiceError(_("Unknown status or visibility.")) from None
    if st != ArticleStatus.DRAFT:
        require_publisher(author)
    now = utcnow()
    article = Article(
        slug=_unique_slug(session, slug or title),
        title=title,
        body_md=body,
        body_html=render_markdown(body),
        language=language,
        status=st,
        visibility=vis,
        category=_category(session, category),
        tags=_clean_tags(tags),
        author_agent_id=author.id if author else None,
        created_at=now,
        updated_at=now,
        published_at=now if st == ArticleStatus.PUBLISHED else None,
    )
    session.add(article)
    session.flush()
    article.translation_group = (
        (translation_of.translation_group or translation_of.id) if translation_of else article.id
    )
    _add_revision(session, article, author)
    _kick_indexer(session)
    stream.record(
        session,
        "article.created",
        "article",
        article.id,
        author,
        title=article.title,
        slug=article.slug,
        language=article.language,
        status=article.status.value,
        visibility=article.visibility.value,
    )
    return article


_UNSET: Any = object()


def update_article(
    session: Session,
    article: Article,
    *,
    author: Agent | None = None,
    title: str | None = None,
    body: str | None = None,
    language: str | None = None,
    category: Category | str | None = _UNSET,
    tags: Iterable[str] | None = None,
    visibility: Visibility | str | None = None,
    slug: str | None = None,
    translation_of: Article | None = _UNSET,
) -> bool:
    """Change an article; a new revision is stored when title, body or tags change.

    Returns whether anything changed (re-importing an unchanged file changes nothing). A
    published article is live: changing it takes the publishing permission.
    """
    if article.status == ArticleStatus.PUBLISHED:
        require_publisher(author)
    before = _snapshot(article)
    new_title = normalize(title.strip()) if title is not None else article.title
    new_body = normalize(body) if body is not None else article.body_md
    new_lang = language or article.language
    _check(new_title, new_body, new_lang)
    new_tags = _clean_tags(tags) if tags is not None else list(article.tags)
    changed_text = (new_title, new_body, new_tags) != (
        article.title,
        article.body_md,
        list(article.tags),
    )
    changed = changed_text
    if changed_text:
        article.title, article.body_md, article.tags = new_title, new_body, new_tags
        article.body_html = render_markdown(new_body)
    if new_lang != article.language:
        article.language, changed = new_lang, True
    if category is not _UNSET:
        cat = _category(session, category)
        if (cat.id if cat else None) != article.category_id:
            article.category, changed = cat, True
    if visibility is not None:
        try:
            vis = Visibility(visibility)
        except ValueError:
            raise ServiceError(_("Unknown status or visibility.")) from None
        if vis != article.visibility:
            article.visibility, changed = vis, True
    if slug is not None and slugify(slug) != article.slug:
        article.slug, changed = _unique_slug(session, slug, article.id), True
    if translation_of is not _UNSET:
        group = (
            (translation_of.translation_group or translation_of.id)
            if translation_of
            else article.id
        )
        if group != article.translation_group:
            article.translation_group, changed = group, True
    after = _snapshot(article)
    fields = sorted(name for name in after if after[name] != before[name])
    if changed_text:
        _add_revision(session, article, author)
    if changed:
        mark_dirty(session, article)
        stream.record(session, "article.updated", "article", article.id, author, fields=fields)
    return changed


def _snapshot(article: Article) -> dict[str, Any]:
    """What ``article.updated`` compares (values, not the ORM's history, which any autoflush of
    a lookup on the way clears)."""
    return {
        "title": article.title,
        "body_md": article.body_md,
        "tags": list(article.tags),
        "language": article.language,
        "category_id": article.category.id if article.category is not None else None,
        "visibility": article.visibility,
        "slug": article.slug,
        "translation_group": article.translation_group,
    }


def set_status(
    session: Session, article: Article, status: ArticleStatus | str, author: Agent | None = None
) -> None:
    new = ArticleStatus(status)
    require_publisher(author)
    if new == article.status:
        return
    stream.record(
        session,
        "article.updated",
        "article",
        article.id,
        author,
        fields=["status"],
        changes={"status": {"from": article.status.value, "to": new.value}},
    )
    article.status = new
    if new == ArticleStatus.PUBLISHED and article.published_at is None:
        article.published_at = utcnow()
    mark_dirty(session, article)


def publish_article(session: Session, article: Article, author: Agent | None = None) -> None:
    set_status(session, article, ArticleStatus.PUBLISHED, author)


def unpublish_article(session: Session, article: Article, author: Agent | None = None) -> None:
    set_status(session, article, ArticleStatus.DRAFT, author)


def archive_article(session: Session, article: Article, author: Agent | None = None) -> None:
    set_status(session, article, ArticleStatus.ARCHIVED, author)


def get_revision(session: Session, article: Article, number: int) -> ArticleRevision:
    rev = session.scalar(
        select(ArticleRevision).where(
            ArticleRevision.article_id == article.id, ArticleRevision.number == number
        )
    )
    if rev is None:
        raise NotFound(_("Revision not found."))
    return rev


def restore_revision(
    session: Session, article: Article, number: int, author: Agent | None = None
) -> bool:
    """Bring back revision ``number``'s title, text and tags as a new revision (history is
    never rewritten). Returns False when the article already reads exactly like it."""
    rev = get_revision(session, article, number)
    return update_article(
        session, article, author=author, title=rev.title, body=rev.body_md, tags=rev.tags
    )


# --- reading with permission ----------------------------------------------------------------


def access_article(session: Session, slug: str, *, agent: bool) -> Article:
    """The article for a reader: customers only ever get published public ones ("missing" and
    "not for you" are the same NotFound)."""
    article = session.scalar(select(Article).where(Article.slug == slug))
    if article is None or (not agent and not article.public):
        raise NotFound(_("Article not found."))
    return article


def access_article_id(session: Session, article_id: int, *, agent: bool) -> Article:
    article = session.get(Article, article_id)
    if article is None or (not agent and not article.public):
        raise NotFound(_("Article not found."))
    return article


# --- votes and analytics --------------------------------------------------------------------


def vote(
    session: Session,
    article: Article,
    helpful: bool,
    *,
    comment: str = "",
    visitor: str | None = None,
    customer: Customer | None = None,
) -> ArticleVote:
    """Record "Was this helpful?". One vote per visitor and article: voting again changes it."""
    if not article.public:
        raise NotFound(_("Article not found."))
    comment = normalize((comment or "").strip())[:MAX_COMMENT]
    existing = None
    if visitor:
        existing = session.scalar(
            select(ArticleVote).where(
                ArticleVote.article_id == article.id, ArticleVote.visitor == visitor
            )
        )
    if existing is not None:
        if existing.helpful != helpful:
            _count_vote(article, existing.helpful, -1)
            _count_vote(article, helpful, +1)
        existing.helpful = helpful
        existing.comment = comment or existing.comment
        result = existing
    else:
        result = ArticleVote(
            article_id=article.id,
            helpful=helpful,
            comment=comment,
            visitor=visitor,
            customer_id=customer.id if customer else None,
        )
        session.add(result)
        _count_vote(article, helpful, +1)
    record_event(
        session,
        KbEventKind.VOTE,
        article=article,
        visitor=visitor,
        language=article.language,
        data={"helpful": helpful},
    )
    session.flush()
    return result


def _count_vote(article: Article, helpful: bool, delta: int) -> None:
    if helpful:
        article.helpful_count = max(0, (article.helpful_count or 0) + delta)
    else:
        article.not_helpful_count = max(0, (article.not_helpful_count or 0) + delta)


def record_event(
    session: Session,
    kind: KbEventKind | str,
    *,
    article: Article | None = None,
    query: str | None = None,
    language: str | None = None,
    result_count: int | None = None,
    source: str = "portal",
    visitor: str | None = None,
    ticket_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> KbEvent:
    event = KbEvent(
        kind=KbEventKind(kind),
        article_id=article.id if article else None,
        query=normalize(query.strip())[:MAX_QUERY].lower() if query else None,
        language=language,
        result_count=result_count,
        source=source[:16],
        visitor=visitor[:64] if visitor else None,
        ticket_id=ticket_id,
        data=data or {},
    )
    session.add(event)
    if kind == KbEventKind.VIEW and article is not None:
        # Counted in SQL so concurrent readers never lose an increment.
        article.view_count = Article.view_count + 1
    return event


def record_ticket_submitted(
    session: Session, ticket_id: int, *, visitor: str | None, language: str | None
) -> KbEvent:
    """A ticket filed on the contact form, with the articles this visitor opened before."""
    viewed: list[int] = []
    if visitor:
        viewed = [
            int(i)
            for i in session.scalars(
                select(KbEvent.article_id)
                .where(
                    KbEvent.visitor == visitor,
                    KbEvent.kind.in_([KbEventKind.VIEW, KbEventKind.CLICK]),
                    KbEvent.article_id.is_not(None),
                )
                .distinct()
            )
            if i is not None
        ]
    return record_event(
        session,
        KbEventKind.TICKET,
        source="contact",
        visitor=visitor,
        ticket_id=ticket_id,
        language=language,
        data={"viewed_articles": sorted(viewed)},
    )


def article_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Article)) or 0)
