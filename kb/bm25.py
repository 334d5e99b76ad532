"""Vectorised BM25F scoring of plain-word queries.

Why vectorised: Whoosh scores one matching document at a time in Python. A help-center query is
a few words, each found in thousands of articles, and that walk was most of the search time
(see docs/performance.md). Here each term's postings are read once into numpy arrays and a
query becomes a few vector operations.

The formula (BM25F, Robertson & Zaragoza), per word of the query (kb.search checks the query
shape with kb.search_parsing.flat_terms; phrases and explicit AND/OR are scored by Whoosh):

* the word's fields (``title_en``, ``tags_en``, ``body_en``: one language slot) together:
  ``tf = sum(weight * tf_field / (1 - B + B * dl_field / avgdl_field))`` with
  :data:`FIELD_WEIGHTS`, saturated once: ``idf * tf * (K1 + 1) / (tf + K1)``;
* ``idf = log(1 + (N - df + 0.5) / (df + 0.5))`` with ``df`` the documents holding the word in
  any of those fields and ``N`` all documents (deleted ones included until a merge, like the
  field lengths Whoosh keeps);
* times the word's language factor (the leaves' boost over the field weight: fields of another
  language than the reader's count half), summed over the words; a word typed twice counts once;
* ties broken by document number.

Not Whoosh's BM25F, which scored every field as a separate term with an idf of its own (a
common word rare in titles outweighed the word a question is about) and multiplied the sum by
a coordination factor computed per segment (a word present in one field of a segment scored
every document there 0; an article edited into a segment of its own scored differently from
the same article in the main one). Statistics are the whole index's, so a score does not
depend on segments.

Postings are cached per (segment, field, word). Segments never change once written (an update
adds a segment and marks the old document deleted), so the cache stays valid across index
refreshes; deleted documents are removed by the caller's filter, which is computed from the
live searcher. No Whoosh import: the objects handed in are used through their public methods.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: BM25's usual parameters (also Whoosh's defaults, which score phrases and operators).
B = 0.75
K1 = 1.2
#: How many body words one occurrence in a field is worth, inside the saturation (BM25F).
#: The query parser boosts fields by these too; a boost above a field's weight (the reader's
#: own language against the other: see kb.search_parsing) scales the word's whole score.
FIELD_WEIGHTS: dict[str, float] = {"title": 3.0, "tags": 2.0, "body": 1.0}
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
    generation: str,
    cache: PostingsCache,
) -> tuple[np.ndarray, np.ndarray]:
    """BM25F scores of every document of ``searcher`` and whether each matched at all.

    Returns ``(scores, matched)`` indexed by global document number (deleted documents
    included: the caller filters).
    """
    total = searcher.doc_count_all()
    scores = np.zeros(total, dtype=np.float64)
    matched = np.zeros(total, dtype=bool)
    if not leaves or not total:
        return scores, matched
    schema = searcher.schema
    # One word of the query is one term: its fields (title_en, tags_en, body_en) together.
    terms: dict[tuple[str, str], list[tuple[Leaf, bytes, float, float]]] = {}
    for leaf in dict.fromkeys(leaves):  # a word typed twice is one term, not twice the weight
        try:
            btext = schema[leaf.field].to_bytes(leaf.text)
        except ValueError:
            continue  # a word the field cannot hold matches nothing
        kind, _, slot = leaf.field.partition("_")
        weight = FIELD_WEIGHTS.get(kind, 1.0)
        avgdl = float(searcher.avg_field_length(leaf.field) or 1)
        terms.setdefault((slot, leaf.text), []).append((leaf, btext, weight, avgdl))
    segments = []
    live: set[tuple[str, str]] = set()
    for subsearcher, offset in searcher.leaf_searchers():
        reader = subsearcher.reader()
        if not reader.doc_count_all():
            continue
        segment = reader.segment()
        seg_id = segment.segment_id() if segment is not None else str(offset)
        live.add((generation, seg_id))
        segments.append((reader, seg_id, offset))
    for fields in terms.values():
        # Length-normalised, weighted term frequency summed over the fields, then saturated
        # once: a word in the title counts as FIELD_WEIGHTS["title"] words of body, not as a
        # second, separately saturated match with an idf of its own.
        tf = np.zeros(total, dtype=np.float64)
        scale = 0.0
        for leaf, btext, weight, avgdl in fields:
            scale = max(scale, leaf.boost / weight)
            for reader, seg_id, offset in segments:
                if (leaf.field, btext) not in reader:
                    continue
                p = cache.get((generation, seg_id, leaf.field, btext), reader)
                if len(p.docnums):
                    # A term's postings hold each document once, so fancy-index += is exact.
                    tf[p.docnums + offset] += weight * p.tf / ((1 - B) + B * p.dl / avgdl)
        hit = np.flatnonzero(tf)
        if not len(hit):
            continue
        f = tf[hit]
        idf = math.log(1 + (total - len(hit) + 0.5) / (len(hit) + 0.5))
        scores[hit] += scale * idf * f * (K1 + 1) / (f + K1)
        matched[hit] = True
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
