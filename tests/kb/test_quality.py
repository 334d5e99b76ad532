"""Ranking quality on the bilingual evaluation set of bench/kb_quality.py (#13 item 24).

13 support-desk articles in English and Bengali (not the demo KB the ranking was first tuned
on) and 52 customers' questions, run through the real SearchIndex in every mode and language
pair. Hybrid search must not fall below a plain cosine ranking with the same embedding model when
the question and the articles are in different languages (rank fusion did: bn->en top-3 18/26
against cosine's 24/26; 23 while a similarity floor applied across languages; now 24 = 24), and
no figure may drop below what it reaches now. The targets not reached (KNOWN_MISSES) are strict
xfails: docs/performance.md, "Ranking quality", gives the evidence.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kb_quality.py"


def _load_bench() -> ModuleType:
    # bench/ is no package, and putting it on sys.path would shadow the standard library's
    # queue with bench/queue.py.
    spec = importlib.util.spec_from_file_location("bench_kb_quality", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


kb_quality = _load_bench()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Any, Any]]:
    yield kb_quality.evaluate(tmp_path_factory.mktemp("kb-quality"))


def test_the_set_is_what_the_issue_asks_for() -> None:
    articles, questions = kb_quality.load_articles(), kb_quality.load_questions()
    assert sum(a.language == "en" for a in articles) >= 12
    assert sum(a.language == "bn" for a in articles) >= 12
    assert len(questions) >= 40
    demo = {p.stem for p in (BENCH.parents[1] / "kb" / "demo_articles").glob("*.md")}
    assert not demo & {a.slug for a in articles}
    slugs = {a.slug for a in articles}
    for q in questions:
        assert {q.expected("en"), q.expected("bn")} <= slugs, q


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(
            k,
            marks=pytest.mark.xfail(strict=True, reason="not reached yet: docs/performance.md"),
        )
        if k in kb_quality.KNOWN_MISSES
        else k
        for k in kb_quality.TARGETS
    ],
    ids=lambda k: "-".join(k),
)
def test_targets(results: dict[Any, Any], key: tuple[str, str, str]) -> None:
    # hybrid >= plain cosine across languages (top-1 in both directions, top-3 en->bn) and the
    # absolute targets the set reaches; the others are expected to fail until they do.
    assert kb_quality.target_met(results, key), kb_quality.report(results, misses=True)


@pytest.mark.parametrize("key", list(kb_quality.FLOORS), ids=lambda k: "-".join(k))
def test_no_figure_drops(results: dict[Any, Any], key: tuple[str, str, str]) -> None:
    pair, mode, measure = key
    score = results[(pair, mode)]
    have = score.top1 if measure == "top1" else score.top3
    assert have >= kb_quality.FLOORS[key], kb_quality.report(results, misses=True)
