"""Ranking quality of the KB search on a bilingual evaluation set: top-1 and top-3 per mode.

The set (``bench/kb_quality/``) is 13 support-desk articles in English with their Bengali
translations (``articles/``, the import format) and 52 customers' questions, 26 in each
language (``questions.yaml``). None of it is the demo KB (``kb/demo_articles``) the ranking was
first tuned on. Each question is asked:

* of the articles in its own language (``en->en``, ``bn->bn``) and of the articles in the other
  language (``bn->en``, ``en->bn``: a KB whose answer exists only in the other language), with
  the reader's language set to the question's, as the portal and the chat widget do;
* of the whole bilingual KB (``en->mixed``, ``bn->mixed``): the answer must be the article in
  the question's language, its translation must not push it down.

Modes: ``bm25`` and ``hybrid`` are :meth:`kb.search.SearchIndex.search`; ``cosine`` is the plain
cosine similarity of the bundled embedding model's query vector with the articles' vectors
(the same text the index embeds), the baseline the hybrid must not fall below across languages.

    .venv/bin/python bench/kb_quality.py [--misses]

tests/kb/test_quality.py runs the same evaluation and asserts :data:`TARGETS`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

# Run as a file, Python puts bench/ first on sys.path, where a sibling module may shadow the
# standard library (bench/queue.py shadows `queue`); import from the project root instead.
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from kb.search import ArticleDoc, SearchIndex
from kb.search_schema import doc_fields
from kb.search_semantic import Row, embed_rows, query_vector

DATA = Path(__file__).resolve().parent / "kb_quality"
MODES = ("bm25", "cosine", "hybrid")
#: (question language, articles' language); "mixed" is the whole bilingual KB.
PAIRS = (
    ("en", "en"),
    ("bn", "bn"),
    ("bn", "en"),
    ("en", "bn"),
    ("en", "mixed"),
    ("bn", "mixed"),
)
#: What the issue asks (#13 item 24): (pair, mode, measure) -> least share of questions, or
#: the name of the mode the figure must reach ("cosine": hybrid >= plain cosine).
TARGETS: dict[tuple[str, str, str], float | str] = {
    ("en->en", "bm25", "top1"): 0.88,
    ("bn->bn", "hybrid", "top1"): 1.0,
    ("bn->en", "hybrid", "top1"): "cosine",
    ("bn->en", "hybrid", "top3"): "cosine",
    ("en->bn", "hybrid", "top1"): "cosine",
    ("en->bn", "hybrid", "top3"): "cosine",
    ("en->mixed", "hybrid", "top1"): 0.88,
    ("bn->mixed", "hybrid", "top1"): 1.0,
}


#: What the ranking reaches on this set now (2026-12-07), below the issue's targets where
#: TARGETS fails: tests/kb/test_quality.py keeps every figure at least here, so a change that
#: loses a question fails CI. Raise them when the ranking gets better.
FLOORS: dict[tuple[str, str, str], int] = {
    ("en->en", "bm25", "top1"): 22,
    ("en->en", "hybrid", "top1"): 26,
    ("bn->bn", "hybrid", "top1"): 23,
    ("bn->bn", "hybrid", "top3"): 25,
    ("bn->en", "hybrid", "top1"): 21,
    ("bn->en", "hybrid", "top3"): 24,
    ("en->bn", "hybrid", "top1"): 22,
    ("en->bn", "hybrid", "top3"): 22,
    ("en->mixed", "hybrid", "top1"): 26,
    ("bn->mixed", "hybrid", "top1"): 22,
    ("bn->mixed", "hybrid", "top3"): 25,
}
#: Targets of TARGETS this set does not reach yet (docs/performance.md says why); the test
#: expects them to fail, and fails when one passes, so the list is kept true.
KNOWN_MISSES: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("en->en", "bm25", "top1"),
        ("bn->bn", "hybrid", "top1"),
        ("bn->mixed", "hybrid", "top1"),
    }
)


#: Parts of the set (:attr:`Question.part`). The main set (``questions.yaml``, two questions per
#: article and language) is split by position: the first question of each article is "tune"
#: (changes to the ranking were studied on these), the second "held-out" (reported, not
#: studied). "fresh" (``questions_fresh.yaml``) was written before the ranking changes of
#: 2026-12-07 and never looked at while making them. TARGETS and FLOORS count the main set.
PARTS = ("tune", "held-out", "fresh")


@dataclass(frozen=True)
class Question:
    text: str
    lang: str
    answer: str  # the English article's slug; the Bengali one is f"{answer}-bn"
    part: str = "tune"

    def expected(self, articles_lang: str) -> str:
        target = self.lang if articles_lang == "mixed" else articles_lang
        return self.answer if target == "en" else f"{self.answer}-bn"


@dataclass
class Score:
    top1: int = 0
    top3: int = 0
    n: int = 0
    misses: list[str] = field(default_factory=list)
    #: (part, top-1 hit, top-3 hit) per question, for :meth:`part`.
    outcomes: list[tuple[str, bool, bool]] = field(default_factory=list)

    def add(self, question: Question, expected: str, ranked: list[str]) -> None:
        first, three = ranked[:1] == [expected], expected in ranked[:3]
        self.n += 1
        self.top1 += first
        self.top3 += three
        self.outcomes.append((question.part, first, three))
        if not first:
            got = ", ".join(ranked[:3]) or "nothing"
            self.misses.append(f"{question.text!r}: want {expected}, got {got}")

    def part(self, name: str) -> Score:
        """The figures of one part of the set (:data:`PARTS`)."""
        mine = [o for o in self.outcomes if o[0] == name]
        return Score(sum(o[1] for o in mine), sum(o[2] for o in mine), len(mine), [], mine)

    def share(self, measure: str) -> float:
        return (self.top1 if measure == "top1" else self.top3) / max(self.n, 1)


def load_articles() -> list[ArticleDoc]:
    docs = []
    for i, path in enumerate(sorted((DATA / "articles").glob("*.md")), start=1):
        _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
        meta = yaml.safe_load(front)
        docs.append(
            ArticleDoc(
                id=i,
                slug=path.stem,
                title=meta["title"],
                body=body.strip(),
                tags=tuple(meta.get("tags", ())),
                language=meta["language"],
                category=meta.get("category"),
            )
        )
    return docs


def load_questions(*, fresh: bool = False) -> list[Question]:
    """The main set (tune and held-out halves), or with ``fresh`` the fresh hold-out set."""
    name = "questions_fresh.yaml" if fresh else "questions.yaml"
    data = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    questions = []
    for lang in ("en", "bn"):
        seen: dict[str, int] = {}
        for row in data[lang]:
            nth = seen[row["answer"]] = seen.get(row["answer"], 0) + 1
            part = "fresh" if fresh else ("tune" if nth == 1 else "held-out")
            questions.append(Question(row["q"], lang, row["answer"], part))
    return questions


class Cosine:
    """Plain cosine ranking: the articles' vectors (the text the index embeds) against the
    query's, with the bundled model; no centring, no BM25."""

    def __init__(self, docs: list[ArticleDoc], rows: dict[int, Row]) -> None:
        self.slugs = [d.slug for d in docs]
        self.matrix = np.stack([rows[d.id].vec for d in docs])

    def rank(self, text: str) -> list[str]:
        sims = self.matrix @ query_vector(text)
        return [self.slugs[j] for j in np.argsort(-sims, kind="stable")]


