"""The vectorised BM25F scorer (kb.bm25).

It no longer copies Whoosh's BM25F, which scored each field as a separate term with an idf of
its own (a common word that is rare in titles, like "my" or "order", outweighed the word a
question was about) and multiplied every score by Whoosh's coordination factor computed per
index segment: a word present in one field of a segment scored every document there 0
(articles came back in index order), and an article edited into a segment of its own scored
differently from the same article in the main one. Checked here against a direct
implementation of the formula over Whoosh's own postings and field lengths.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from whoosh import index as whoosh_index

from kb import bm25 as kb_bm25
from kb.search import ArticleDoc, SearchIndex
from kb.search_parsing import flat_terms
from kb.search_schema import doc_fields
from tests.kb.test_search import ARTICLES

# The segmented index's history: articles in shuffled order, the first one later updated (its
# old version stays in its segment as a deleted document), the second deleted.
ORDER = list(ARTICLES)
random.Random(7).shuffle(ORDER)
STALE, DELETED = ORDER[0], ORDER[1]
UPDATED = replace(STALE, title=STALE.title + " updated")

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


def _reference_ranking(
    index: SearchIndex, query: str, lang: str | None, depth: int
) -> list[tuple[int, float]]:
    """BM25F written out document by document: per word, the fields' weighted,
    length-normalised frequencies summed, saturated once, times the word's idf over
    documents (any field)."""
    with index._reader.reading() as searcher:
        leaves = flat_terms(index._parse(query, lang, searcher))
        assert leaves is not None
        total = searcher.doc_count_all()
        words: dict[tuple[str, str], list[kb_bm25.Leaf]] = defaultdict(list)
        for leaf in dict.fromkeys(leaves):
            words[(leaf.field.rpartition("_")[2], leaf.text)].append(leaf)
        scores: dict[int, float] = defaultdict(float)
        for fields in words.values():
            tf: dict[int, float] = defaultdict(float)
            scale = 0.0
            for leaf in fields:
                weight = kb_bm25.FIELD_WEIGHTS[leaf.field.partition("_")[0]]
                scale = max(scale, leaf.boost / weight)
                btext = searcher.schema[leaf.field].to_bytes(leaf.text)
                if (leaf.field, btext) not in searcher.reader():
                    continue
                avgdl = searcher.avg_field_length(leaf.field)
                postings = searcher.postings(leaf.field, btext)
                while postings.is_active():
                    docnum = postings.id()
                    dl = searcher.doc_field_length(docnum, leaf.field, 1)
                    norm = (1 - kb_bm25.B) + kb_bm25.B * dl / avgdl
                    tf[docnum] += weight * postings.weight() / norm
                    postings.next()
            idf = math.log(1 + (total - len(tf) + 0.5) / (len(tf) + 0.5))
            for docnum, f in tf.items():
                scores[docnum] += scale * idf * f * (kb_bm25.K1 + 1) / (f + kb_bm25.K1)
        allowed = index._reader.allowed_docnums(searcher, False, False)
        ranked = sorted((-s, d) for d, s in scores.items() if d in allowed)[:depth]
        return [(int(searcher.stored_fields(d)["id"]), round(-neg, 9)) for neg, d in ranked]


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
    docs = list(ORDER)
    batches = [docs[start : start + 4] for start in range(0, len(docs), 4)] + [[UPDATED]]
    ix = whoosh_index.open_dir(str(index._store.gen_dir()), schema=index.schema)
    for batch in batches:
        writer = ix.writer()
        for doc in batch:
            writer.update_document(**doc_fields(doc))
        writer.commit(merge=False)
    writer = ix.writer()
    writer.delete_by_term("id", str(DELETED.id))
    writer.commit(merge=False)
    ix.close()
    yield index
    index.close()


@pytest.mark.parametrize(("query", "lang"), QUERIES)
def test_same_ranking_and_scores_as_the_formula(
    segmented: SearchIndex, query: str, lang: str | None
) -> None:
    for depth in (3, 10, 50):
        assert _fast_ranking(segmented, query, lang, depth) == _reference_ranking(
            segmented, query, lang, depth
        )


@pytest.mark.parametrize(("query", "lang"), QUERIES)
def test_scores_do_not_depend_on_segments(
    segmented: SearchIndex, tmp_path: Path, query: str, lang: str | None
) -> None:
    # The same documents in one segment: the live articles (one as updated) and, deleted,
    # the two the segmented index still counts in its statistics until a merge (as Whoosh).
    live = [d for d in ARTICLES if d.id not in (STALE.id, DELETED.id)] + [UPDATED]
    single = SearchIndex(tmp_path / "one")
    try:
        ix = whoosh_index.open_dir(str(single._store.gen_dir()), schema=single.schema)
        writer = ix.writer()
        for doc in [STALE, DELETED, *live]:
            writer.add_document(**doc_fields(doc))
        writer.commit(merge=False)
        writer = ix.writer()  # deleting adds no segment
        writer.delete_document(0)
        writer.delete_document(1)
        writer.commit(merge=False)
        ix.close()
        with single._reader.reading() as searcher:
            assert len(searcher.leaf_searchers()) == 1
        one = dict(_fast_ranking(single, query, lang, 50))
        many = dict(_fast_ranking(segmented, query, lang, 50))
        assert one.keys() == many.keys()
        for doc_id, score in one.items():
            assert many[doc_id] == pytest.approx(score, rel=1e-6, abs=1e-9)
    finally:
        single.close()


def test_a_word_only_in_bodies_ranks_by_frequency(tmp_path: Path) -> None:
    # Whoosh's coordination factor made every score 0 when only one field of the segment
    # held the word, and the articles came back in index order.
    index = SearchIndex(tmp_path / "kb")
    try:
        index.upsert(
            [
                ArticleDoc(id=1, slug="once", title="Gift cards", body="Keep the box."),
                ArticleDoc(id=2, slug="thrice", title="Damaged parcel", body="Box, box and box."),
            ]
        )
        hits = index.search("box", lang="en")
        assert [h.slug for h in hits] == ["thrice", "once"]
        assert hits[1].score > 0
    finally:
        index.close()


def test_the_index_under_test_has_segments_and_deletions(segmented: SearchIndex) -> None:
    with segmented._reader.reading() as searcher:
        assert len(searcher.leaf_searchers()) > 1
        assert searcher.doc_count_all() > searcher.doc_count()


def test_phrases_and_operators_still_go_through_whoosh(segmented: SearchIndex) -> None:
    with segmented._reader.reading() as searcher:
        assert flat_terms(segmented._parse('"reset your password"', "en", searcher)) is None
        assert flat_terms(segmented._parse("refund AND card", "en", searcher)) is None
    assert segmented.search('"reset your password"', lang="en")
