"""What the KB search index holds: the values going in and out, and the Whoosh schema.

The KB services hand in :class:`ArticleDoc` values; a search returns :class:`SearchHit` values.
:func:`doc_fields` turns an article into the fields of the schema (:func:`build_schema`).

Languages: each article is indexed into the fields of its language slot (``title_en``/
``body_en`` with the English analyzer, ``*_bn`` with the Bengali one, ``*_mul`` with the
multilingual analyzer for any other language; :func:`language_slot`). A query is parsed against
all of them, each field with its own analyzer (:mod:`kb.search_parsing`).

Part of the search engine (:mod:`kb.search`); imports Whoosh (fields, analysis filters).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from whoosh.analysis import LowercaseFilter, NgramFilter
from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema

from kb.analysis import UnicodeWordTokenizer, analyzer_for, normalize, primary_language

__all__ = [
    "LANG_SLOTS",
    "STATUSES",
    "SUGGEST_MAX_PREFIX",
    "VISIBILITIES",
    "ArticleDoc",
    "SearchHit",
    "SearchMode",
    "analyzer_language",
    "build_schema",
    "doc_fields",
    "language_slot",
    "plain_text",
]

SearchMode = Literal["bm25", "hybrid"]

VISIBILITIES = frozenset({"public", "internal"})
STATUSES = frozenset({"draft", "published", "archived"})

#: Field-name suffixes: the two languages with their own analyzer, and "mul" for the rest.
LANG_SLOTS: tuple[str, ...] = ("en", "bn", "mul")

#: Longest prefix indexed for as-you-type completion.
SUGGEST_MAX_PREFIX = 24


@dataclass(frozen=True, slots=True)
class ArticleDoc:
    """What the index needs of a KB article. ``body`` is Markdown or plain text."""

    id: int
    slug: str
    title: str
    body: str
    tags: Sequence[str] = field(default_factory=tuple)
    language: str = "en"
    visibility: str = "public"  # 'public' | 'internal'
    status: str = "published"  # 'draft' | 'published' | 'archived'
    category: str | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result. ``snippet`` is HTML: escaped text with matches in ``<mark>``.

    ``score`` is the BM25F score in ``bm25`` mode and the fused score (0 to 1: the shares of
    the best BM25 score and of the best similarity, see :func:`kb.search_semantic.fuse`) in
    ``hybrid`` mode: it orders one result list and means nothing across lists.
    """

    id: int
    slug: str
    title: str
    language: str
    score: float
    snippet: str
    status: str = "published"
    visibility: str = "public"


# --- text preparation ----------------------------------------------------------------------

# Markdown syntax that would otherwise show up in snippets and be indexed as words
# (link targets as "https", "example", "com"). Rendering is kb's job; this only strips.
_MD_STRIP: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*(```|~~~).*$", re.MULTILINE), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"</?[A-Za-z][^<>\n]*>"), " "),
    (re.compile(r"^\s{0,3}(#{1,6}|>|[-*+]|\d+[.)])\s+", re.MULTILINE), ""),
    (re.compile(r"(?<!\w)[*_~`]+|[*_~`]+(?!\w)"), ""),
    (re.compile(r"\s+"), " "),
)


def plain_text(markdown: str) -> str:
    """Markdown -> one line of NFC text for indexing and snippets."""
    text = markdown
    for pattern, repl in _MD_STRIP:
        text = pattern.sub(repl, text)
    return normalize(text.strip())


def language_slot(lang: str | None) -> str:
    """The field-name suffix (:data:`LANG_SLOTS`) of articles or queries in ``lang``."""
    code = primary_language(lang)
    return code if code in ("en", "bn") else "mul"


def analyzer_language(slot: str) -> str:
    """The language to pass to :func:`kb.analysis.analyzer_for` for a slot's fields."""
    return slot if slot in ("en", "bn") else ""


# --- the schema ----------------------------------------------------------------------------


def build_schema() -> Schema:
    """The Whoosh schema of every index generation."""
    ac_analyzer = (
        UnicodeWordTokenizer() | LowercaseFilter() | NgramFilter(1, SUGGEST_MAX_PREFIX, at="start")
    )
    fields: dict[str, Any] = {
        "id": ID(unique=True, stored=True),
        "slug": ID(stored=True),
        "title": STORED(),
        "body": STORED(),
        "tags": KEYWORD(stored=True, commas=True, lowercase=True),
        "language": ID(stored=True),
        "visibility": ID(stored=True),
        "status": ID(stored=True),
        "category": ID(stored=True),
        # Unstemmed words of public, published articles only: the did-you-mean vocabulary
        # must not leak words that appear only in internal articles.
        "spell": TEXT(analyzer=analyzer_for(""), phrase=False),
        "title_ac": TEXT(analyzer=ac_analyzer, phrase=False),
    }
    for slot in LANG_SLOTS:
        analyzer = analyzer_for(analyzer_language(slot))
        fields[f"title_{slot}"] = TEXT(analyzer=analyzer)
        fields[f"body_{slot}"] = TEXT(analyzer=analyzer)
        fields[f"tags_{slot}"] = TEXT(analyzer=analyzer, phrase=False)
    return Schema(**fields)


def doc_fields(doc: ArticleDoc) -> dict[str, str]:
    """``doc`` as the fields to write (``writer.update_document(**fields)``).

    Raises ValueError for an unknown visibility or status.
    """
    if doc.visibility not in VISIBILITIES:
        raise ValueError(f"article {doc.id}: unknown visibility {doc.visibility!r}")
    if doc.status not in STATUSES:
        raise ValueError(f"article {doc.id}: unknown status {doc.status!r}")
    slot = language_slot(doc.language)
    title = normalize(" ".join(doc.title.split()))
    body = plain_text(doc.body)
    tags = [normalize(t.strip()) for t in doc.tags if t.strip()]
    fields = {
        "id": str(doc.id),
        "slug": doc.slug,
        "title": title,
        "body": body,
        "tags": ",".join(tags),
        "language": primary_language(doc.language) or "mul",
        "visibility": doc.visibility,
        "status": doc.status,
        "title_ac": title,
        f"title_{slot}": title,
        f"body_{slot}": body,
        f"tags_{slot}": " ".join(tags),
    }
    if doc.category:
        fields["category"] = doc.category
    if doc.visibility == "public" and doc.status == "published":
        fields["spell"] = f"{title}\n{body}"
    return fields