def evaluate(
    workdir: Path,
    pairs: Iterable[tuple[str, str]] = PAIRS,
    modes: Iterable[str] = MODES,
    questions: list[Question] | None = None,
) -> dict[tuple[str, str], Score]:
    """Scores per (``"bn->en"``, mode) of ``questions`` (the main set by default)."""
    articles = load_articles()
    questions = load_questions() if questions is None else questions
    results: dict[tuple[str, str], Score] = {}
    indexes: dict[str, SearchIndex] = {}
    cosines: dict[str, Cosine] = {}
    rows: dict[int, Row] = {}
    try:
        for q_lang, a_lang in pairs:
            docs = [d for d in articles if a_lang in ("mixed", d.language)]
            if a_lang not in indexes:
                indexes[a_lang] = SearchIndex(workdir / a_lang)
                indexes[a_lang].upsert(docs)
            index = indexes[a_lang]
            pair = f"{q_lang}->{a_lang}"
            for mode in modes:
                score = results.setdefault((pair, mode), Score())
                for question in (q for q in questions if q.lang == q_lang):
                    if mode == "cosine":
                        if a_lang not in cosines:
                            rows = rows or embed_rows([doc_fields(d) for d in articles], {})
                            cosines[a_lang] = Cosine(docs, rows)
                        ranked = cosines[a_lang].rank(question.text)
                    else:
                        hits = index.search(question.text, lang=q_lang, limit=3, mode=mode)  # type: ignore[arg-type]
                        ranked = [h.slug for h in hits]
                    score.add(question, question.expected(a_lang), ranked)
    finally:
        for index in indexes.values():
            index.close()
    return results


