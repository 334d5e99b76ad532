"""Knowledge-base rows: articles, categories, revisions, votes and analytics events.

Written only by :mod:`kb.services`. The search index is derived data: an article whose
``indexed_at`` is older than its ``updated_at`` (or unset) is "dirty" and the worker's index task
brings the index up to date after commit (see :mod:`kb.indexer`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.models._types import str_enum


class ArticleStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    # Agents only: never reaches a customer through any page, search, API or suggestion.
    INTERNAL = "internal"


class KbEventKind(enum.StrEnum):
    SEARCH = "search"  # a query (result_count 0 = zero-result search)
    IMPRESSION = "impression"  # an article shown as a suggestion beside the contact form
    CLICK = "click"  # a suggestion opened
    VIEW = "view"  # an article page read
    VOTE = "vote"  # helpful / not helpful
    DEFLECTION = "deflection"  # "This answered my question" on a suggested article
    TICKET = "ticket"  # a ticket submitted on the contact form (with the articles viewed before)


class Category(Base):
    """A topic of the help center. ``name`` is the default (English) name; ``names`` holds
    translated names by language code (``{"bn": "..."}``). The slug never changes on rename,
    so portal links keep working. Portal lists sort by ``position``."""

    __tablename__ = "kb_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    names: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def label(self, language: str | None) -> str:
        """The name to show a reader of ``language``: its translation, else the default."""
        code = str(language or "").replace("-", "_").split("_")[0].lower()
        return (self.names or {}).get(code) or self.name


class Article(Base):
    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    # Markdown as written; ``body_html`` is rendered from it and sanitized with nh3.
    body_md: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[ArticleStatus] = mapped_column(
        str_enum(ArticleStatus, "kb_article_status"), default=ArticleStatus.DRAFT
    )
    visibility: Mapped[Visibility] = mapped_column(
        str_enum(Visibility, "kb_visibility"), default=Visibility.PUBLIC
    )
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_categories.id", ondelete="SET NULL"), index=True
    )
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Translations of one article share a group: the id of the first article of the group.
    translation_group: Mapped[int | None] = mapped_column(index=True)
    view_count: Mapped[int] = mapped_column(default=0)
    helpful_count: Mapped[int] = mapped_column(default=0)
    not_helpful_count: Mapped[int] = mapped_column(default=0)
    revision_count: Mapped[int] = mapped_column(default=0)
    author_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    # None or older than updated_at: the index has not seen the latest version yet.
    indexed_at: Mapped[datetime | None]

    category: Mapped[Category | None] = relationship()

    @property
    def public(self) -> bool:
        """What a customer may see: published and public."""
        return self.status == ArticleStatus.PUBLISHED and self.visibility == Visibility.PUBLIC


class ArticleRevision(Base):
    """One saved version of an article's text (every create and every changing update)."""

    __tablename__ = "kb_article_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    body_md: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    author_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author_agent: Mapped[Any] = relationship("Agent")


class ArticleVote(Base):
    __tablename__ = "kb_article_votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True
    )
    helpful: Mapped[bool]
    comment: Mapped[str] = mapped_column(Text, default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    # The anonymous portal visitor (a random id in their session): one vote per visitor.
    visitor: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbEvent(Base):
    """Deflection analytics: one row per search, impression, click, view, vote, deflection and
    ticket submitted. ``visitor`` ties a portal visitor's events together (random, not personal)."""

    __tablename__ = "kb_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[KbEventKind] = mapped_column(str_enum(KbEventKind, "kb_event_kind"))
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="SET NULL")
    )
    query: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str | None] = mapped_column(String(8))
    result_count: Mapped[int | None]
    # Where it happened: "portal" (search page), "contact" (suggestions), "api", "chat".
    source: Mapped[str] = mapped_column(String(16), default="portal")
    visitor: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_kb_events_kind_created_at", KbEvent.kind, KbEvent.created_at)
Index("ix_kb_events_visitor", KbEvent.visitor)
Index(
    "ix_kb_article_revisions_article_id_number", ArticleRevision.article_id, ArticleRevision.number
)
Index(
    "ix_kb_articles_status_visibility_language",
    Article.status,
    Article.visibility,
    Article.language,
)
