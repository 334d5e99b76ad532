"""From what a customer typed to a Whoosh query over the language fields.

:class:`QueryParser` parses the text against the title, tags and body fields of every language
slot (:data:`kb.search_schema.LANG_SLOTS`), each field with its own analyzer and boost
(:func:`field_boosts`). When the caller names a language, fields of the other languages get
half the weight (:data:`OTHER_LANGUAGE_FACTOR`): a Bengali reader sees Bengali articles first,
but an English article that matches far better (or is the only one) still shows up. Query
syntax is limited to what prose needs (phrases, parentheses, AND, OR); anything that does not
parse is searched as plain words.

Also here, what the rest of the engine reads from a parsed query: :func:`flat_terms` (may
:mod:`kb.bm25` score it?) and :func:`query_terms` (what to highlight in snippets).

Part of the search engine (:mod:`kb.search`); imports Whoosh (query parser and query types).
"""

from __future__ import annotations

import logging
from contextlib import suppress

from whoosh.fields import Schema
from whoosh.qparser import MultifieldParser, OrGroup
from whoosh.qparser import plugins as qplugins
from whoosh.query import NullQuery, Or, Query, Term

from kb import bm25 as kb_bm25
from kb.search_schema import LANG_SLOTS, language_slot

__all__ = ["QueryParser", "field_boosts", "flat_terms", "query_terms"]

# The engine's one logger name, whichever of its modules logs.
log = logging.getLogger("kb.search")

TITLE_BOOST = kb_bm25.FIELD_WEIGHTS["title"]
TAGS_BOOST = kb_bm25.FIELD_WEIGHTS["tags"]
BODY_BOOST = kb_bm25.FIELD_WEIGHTS["body"]
#: Weight of fields in languages other than the requested one (see module docstring).
OTHER_LANGUAGE_FACTOR = 0.5


def field_boosts(lang: str | None) -> dict[str, float]:
    """Every language field with its boost for a reader of ``lang`` (None: all alike)."""
    want = language_slot(lang) if lang else None
    boosts: dict[str, float] = {}
    for slot in LANG_SLOTS:
        factor = 1.0 if want is None or slot == want else OTHER_LANGUAGE_FACTOR
        boosts[f"title_{slot}"] = TITLE_BOOST * factor
        boosts[f"tags_{slot}"] = TAGS_BOOST * factor
        boosts[f"body_{slot}"] = BODY_BOOST * factor
    return boosts


class QueryParser:
    """Parses query text for one schema; the Whoosh parsers are kept per set of boosts.

    Not locked: the search index parses while it holds its reader lock.
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._parsers: dict[tuple[tuple[str, float], ...], MultifieldParser] = {}

    def parse(self, text: str, lang: str | None, slots: frozenset[str] | None = None) -> Query:
        """``text`` as a query for a reader of ``lang``; ``slots``, if given, are the language
        slots that have articles (:meth:`kb.search_reader.SearcherCache.live_slots`)."""
        boosts = field_boosts(lang)
        if slots is not None:
            # Only the language slots that have articles: a word looked up in a field with
            # no documents matches nothing and counts for nothing in the score (Whoosh makes
            # it a NullMatcher), so leaving those fields out changes no result and saves
            # analysing the query for them and a lexicon lookup per word and field.
            boosts = {f: b for f, b in boosts.items() if f.rpartition("_")[2] in slots}
        key = tuple(boosts.items())
        parser = self._parsers.get(key)
        if parser is None:
            parser = self._make_parser(boosts)
            self._parsers[key] = parser
        try:
            q = parser.parse(text)
            if q is not NullQuery and _has_terms(q):
                return q
        except Exception:  # any parser failure means "treat it as plain words"
            log.debug("query %r did not parse; using plain terms", text, exc_info=True)
        return self.plain_query(text, boosts)

    def plain_query(self, text: str, boosts: dict[str, float]) -> Query:
        """The words of ``text`` (no query syntax) ORed over the fields of ``boosts``."""
        clauses: list[Query] = []
        for fieldname, boost in boosts.items():
            analyzer = self.schema[fieldname].analyzer
            seen: set[str] = set()
            for token in analyzer(text):
                if token.text not in seen:
                    seen.add(token.text)
                    clauses.append(Term(fieldname, token.text, boost=boost))
        return Or(clauses) if clauses else NullQuery

    def _make_parser(self, boosts: dict[str, float]) -> MultifieldParser:
        parser = MultifieldParser(
            list(boosts), self.schema, fieldboosts=boosts, group=OrGroup.factory(0.9)
        )
        # Customers type prose, not query syntax: no field targeting (it would also reach
        # "visibility:" and friends), no wildcards or ranges (slow, and `*` matches
        # everything), no `*:*`. Quotes (phrases), parentheses, AND and OR stay. NOT is
        # dropped because "can NOT log in" would exclude "log".
        for cls in (
            qplugins.FieldsPlugin,
            qplugins.WildcardPlugin,
            qplugins.RangePlugin,
            qplugins.EveryPlugin,
            qplugins.OperatorsPlugin,
        ):
            parser.remove_plugin_class(cls)
        parser.add_plugin(qplugins.OperatorsPlugin(Not=None, AndNot=None, AndMaybe=None))
        return parser


def _has_terms(q: Query) -> bool:
    return any(True for _ in q.iter_all_terms())


def flat_terms(q: Query) -> list[kb_bm25.Leaf] | None:
    """``q`` as the terms of a flat OR (what plain words parse to), else None (phrases,
    AND, nested groups: Whoosh scores those itself)."""
    if type(q) is Term:
        return [kb_bm25.Leaf(q.fieldname, q.text, q.boost)]
    # Whoosh preloads (and scores differently) an OR of TOO_MANY_CLAUSES or more; such
    # queries are rare enough to leave to it.
    if (
        type(q) is Or
        and q.boost == 1.0
        and not q.minmatch
        and len(q.subqueries) < Or.TOO_MANY_CLAUSES
    ):
        leaves = []
        for sub in q.subqueries:
            if type(sub) is not Term or sub.minquality:
                return None
            leaves.append(kb_bm25.Leaf(sub.fieldname, sub.text, sub.boost))
        return leaves
    return None


def query_terms(q: Query) -> dict[str, frozenset[str]]:
    """Analysed query terms per language slot (title and body), for highlighting."""
    per_slot: dict[str, set[str]] = {slot: set() for slot in LANG_SLOTS}
    with suppress(Exception):
        for fieldname, text in q.iter_all_terms():
            kind, _, slot = str(fieldname).partition("_")
            if kind in ("title", "body") and slot in per_slot:
                per_slot[slot].add(text if isinstance(text, str) else text.decode("utf-8"))
    return {slot: frozenset(terms) for slot, terms in per_slot.items()}
