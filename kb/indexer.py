"""The one index writer, and the readers' handle on the index.

After a commit that changed an article, the worker runs :func:`index_pending`: it upserts the
dirty articles (``indexed_at`` unset or older than ``updated_at``) and deletes archived ones,
then stamps ``indexed_at`` with the ``updated_at`` it indexed, so a change made meanwhile stays
dirty for the next round. Web processes only read (:func:`get_index`). ``helpdesk kb reindex``
rebuilds everything from the database (:func:`reindex_all`); the index is derived data, and
:func:`index_pending` rebuilds it by itself when it was written by older analyzers (after an
upgrade that changed :data:`kb.analysis.ANALYZER_VERSION`). Until then the old index answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, selectinload

from helpdesk.db import read_only_transactions
from helpdesk.extensions import db
from kb.models import Article, ArticleStatus
from kb.search import ArticleDoc, SearchIndex

log = logging.getLogger("kb.indexer")

BATCH = 200


def get_index(app: Flask | None = None) -> SearchIndex:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    index: SearchIndex | None = app.extensions.get("kb.index")
    if index is None:
        index = SearchIndex(app.config["INDEX_DIR"])
        app.extensions["kb.index"] = index
    return index


def doc_for(article: Article) -> ArticleDoc:
    return ArticleDoc(
        id=article.id,
        slug=article.slug,
        title=article.title,
        body=article.body_md,
        tags=tuple(article.tags or ()),
        language=article.language,
        visibility=article.visibility.value,
        status=article.status.value,
        category=article.category.slug if article.category else None,
    )


def _dirty(session: Session, limit: int) -> list[Article]:
    return list(
        session.scalars(
            select(Article)
            .where(or_(Article.indexed_at.is_(None), Article.indexed_at < Article.updated_at))
            .options(selectinload(Article.category))
            .order_by(Article.id)
            .limit(limit)
        )
    )


def _read_dirty(app: Flask) -> tuple[list[ArticleDoc], list[int], dict[int, datetime]]:
    # A read-only transaction: on SQLite it takes no write lock, so indexing (embeddings take
    # tens of milliseconds per article) never holds up the web processes' writes.
    with read_only_transactions(), db.transaction(app) as session:
        articles = _dirty(session, BATCH)
        live = [doc_for(a) for a in articles if a.status != ArticleStatus.ARCHIVED]
        gone = [a.id for a in articles if a.status == ArticleStatus.ARCHIVED]
        return live, gone, {a.id: a.updated_at for a in articles}


def _stamp(app: Flask, stamps: dict[int, datetime]) -> None:
    with db.transaction(app) as session:
        for article_id, stamp in stamps.items():
            # Only if nobody changed it while we indexed: otherwise it stays dirty.
            session.execute(
                update(Article)
                .where(Article.id == article_id, Article.updated_at == stamp)
                .values(indexed_at=stamp)
            )


def index_pending(app: Flask) -> int:
    """Worker task: bring the index up to date with the database; returns articles handled."""
    if get_index(app).needs_rebuild:
        log.info("KB search index was written by other analyzers: rebuilding it")
        return reindex_all(app)
    live, gone, stamps = _read_dirty(app)
    if not stamps:
        return 0
    index = get_index(app)
    index.upsert(live)
    index.delete(gone)
    _stamp(app, stamps)
    return len(stamps)


def reindex_all(app: Flask, progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the index from the database (a new generation, switched to atomically)."""
    with read_only_transactions(), db.transaction(app) as session:
        articles = list(session.scalars(select(Article).options(selectinload(Article.category))))
        docs = [doc_for(a) for a in articles if a.status != ArticleStatus.ARCHIVED]
        stamps = {a.id: a.updated_at for a in articles}
    count = get_index(app).rebuild(docs, progress)
    _stamp(app, stamps)
    return count


def pending_count(session: Session) -> int:
    from sqlalchemy import func

    return int(
        session.scalar(
            select(func.count())
            .select_from(Article)
            .where(or_(Article.indexed_at.is_(None), Article.indexed_at < Article.updated_at))
        )
        or 0
    )
