"""The index directory on disk, and every write to it.

Layout::

    CURRENT          name of the live generation, replaced atomically (os.replace)
    gen-000007/      a Whoosh index + vectors.npz (embeddings, written atomically)
    gen-000006/      the previous generation, kept so a query already running on it finishes
    writer.lock      cross-process writer lock (flock)

Each generation also holds ``ANALYZER``, the :data:`kb.analysis.ANALYZER_VERSION` it was
created with (none: version 1), so an index written by older analyzers is known to be stale
(:meth:`IndexStore.analyzer_version`) and rebuilt by the worker (:mod:`kb.indexer`).

Every write (:meth:`IndexStore.upsert`, ``delete``, ``rebuild``) holds a thread lock and the
writer file lock, so there is one writer at a time across threads and processes; inside that,
Whoosh's own index lock is taken with a timeout (``ix.writer(timeout=...)``) rather than via
``AsyncWriter``, because ``AsyncWriter`` may commit later on a background thread, and callers
(after-commit effects, tests) rely on a change being searchable when ``upsert`` returns.
``rebuild`` writes a fresh generation and flips ``CURRENT`` only when it is complete, so a
crash mid-rebuild leaves the old index serving. Readers follow ``CURRENT``
(:mod:`kb.search_reader`).

Part of the search engine (:mod:`kb.search`); imports Whoosh (index files, file lock).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh.fields import Schema
from whoosh.util.filelock import FileLock

from kb.analysis import ANALYZER_VERSION
from kb.search_schema import ArticleDoc, doc_fields
from kb.search_semantic import VECTORS_FILE, Row, Vectors, embed_rows, get_embedder

__all__ = ["IndexStore"]

WRITER_TIMEOUT_S = 30.0

_GEN_PREFIX = "gen-"
_CURRENT = "CURRENT"
_ANALYZER = "ANALYZER"


class IndexStore:
    """The generations of one index directory (see the module docstring) and their writer.

    Create-or-open: a directory without ``CURRENT`` gets an empty first generation.
    """

    def __init__(self, path: Path, schema: Schema) -> None:
        self.path = path
        self.schema = schema
        self._write_mutex = threading.Lock()
        if self.read_current() is None:
            with self._write_lock():
                if self.read_current() is None:
                    gen = self._next_gen_name()
                    self._create_generation(gen).close()
                    self._write_current(gen)

    # -- writing ------------------------------------------------------------------------

    def upsert(self, docs: Iterable[ArticleDoc]) -> None:
        """Add or replace articles (by id) in the live generation, embeddings included."""
        items = list(docs)
        if not items:
            return
        fields = [doc_fields(d) for d in items]
        with self._write_lock():
            gen_dir = self.gen_dir()
            new_vecs = self._embed_missing(fields, Vectors.load(gen_dir / VECTORS_FILE))
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
                new_vecs.save(gen_dir / VECTORS_FILE)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove articles by id from the live generation; unknown ids are ignored."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return
        with self._write_lock():
            gen_dir = self.gen_dir()
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
            vecs_path = gen_dir / VECTORS_FILE
            if vecs_path.exists():
                vectors = Vectors.load(vecs_path)
                remaining = vectors.without(id_list)
                if len(remaining.ids) != len(vectors.ids):
                    remaining.save(vecs_path)

    def rebuild(
        self,
        docs: Iterable[ArticleDoc],
        progress: Callable[[int], None] | None,
        batch_size: int,
    ) -> int:
        """Write ``docs`` into a new generation and make it the live one; returns how many
        were written (see :meth:`kb.search.SearchIndex.rebuild`)."""
        total = 0
        with self._write_lock():
            old_dir = self.gen_dir()
            old_vecs = Vectors.load(old_dir / VECTORS_FILE).rows()
            gen = self._next_gen_name()
            new_dir = self.path / gen
            ix = self._create_generation(gen)
            rows: dict[int, Row] = {}
            semantic = get_embedder() is not None
            try:
                writer = ix.writer(timeout=WRITER_TIMEOUT_S, limitmb=128)
                try:
                    for batch in _batched(docs, batch_size):
                        fields = [doc_fields(d) for d in batch]
                        if semantic:
                            rows.update(embed_rows(fields, old_vecs))
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
                Vectors.from_rows(rows).save(new_dir / VECTORS_FILE)
            self._write_current(gen)
            self._remove_stale_generations(keep={gen, old_dir.name})
        return total

    def _embed_missing(self, fields: list[dict[str, str]], vectors: Vectors) -> Vectors | None:
        if get_embedder() is None:
            return None
        rows = vectors.rows()
        rows.update(embed_rows(fields, rows))
        return Vectors.from_rows(rows)

    # -- generations and locking ---------------------------------------------------------

    def read_current(self) -> str | None:
        """The name of the live generation (None before the first one exists)."""
        try:
            name = (self.path / _CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def analyzer_version(self) -> int:
        """The analyzer version the live generation was created with (1 if it predates the
        record, 0 if the record is unreadable: either way not the current one)."""
        try:
            return int((self.gen_dir() / _ANALYZER).read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            return 1
        except (OSError, ValueError):
            return 0

    def gen_dir(self) -> Path:
        """The live generation's directory."""
        gen = self.read_current()
        if gen is None:
            raise RuntimeError(f"search index at {self.path} has no CURRENT generation")
        return self.path / gen

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        with self._write_mutex:
            lock = FileLock(str(self.path / "writer.lock"))
            lock.acquire(blocking=True)
            try:
                yield
            finally:
                lock.release()

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
        (gen_dir / _ANALYZER).write_text(f"{ANALYZER_VERSION}\n", encoding="utf-8")
        return whoosh_index.create_in(str(gen_dir), self.schema)

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


def _batched(items: Iterable[ArticleDoc], size: int) -> Iterator[list[ArticleDoc]]:
    batch: list[ArticleDoc] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
