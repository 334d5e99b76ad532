"""Vectorised scoring of plain-word queries, with the same scores Whoosh's ``BM25F`` gives.

Why: Whoosh scores one matching document at a time in Python (matcher trees, a per-document
walk over every term for the coordination bonus). A help-center query is a few words, each
found in thousands of articles, and that walk was most of the search time (see
docs/performance.md). Here each term's postings are read once into numpy arrays and a query
becomes a few vector operations.

What is reproduced, per index segment exactly like Whoosh (kb.search checks the query shape
with kb.search_parsing.flat_terms and falls back to Whoosh for phrases and explicit AND/OR):

* per term: ``boost * idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))``, with idf
  and the average field length taken from the whole index (``Searcher.idf`` and
  ``Searcher.avg_field_length``, the very functions Whoosh's scorer calls);
* the sum over the query's terms (each (field, word) pair is one term);
* the coordination bonus of ``Or(..., scale=s)`` (Whoosh's ``CoordMatcher``, the "SQR"
  function): ``(score + (m - 1) / (n - s) ** 2) * (n - 1) / n`` with ``m`` the terms matching
  the document and ``n`` the terms present in the segment;
* ties broken by document number, as Whoosh's top-N collector does.

Postings are cached per (segment, field, word). Segments never change once written (an update
adds a segment and marks the old document deleted), so the cache stays valid across index
refreshes; deleted documents are removed by the caller's filter, which is computed from the
live searcher. No Whoosh import: the objects handed in are used through their public methods.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Whoosh BM25F's defaults (kb.search_reader uses ``BM25F()`` unchanged).
B = 0.75
K1 = 1.2
#: Upper bound of cached postings (3 numbers each, ~12 bytes): ~25 MB.
MAX_CACHED_POSTINGS = 2_000_000


@dataclass(frozen=True, slots=True)
class Leaf:
    """One term of a flat OR query: the analysed word in one field, with its boost."""

    field: str
    text: str
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class _Postings:
    docnums: np.ndarray  # int32, segment-local
    tf: np.ndarray  # float64, term frequency ("weight" in Whoosh)
    dl: np.ndarray  # float64, the document's field length as Whoosh stores it


class PostingsCache:
    """LRU of term postings as arrays, keyed by (generation, segment, field, word)."""

    def __init__(self, max_postings: int = MAX_CACHED_POSTINGS) -> None:
        self._max = max_postings
        self._size = 0
        self._items: OrderedDict[tuple[str, str, str, bytes], _Postings] = OrderedDict()
        # Bounded by segments x fields of the index: one float per document each.
        self._lengths: dict[tuple[str, str, str], np.ndarray] = {}
        self._segments: frozenset[tuple[str, str]] = frozenset()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, bytes], reader: Any) -> _Postings:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        postings = self._read(reader, key)
        with self._lock:
            self._items[key] = postings
            self._size += len(postings.docnums)
            while self._size > self._max and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._size -= len(old.docnums)
        return postings

    def retain(self, segments: frozenset[tuple[str, str]]) -> None:
        """Forget entries of segments no longer in the index (merged away, old generation)."""
        if segments == self._segments:
            return
        with self._lock:
            self._segments = segments
            for key in [k for k in self._items if k[:2] not in segments]:
                self._size -= len(self._items.pop(key).docnums)
            for lkey in [k for k in self._lengths if k[:2] not in segments]:
                del self._lengths[lkey]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._lengths.clear()
            self._size = 0

    def _read(self, reader: Any, key: tuple[str, str, str, bytes]) -> _Postings:
        # The one place that walks postings in Python, once per term and segment.
        field, btext = key[2], key[3]
        matcher = reader.postings(field, btext)
        id_list: list[int] = []
        tfs: list[float] = []
        while matcher.is_active():
            id_list.append(matcher.id())
            tfs.append(matcher.weight())
            matcher.next()
        ids = np.asarray(id_list, dtype=np.int32)
        return _Postings(ids, np.asarray(tfs, dtype=np.float64), self._dl(reader, key, ids))

    def _dl(self, reader: Any, key: tuple[str, str, str, bytes], ids: np.ndarray) -> np.ndarray:
        # Field lengths per (segment, field), filled in as terms need them: the words of one
        # field share most of their documents, so later terms mostly find them known.
        lkey = key[:3]
        with self._lock:
            lengths = self._lengths.get(lkey)
            if lengths is None:
                lengths = np.full(reader.doc_count_all(), np.nan)
                self._lengths[lkey] = lengths
        unknown = ids[np.isnan(lengths[ids])]
        for d in unknown.tolist():
            lengths[d] = reader.doc_field_length(d, key[2], 1)
        return lengths[ids]


def score(
    searcher: Any,
    leaves: Sequence[Leaf],
    scale: float | None,
    generation: str,
    cache: PostingsCache,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every document of ``searcher`` and whether each matched at all.

    Returns ``(scores, matched)`` indexed by global document number (deleted documents
    included: the caller filters).
    """
    total = searcher.doc_count_all()
    scores = np.zeros(total, dtype=np.float64)
    matched = np.zeros(total, dtype=bool)
    if not leaves:
        return scores, matched
    schema = searcher.schema
    # Global statistics, as Whoosh's BM25FScorer takes them from the top-level searcher.
    stats: list[tuple[Leaf, bytes, float, float]] = []
    for leaf in leaves:
        try:
            btext = schema[leaf.field].to_bytes(leaf.text)
        except ValueError:
            continue  # Whoosh's Term makes this a NullMatcher too
        idf = float(searcher.idf(leaf.field, btext))
        avgdl = float(searcher.avg_field_length(leaf.field) or 1)
        stats.append((leaf, btext, idf, avgdl))
    # Whoosh only wraps an OR of two or more clauses in the coordination matcher.
    coord = scale if scale and len(leaves) > 1 else None
    live: set[tuple[str, str]] = set()
    for subsearcher, offset in searcher.leaf_searchers():
        reader = subsearcher.reader()
        seg_total = reader.doc_count_all()
        if not seg_total:
            continue
        segment = reader.segment()
        seg_id = segment.segment_id() if segment is not None else str(offset)
        live.add((generation, seg_id))
        seg_scores = np.zeros(seg_total, dtype=np.float64)
        seg_hits = np.zeros(seg_total, dtype=np.int32)
        present = 0
        for leaf, btext, idf, avgdl in stats:
            if (leaf.field, btext) not in reader:
                continue  # Whoosh's NullMatcher: not counted in the coordination bonus
            present += 1
            p = cache.get((generation, seg_id, leaf.field, btext), reader)
            if not len(p.docnums):
                continue
            s = idf * ((p.tf * (K1 + 1)) / (p.tf + K1 * ((1 - B) + B * p.dl / avgdl)))
            if leaf.boost != 1.0:
                s = s * leaf.boost
            # A term's postings hold each document once, so fancy-index += is exact.
            seg_scores[p.docnums] += s
            seg_hits[p.docnums] += 1
        if not present:
            continue
        hit = seg_hits > 0
        if coord is not None:
            n = present
            if n == coord:
                seg_scores[:] = 0.0
            else:
                seg_scores = (seg_scores + (seg_hits - 1) / (n - coord) ** 2) * ((n - 1) / n)
        scores[offset : offset + seg_total] = np.where(hit, seg_scores, 0.0)
        matched[offset : offset + seg_total] = hit
    cache.retain(frozenset(live))
    return scores, matched


def top(scores: np.ndarray, candidates: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """The ``limit`` best of ``candidates`` (document numbers): score descending, then
    document number ascending (Whoosh's order for ties)."""
    if not len(candidates) or limit <= 0:
        return []
    cand_scores = scores[candidates]
    if len(candidates) > limit:
        # Everything at least as good as the limit-th score, so ties at the cut are settled
        # by document number below rather than by argpartition's arbitrary choice.
        kth = np.partition(cand_scores, len(cand_scores) - limit)[len(cand_scores) - limit]
        keep = cand_scores >= kth
        candidates, cand_scores = candidates[keep], cand_scores[keep]
    order = np.lexsort((candidates, -cand_scores))[:limit]
    return [(int(candidates[i]), float(cand_scores[i])) for i in order]
