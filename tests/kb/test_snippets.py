"""Search snippets on real articles: no text shown twice (#13 item 9).

A snippet shows up to two fragments around the matched words. Each fragment is widened by
context on both sides, so two groups of matches close together produced fragments that
overlapped: the chat widget's suggestions, the portal's results and the agents' KB search
repeated a sentence ("…bank account. You get an email when… …bank account. You get an email
when the refund…"). Checked on every word of every demo article (English and Bengali).
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from flask import Flask
from sqlalchemy.orm import Session

from channels.chat.suggest import suggest
from kb import services
from kb.analysis import WORD_RE, analyzer_for
from kb.indexer import index_pending
from kb.search import ArticleDoc, SearchIndex
from kb.search_schema import plain_text
from kb.search_snippets import snippet

DEMO = Path(__file__).resolve().parents[2] / "kb" / "demo_articles"


def demo_articles() -> list[ArticleDoc]:
    docs = []
    for i, path in enumerate(sorted(DEMO.glob("*.md")), start=1):
        _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
        meta = yaml.safe_load(front)
        docs.append(
            ArticleDoc(
                id=i,
                slug=path.stem,
                title=meta["title"],
                body=body.strip(),
                tags=tuple(meta.get("tags", ())),
                language=meta.get("language", "en"),
            )
        )
    return docs


ARTICLES = demo_articles()


def fragments(snip: str) -> list[str]:
    """The plain text of each fragment of a snippet, in order."""
    text = html.unescape(snip.replace("<mark>", "").replace("</mark>", ""))
    return [part.strip() for part in re.split(r"…", text) if part.strip()]


def shown_spans(body: str, snip: str) -> list[tuple[int, int]]:
    """Where each fragment of ``snip`` comes from in ``body`` (searched left to right)."""
    spans, pos = [], 0
    for frag in fragments(snip):
        at = body.find(frag, pos)
        assert at >= 0, f"fragment not in the article, or out of order: {frag!r}"
        spans.append((at, at + len(frag)))
        pos = at + len(frag)
    return spans


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchIndex]:
    index = SearchIndex(tmp_path_factory.mktemp("demo-kb"))
    index.upsert(ARTICLES)
    yield index
    index.close()


@pytest.mark.parametrize(
    ("query", "lang", "slug", "once"),
    [
        # the refund policy's matches are 100-odd characters apart: the context between them
        # was shown in both fragments
        ("refund", "en", "refund-policy", "You get an email when"),
        ("ডেলিভারি", "bn", "delivery-time-bn", "অর্ডার ট্র্যাক থেকে আপনার"),
    ],
)
def test_search_snippet_shows_no_text_twice(
    demo_kb: SearchIndex, query: str, lang: str, slug: str, once: str
) -> None:
    hit = next(h for h in demo_kb.search(query, lang=lang, mode="hybrid") if h.slug == slug)
    text = html.unescape(hit.snippet.replace("<mark>", "").replace("</mark>", ""))
    assert text.count(once) == 1, hit.snippet
    assert "<mark>" in hit.snippet


@pytest.mark.parametrize("article", ARTICLES, ids=[a.slug for a in ARTICLES])
def test_no_fragments_overlap_for_any_word_of_any_demo_article(article: ArticleDoc) -> None:
    body = plain_text(article.body)
    analyze = analyzer_for(article.language)
    terms = {t.text for t in analyze(body)}
    words = [m.group(0) for m in WORD_RE.finditer(body)]
    queries = [frozenset({t}) for t in terms]
    # pairs of neighbouring words too: more matches, more fragments to keep apart
    pairs = zip(words, words[3:], strict=False)
    queries += [frozenset(t.text for t in analyze(f"{a} {b}")) for a, b in pairs]
    for terms_q in queries:
        snip = snippet(body, article.language, terms_q)
        spans = shown_spans(body, snip)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"{sorted(terms_q)}: fragments overlap in {snip!r}"


def test_chat_suggestions_are_plain_text(app: Flask, session: Session) -> None:
    services.create_article(
        session,
        title="Returns & exchanges",
        body="Don't throw the box away: we can't exchange an item without it. "
        + "Returns take a week. " * 40,
        language="en",
        slug="returns-exchanges",
        status="published",
    )
    session.commit()
    while index_pending(app):
        pass
    [hit] = suggest(app, "exchange the box", "en")
    assert hit["title"] == "Returns & exchanges"
    # The widget shows the text as it is: no entities, no tags, cut at a word.
    assert hit["snippet"].startswith("Don't throw the box away: we can't exchange")
    assert "&#" not in hit["snippet"] and "&amp;" not in hit["snippet"]
    assert "<" not in hit["snippet"]
    assert len(hit["snippet"]) <= 500 and hit["snippet"].endswith("…")
