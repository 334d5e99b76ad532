"""Help while typing: title completions and "did you mean" respellings.

:func:`suggest_titles` completes the words typed so far against article titles (the
``title_ac`` prefix field); :func:`did_you_mean` respells unknown words from the vocabulary of
public, published articles (the ``spell`` field, see :func:`kb.search_schema.build_schema`).
Both serve :class:`kb.search.SearchIndex`, which documents them (``suggest`` and
``did_you_mean``).

Part of the search engine (:mod:`kb.search`); imports Whoosh (query types).
"""

from __future__ import annotations

from typing import Any

from whoosh.query import And, Term

from kb.analysis import (
    ENGLISH_STOPWORDS,
    WORD_RE,
    analyzer_for,
    bengali_stopwords,
    normalize,
    primary_language,
)
from kb.search_reader import SearcherCache
from kb.search_schema import LANG_SLOTS, SUGGEST_MAX_PREFIX, analyzer_language

__all__ = ["did_you_mean", "suggest_titles"]


def suggest_titles(
    reader: SearcherCache,
    prefix: str,
    *,
    lang: str | None,
    limit: int,
    include_internal: bool,
    include_drafts: bool,
) -> list[str]:
    """Titles whose words start with every typed word: those in ``lang`` first, then those
    that begin with the typed text, then shorter ones."""
    words = [t.text for t in analyzer_for("")(normalize(prefix or ""))]
    if not words:
        return []
    q = And([Term("title_ac", w[:SUGGEST_MAX_PREFIX]) for w in words])
    typed = " ".join(words)
    want = primary_language(lang)
    with reader.reading() as searcher:
        allowed = reader.allowed_docnums(searcher, include_internal, include_drafts)
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


def did_you_mean(reader: SearcherCache, query: str) -> str | None:
    """``query`` with unknown words replaced by the most frequent public word one edit away,
    else two edits away; None if no word was replaced."""
    text = normalize(query or "")
    matches = list(WORD_RE.finditer(text))
    if not matches:
        return None
    stop = ENGLISH_STOPWORDS | bengali_stopwords()
    out: list[str] = []
    pos = 0
    changed = False
    with reader.reading() as searcher:
        index_reader = searcher.reader()
        corrector = searcher.corrector("spell")
        for m in matches:
            word = m.group(0).lower()
            replacement = None
            checkable = len(word) >= 3 and not word.isdigit() and word not in stop
            if checkable and not _is_known(index_reader, word):
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


def _is_known(index_reader: Any, word: str) -> bool:
    """Whether ``word`` (or its stem in some language) is indexed."""
    if index_reader.doc_frequency("spell", word):
        return True
    for slot in LANG_SLOTS:
        for token in analyzer_for(analyzer_language(slot))(word):
            for kind in ("title", "body"):
                if index_reader.doc_frequency(f"{kind}_{slot}", token.text):
                    return True
    return False