def off_topic(workdir: Path) -> dict[str, tuple[int, int]]:
    """Per language pair, how many of the off-topic questions (``off_topic.yaml``) a hybrid
    search answers with nothing, of how many."""
    data = yaml.safe_load((DATA / "off_topic.yaml").read_text(encoding="utf-8"))
    articles = load_articles()
    out: dict[str, tuple[int, int]] = {}
    for a_lang in ("en", "bn"):
        index = SearchIndex(workdir / f"off-{a_lang}")
        try:
            index.upsert([d for d in articles if d.language == a_lang])
            for q_lang in ("en", "bn"):
                empty = sum(not index.search(q, lang=q_lang, mode="hybrid") for q in data[q_lang])
                out[f"{q_lang}->{a_lang}"] = (empty, len(data[q_lang]))
        finally:
            index.close()
    return out


def target_met(results: dict[tuple[str, str], Score], key: tuple[str, str, str]) -> bool:
    pair, mode, measure = key
    goal = TARGETS[key]
    have = results[(pair, mode)].share(measure)
    if isinstance(goal, str):
        return have >= results[(pair, goal)].share(measure)
    return have >= goal - 1e-9


def report(results: dict[tuple[str, str], Score], misses: bool = False) -> str:
    lines = [f"{'pair':10} {'mode':7} {'top-1':>12} {'top-3':>12}  target"]
    for pair in dict.fromkeys(p for p, _ in results):
        for mode in MODES:
            score = results.get((pair, mode))
            if score is None:
                continue
            cells = []
            for measure, count in (("top1", score.top1), ("top3", score.top3)):
                cells.append(f"{count:>2}/{score.n} {100 * score.share(measure):3.0f}%")
            goals = []
            for (t_pair, t_mode, measure), goal in TARGETS.items():
                other = (pair, goal if isinstance(goal, str) else mode)
                if (t_pair, t_mode) != (pair, mode) or other not in results:
                    continue
                want = f">= {goal}" if isinstance(goal, str) else f">= {100 * goal:.0f}%"
                ok = "PASS" if target_met(results, (t_pair, t_mode, measure)) else "FAIL"
                goals.append(f"{measure} {want} {ok}")
            lines.append(f"{pair:10} {mode:7} {cells[0]:>12} {cells[1]:>12}  {'; '.join(goals)}")
            if misses and mode != "cosine":
                lines.extend(f"{'':19}miss {m}" for m in score.misses)
    return "\n".join(lines)


def report_parts(main: dict[tuple[str, str], Score], fresh: dict[tuple[str, str], Score]) -> str:
    """Top-1 (top-3) per part of the set: a change that helps "tune" only is overfitted."""
    lines = [f"{'pair':10} {'mode':7} " + " ".join(f"{p:>14}" for p in PARTS)]
    for (pair, mode), score in main.items():
        cells = []
        for p in PARTS:
            s = (fresh.get((pair, mode)) or Score()).part(p) if p == "fresh" else score.part(p)
            cells.append(f"{s.top1:>2} ({s.top3:>2})/{s.n:<2}")
        lines.append(f"{pair:10} {mode:7} " + " ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true", help="list the questions missed at top-1")
    parser.add_argument(
        "--no-parts", action="store_true", help="skip the per-part table (and the fresh set)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-quality-") as tmp:
        results = evaluate(Path(tmp) / "main")
        fresh = (
            {}
            if args.no_parts
            else evaluate(Path(tmp) / "fresh", questions=load_questions(fresh=True))
        )
    print(report(results, misses=args.misses))
    if not args.no_parts:
        print("\ntop-1 (top-3) per part: tune (studied), held-out (not studied), fresh (written")
        print("before the changes, never studied); targets count tune + held-out")
        print(report_parts(results, fresh))
        if args.misses:
            print("\nfresh set:")
            print(report(fresh, misses=True))
        with tempfile.TemporaryDirectory(prefix="kb-quality-") as tmp:
            nothing = off_topic(Path(tmp))
        print("\noff-topic questions (off_topic.yaml) a hybrid search finds nothing for:")
        print("  " + ", ".join(f"{pair} {n}/{of}" for pair, (n, of) in nothing.items()))
    failed = [key for key in TARGETS if not target_met(results, key)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
