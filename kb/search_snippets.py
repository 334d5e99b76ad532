"""Search-result snippets: the parts of an article body around the words a query matched.

A snippet is HTML: escaped text, matches in ``<mark>``, "…" where text was cut. Words are
matched through the index's own analyzers (:func:`kb.analysis.analyzer_for`), one word at a
time and cached, against the analysed query terms (:func:`kb.search_parsing.query_terms`).

Part of the search engine (:mod:`kb.search`); no Whoosh import.
"""

from __future__ import annotations

import html
from functools import lru_cache

from kb.analysis import WORD_RE, analyzer_for

__all__ = ["SNIPPET_CHARS", "snippet"]

SNIPPET_CHARS = 220
#: Characters of context kept before and after a match in a snippet fragment.
SNIPPET_SURROUND = 60
#: Fragments shown per snippet.
SNIPPET_FRAGMENTS = 2
#: Fragments closer than this many characters are shown as one (no "… …" over a few words).
SNIPPET_MERGE_GAP = 20


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


def snippet(body: str, lang: str, terms: frozenset[str]) -> str:
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
    # Each fragment widens its group by the context around it, so two groups close together
    # would show the same words twice ("…bank account. You get an email when… …bank account.
    # You get an email when the refund…"). Fragments that overlap or nearly touch are one.
    spans: list[tuple[int, int, list[int]]] = []
    for group in best:
        start, end = _window(words, group)
        if spans and start <= spans[-1][1] + SNIPPET_MERGE_GAP:
            prev_start, prev_end, prev_group = spans[-1]
            spans[-1] = (prev_start, max(prev_end, end), prev_group + group)
        else:
            spans.append((start, end, group))
    return " ".join(_fragment(body, words, group, start, end) for start, end, group in spans)


def _window(words: list[tuple[int, int]], group: list[int]) -> tuple[int, int]:
    """The characters a fragment of ``group`` shows: its matches widened to whole words
    within the surrounding context."""
    first, last = words[group[0]][0], words[group[-1]][1]
    start = next(a for a, _ in words if a >= first - SNIPPET_SURROUND)
    end = max(b for _, b in words if b <= last + SNIPPET_SURROUND)
    return min(start, first), max(end, last)


def _fragment(
    body: str, words: list[tuple[int, int]], group: list[int], start: int, end: int
) -> str:
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
