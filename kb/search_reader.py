"""The read side of the KB search index: one cached Whoosh searcher and what hangs off it.

:class:`SearcherCache` opens the live generation (``CURRENT``, see :mod:`kb.search_store`),
keeps one searcher and checks it per query, so committed writes are visible and a rebuild is
followed. Per searcher version it caches what queries keep asking for: the status/visibility
filter (as a set and as a mask), document numbers, stored fields, the language slots that have
articles; per generation, the semantic view of the vectors. All but the postings (valid across
refreshes) are dropped whenever the searcher is refreshed.

Part of the search engine (:mod:`kb.search`); imports Whoosh (index, searcher, filter queries,
BM25F weighting).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
from whoosh import index as whoosh_index
from whoosh.query import And, Or, Query, Term
from whoosh.scoring import BM25F
from whoosh.searching import Searcher

from kb import bm25 as kb_bm25
from kb.search_schema import LANG_SLOTS
from kb.search_semantic import VECTORS_FILE, SemanticView, Vectors
from kb.search_store import IndexStore

__all__ = ["SearcherCache"]

#: Stored documents kept per searcher (title, body, ...; ~1 KB each).
STORED_CACHE_SIZE = 20_000

_WEIGHTING = BM25F()


class SearcherCache:
    """The searcher of an :class:`~kb.search_store.IndexStore`'s live generation, with caches.

    Use the searcher only inside :meth:`reading`; the other methods take that searcher and
    must be called inside it too.
    """

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._read_mutex = threading.RLock()
        self._gen: str | None = None
        self._ix: Any = None
        self._searcher: Searcher | None = None
        self._filter_cache: dict[tuple[bool, bool], set[int]] = {}
        self._mask_cache: dict[tuple[bool, bool], np.ndarray] = {}
        self._docnums: dict[int, int | None] = {}
        self._stored: dict[int, dict[str, Any]] = {}
        self._slots: frozenset[str] | None = None
        #: Term postings as arrays (kb.bm25); valid across refreshes, segments are immutable.
        self.postings = kb_bm25.PostingsCache()
        self._view: SemanticView | None = None
        self._view_key: tuple[str, int, int] | None = None

    @property
    def gen(self) -> str | None:
        """The generation the current searcher reads (None before the first query)."""
        return self._gen

    @contextmanager
    def reading(self) -> Iterator[Searcher]:
        """The up-to-date searcher, held under the reader lock."""
        # One cached searcher, checked per query so committed writes are visible; the mutex
        # keeps the check and the use from racing (Whoosh searchers are not meant to be
        # shared mid-query). A rebuild is noticed through CURRENT. Not Searcher.refresh():
        # it reuses readers of unchanged segments and so misses deletions committed since
        # (an update would show old and new version), and it fails on an empty index.
        with self._read_mutex:
            gen = self.store.read_current()
            if gen is None:
                raise RuntimeError(f"search index at {self.store.path} has no CURRENT generation")
            if gen != self._gen or self._ix is None:
                self._drop_reader()
                self._ix = whoosh_index.open_dir(
                    str(self.store.path / gen), schema=self.store.schema
                )
                self._gen = gen
            if self._searcher is None or not self._searcher.up_to_date():
                if self._searcher is not None:
                    self._searcher.close()
                self._searcher = self._ix.searcher(weighting=_WEIGHTING)
                self._filter_cache.clear()
                self._mask_cache.clear()
                self._docnums.clear()
                self._stored.clear()
                self._slots = None
            yield self._searcher

    def close(self) -> None:
        """Release open files; the next :meth:`reading` reopens them."""
        with self._read_mutex:
            self._drop_reader()

    def _drop_reader(self) -> None:
        if self._searcher is not None:
            with suppress(Exception):
                self._searcher.close()
        if self._ix is not None:
            with suppress(Exception):
                self._ix.close()
        self._searcher = None
        self._ix = None
        self._gen = None
        self._view = None
        self._view_key = None
        self._filter_cache.clear()
        self._mask_cache.clear()
        self._docnums.clear()
        self._stored.clear()
        self._slots = None

    # -- per-searcher caches ------------------------------------------------------------

    def allowed_docnums(
        self, searcher: Searcher, include_internal: bool, include_drafts: bool
    ) -> set[int]:
        """Document numbers a search may show: published (and with ``include_drafts``,
        draft) articles, public ones only unless ``include_internal``."""
        # Computed once per searcher version: running the filter query on every search
        # would walk the status/visibility postings each time. A plain set, because that is
        # what Searcher.search(filter=...) accepts; callers must not mutate it.
        key = (include_internal, include_drafts)
        cached = self._filter_cache.get(key)
        if cached is None:
            statuses: list[Query] = [Term("status", "published")]
            if include_drafts:
                statuses.append(Term("status", "draft"))
            parts: list[Query] = [Or(statuses)]
            if not include_internal:
                parts.append(Term("visibility", "public"))
            cached = set(And(parts).docs(searcher))
            self._filter_cache[key] = cached
        return cached

    def allowed_mask(
        self, searcher: Searcher, include_internal: bool, include_drafts: bool
    ) -> np.ndarray:
        """:meth:`allowed_docnums` as a boolean array over document numbers."""
        key = (include_internal, include_drafts)
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = np.zeros(searcher.doc_count_all(), dtype=bool)
            allowed = self.allowed_docnums(searcher, include_internal, include_drafts)
            if allowed:
                mask[np.fromiter(allowed, dtype=np.int64, count=len(allowed))] = True
            self._mask_cache[key] = mask
        return mask

    def stored_fields(self, searcher: Searcher, docnum: int) -> dict[str, Any]:
        # Per searcher, like docnum: a hybrid query reads ~80 candidates' stored fields
        # (a decompress and unpickle each), mostly the same popular articles every time.
        stored = self._stored.get(docnum)
        if stored is None:
            if len(self._stored) >= STORED_CACHE_SIZE:
                self._stored.clear()
            stored = self._stored[docnum] = searcher.stored_fields(docnum)
        return stored

    def docnum(self, searcher: Searcher, doc_id: int) -> int | None:
        # Remembered per searcher (docnums change when the index does): semantic candidates
        # that BM25 did not return were ~40 term lookups per query.
        if doc_id not in self._docnums:
            self._docnums[doc_id] = searcher.document_number(id=str(doc_id))
        return self._docnums[doc_id]

    def live_slots(self, searcher: Searcher) -> frozenset[str]:
        """Language slots with at least one indexed article (every article has a title)."""
        if self._slots is None:
            reader = searcher.reader()
            live = {slot for slot in LANG_SLOTS if reader.field_length(f"title_{slot}")}
            # An empty index still parses against every slot (and so finds nothing).
            self._slots = frozenset(live or LANG_SLOTS)
        return self._slots

    def semantic_view(self) -> SemanticView | None:
        """The current generation's vectors ready for querying (None without a vectors file);
        rebuilt when the file changes."""
        assert self._gen is not None
        path = self.store.path / self._gen / VECTORS_FILE
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = (self._gen, st.st_mtime_ns, st.st_size)
        if self._view is None or self._view_key != key:
            self._view = SemanticView.build(Vectors.load(path))
            self._view_key = key
        return self._view
