"""Read-only KB queries shared by the portal, the agents' pages, the API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from helpdesk.db import utcnow
from kb.indexer import get_index
from kb.models import (
    Article,
    ArticleStatus,
    Category,
    KbEvent,
    KbEventKind,
    Visibility,
)
from kb.search import SearchHit

MAX_QUERY_CHARS = 300


@dataclass
class SearchResult:
    query: str
    hits: list[SearchHit]
    did_you_mean: str | None = None


def search(query: str, *, lang: str | None, limit: int = 10, agent: bool = False) -> SearchResult:
    """Search as a customer (public, published) or as an agent (internal and drafts too)."""
    query = (query or "").strip()[:MAX_QUERY_CHARS]
    if not query:
        return SearchResult(query, [])
    index = get_index()
    hits = index.search(
        query,
        lang=lang,
        limit=limit,
        include_internal=agent,
        include_drafts=agent,
        mode=current_app.config.get("KB_SEARCH_MODE", "hybrid"),
    )
    # Offered whenever a word is unknown (a misspelling), even if other words found something.
    suggestion = index.did_you_mean(query, lang=lang)
    return SearchResult(query, hits, suggestion)


def public_articles(session: Session) -> Any:
    return select(Article).where(
        Article.status == ArticleStatus.PUBLISHED, Article.visibility == Visibility.PUBLIC
    )


def popular(session: Session, lang: str | None, limit: int = 8) -> list[Article]:
    q = public_articles(session)
    if lang:
        # The reader's language first, then the rest.
        q = q.order_by((Article.language != lang), Article.view_count.desc(), Article.id)
    else:
        q = q.order_by(Article.view_count.desc(), Article.id)
    return list(session.scalars(q.limit(limit)))


def categories(session: Session) -> list[tuple[Category, int]]:
    rows = session.execute(
        select(Category, func.count(Article.id))
        .join(Article, Article.category_id == Category.id)
        .where(Article.status == ArticleStatus.PUBLISHED, Article.visibility == Visibility.PUBLIC)
        .group_by(Category.id)
        .order_by(Category.position, Category.name)
    ).all()
    return [(c, int(n)) for c, n in rows]


def category_articles(session: Session, category: Category) -> list[Article]:
    q = public_articles(session).where(Article.category_id == category.id).order_by(Article.title)
    return list(session.scalars(q))


def translations(session: Session, article: Article, *, agent: bool = False) -> list[Article]:
    if article.translation_group is None:
        return []
    q = select(Article).where(
        Article.translation_group == article.translation_group, Article.id != article.id
    )
    if not agent:
        q = q.where(
            Article.status == ArticleStatus.PUBLISHED, Article.visibility == Visibility.PUBLIC
        )
    return list(session.scalars(q.order_by(Article.language)))


def related(article: Article, limit: int = 5) -> list[SearchHit]:
    """Public articles about the same thing (a search with the title and tags)."""
    text = " ".join([article.title, *article.tags])
    hits = get_index().search(text, lang=article.language, limit=limit + 1, mode="bm25")
    return [h for h in hits if h.id != article.id][:limit]


# --- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    days: int
    searches: int = 0
    zero_result_searches: int = 0
    top_searches: list[tuple[str, int]] = field(default_factory=list)
    zero_results: list[tuple[str, int]] = field(default_factory=list)
    least_helpful: list[Article] = field(default_factory=list)
    impressions: int = 0
    clicks: int = 0
    views: int = 0
    tickets: int = 0
    deflections: int = 0
    daily: list[tuple[date, int, int]] = field(default_factory=list)  # (day, deflected, tickets)

    @property
    def deflection_rate(self) -> float | None:
        total = self.deflections + self.tickets
        return self.deflections / total if total else None


def report(session: Session, days: int = 30) -> Report:
    """Deflection analytics for the last ``days`` days.

    A visitor is *deflected* when they opened a suggestion beside the contact form, or said
    "This answered my question" on a suggested article, and did not submit a ticket after
    that. Deflection rate = deflected visitors / (deflected visitors + tickets submitted).
    """
    since = utcnow() - timedelta(days=days)
    r = Report(days=days)

    def count(kind: KbEventKind, *extra: Any) -> int:
        return int(
            session.scalar(
                select(func.count())
                .select_from(KbEvent)
                .where(KbEvent.kind == kind, KbEvent.created_at >= since, *extra)
            )
            or 0
        )

    r.searches = count(KbEventKind.SEARCH)
    r.zero_result_searches = count(KbEventKind.SEARCH, KbEvent.result_count == 0)
    r.impressions = count(KbEventKind.IMPRESSION)
    r.clicks = count(KbEventKind.CLICK)
    r.views = count(KbEventKind.VIEW)
    r.tickets = count(KbEventKind.TICKET)

    def top(*extra: Any) -> list[tuple[str, int]]:
        n = func.count().label("n")
        rows = session.execute(
            select(KbEvent.query, n)
            .where(KbEvent.kind == KbEventKind.SEARCH, KbEvent.created_at >= since, *extra)
            .where(KbEvent.query.is_not(None))
            .group_by(KbEvent.query)
            .order_by(n.desc(), KbEvent.query)
            .limit(10)
        ).all()
        return [(str(q), int(c)) for q, c in rows]

    r.top_searches = top()
    r.zero_results = top(KbEvent.result_count == 0)

    # Per visitor: when they were last helped by a suggestion, and when they last submitted.
    helped: dict[str, datetime] = {}
    submitted: dict[str, datetime] = {}
    rows = session.execute(
        select(KbEvent.visitor, KbEvent.kind, KbEvent.created_at, KbEvent.source).where(
            KbEvent.created_at >= since,
            KbEvent.visitor.is_not(None),
            KbEvent.kind.in_([KbEventKind.CLICK, KbEventKind.DEFLECTION, KbEventKind.TICKET]),
        )
    ).all()
    for visitor, kind, at, source in rows:
        if visitor is None:
            continue
        if kind == KbEventKind.TICKET:
            submitted[visitor] = max(at, submitted.get(visitor, at))
        elif kind == KbEventKind.DEFLECTION or source == "contact":
            helped[visitor] = max(at, helped.get(visitor, at))
    deflected = {v: at for v, at in helped.items() if v not in submitted or submitted[v] < at}
    r.deflections = len(deflected)

    ticket_days: dict[date, int] = {}
    for at in session.scalars(
        select(KbEvent.created_at).where(
            KbEvent.kind == KbEventKind.TICKET, KbEvent.created_at >= since
        )
    ):
        ticket_days[at.date()] = ticket_days.get(at.date(), 0) + 1
    deflect_days: dict[date, int] = {}
    for at in deflected.values():
        deflect_days[at.date()] = deflect_days.get(at.date(), 0) + 1
    today = utcnow().date()
    chart_days = min(days, 14)
    r.daily = [
        (d, deflect_days.get(d, 0), ticket_days.get(d, 0))
        for d in (today - timedelta(days=i) for i in range(chart_days - 1, -1, -1))
    ]

    r.least_helpful = list(
        session.scalars(
            select(Article)
            .where(Article.not_helpful_count > 0)
            .options(selectinload(Article.category))
            .order_by(
                (Article.helpful_count * 1.0 / (Article.helpful_count + Article.not_helpful_count)),
                Article.not_helpful_count.desc(),
            )
            .limit(10)
        )
    )
    return r
