"""The vectorised scorer (kb.bm25) ranks exactly like Whoosh's own BM25F search.

Compared with Whoosh scoring every matching document: its collector's matcher replacement is
switched off, because replacing exhausted sub-matchers changes the coordination bonus for the
documents that come after (a Whoosh artifact: a score should not depend on a document's
position in the index).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

import pytest
from whoosh import collectors
from whoosh import index as whoosh_index

from kb.search import SearchIndex
from kb.search_parsing import flat_terms
from kb.search_schema import doc_fields
from tests.kb.test_search import ARTICLES

QUERIES = [
    ("reset password", "en"),
    ("password", None),
    ("how do I get a refund for a damaged item", "en"),
    ("pasword reset", "en"),
    ("পাসওয়ার্ডের রিসেট", "bn"),
    ("বিকাশে পেমেন্ট", None),
    ("bKash OTP", "bn"),
    ("delivery Dhaka", "bn"),
    ("zzzz nothing", None),
]


def _whoosh_ranking(
    index: SearchIndex, query: str, lang: str | None, depth: int
) -> list[tuple[int, float]]:
    with index._reader.reading() as searcher:
        q = index._parse(query, lang, searcher)
        top = collectors.TopCollector(limit=depth, usequality=False)
        top.replace = 0
        allowed = index._reader.allowed_docnums(searcher, False, False)
        collector = collectors.FilterCollector(top, allow=allowed)
        searcher.search_with_collector(q, collector)
        return [(int(h["id"]), round(h.score, 9)) for h in collector.results()]


def _fast_ranking(
    index: SearchIndex, query: str, lang: str | None, depth: int
) -> list[tuple[int, float]]:
    with index._reader.reading() as searcher:
        q = index._parse(query, lang, searcher)
        assert flat_terms(q) is not None  # plain words take the vectorised path
        ranked = index._bm25(searcher, q, query, lang, depth, False, False)
        return [(doc_id, round(score, 9)) for doc_id, score, _ in ranked]


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchIndex]:
    """The fixture KB written in several segments, with an update and a deletion, as a busy
    index looks between merges (SearchIndex.upsert lets Whoosh merge small segments, so the
    batches are committed here without merging)."""
    index = SearchIndex(tmp_path_factory.mktemp("segmented"))
    rng = random.Random(7)
    docs = list(ARTICLES)
    rng.shuffle(docs)
    updated = replace(docs[0], title=docs[0].title + " updated")
    batches = [docs[start : start + 4] for start in range(0, len(docs), 4)] + [[updated]]
    ix = whoosh_index.open_dir(str(index._store.gen_dir()), schema=index.schema)
    for batch in batches:
        writer = ix.writer()
        for doc in batch:
            writer.update_document(**doc_fields(doc))
        writer.commit(merge=False)
    writer = ix.writer()
    writer.delete_by_term("id", str(docs[1].id))
    writer.commit(merge=False)
    ix.close()
    yield index
    index.close()


@pytest.mark.parametrize(("query", "lang"), QUERIES)
def test_same_ranking_and_scores_as_whoosh(
    segmented: SearchIndex, query: str, lang: str | None
) -> None:
    for depth in (3, 10, 50):
        assert _fast_ranking(segmented, query, lang, depth) == _whoosh_ranking(
            segmented, query, lang, depth
        )


def test_the_index_under_test_has_segments_and_deletions(segmented: SearchIndex) -> None:
    with segmented._reader.reading() as searcher:
        assert len(searcher.leaf_searchers()) > 1
        assert searcher.doc_count_all() > searcher.doc_count()


def test_phrases_and_operators_still_go_through_whoosh(segmented: SearchIndex) -> None:
    with segmented._reader.reading() as searcher:
        assert flat_terms(segmented._parse('"reset your password"', "en", searcher)) is None
        assert flat_terms(segmented._parse("refund AND card", "en", searcher)) is None
    assert segmented.search('"reset your password"', lang="en")
