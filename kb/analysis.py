"""Language-aware text analysis for the knowledge-base search index.

Three analyzers, chosen by an article's language:

* ``en``: Unicode tokenizer, lowercase, English stopwords, Porter2 (Snowball English)
  stemming; Whoosh's older Porter port mis-handles doubled consonants ("resetting" ->
  "resett" while "reset" -> "reset").
* ``bn``: Unicode tokenizer, lowercase, Bengali (+ English) stopwords, a light Bengali suffix
  stemmer for Bengali-script words and Porter2 for Latin words (Bengali articles are full of
  English product words: "bKash", "OTP", "app").
* anything else (the "multilingual" analyzer): Unicode tokenizer and lowercase only, so an
  unknown script is at least indexed as whole words.

Why a tokenizer of our own: Whoosh's default ``RegexTokenizer`` uses Python ``re``'s ``\\w``,
which does not match combining marks (Bengali vowel signs, virama, Devanagari matras, Thai
tone marks), so ``গ্রাহক`` was indexed as ``গ`` + ``র`` + ``হক``. The ``regex`` module's Unicode
properties keep letters, marks, digits, connector punctuation and ZWJ/ZWNJ together.

Text is NFC-normalised token by token inside the tokenizer, at index and at query time, so a
word typed with decomposed vowel signs (``ে`` + ``া``) matches the composed ``ো``. Doing it per
token, not on the whole string first, keeps ``startchar``/``endchar`` pointing into the text as
given, which is what Whoosh's highlighter slices.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from functools import cache
from typing import Any

import regex
import stopwordsiso
from whoosh.analysis import (
    STOP_WORDS,
    Analyzer,
    LowercaseFilter,
    StemFilter,
    StopFilter,
    Token,
    Tokenizer,
)
from whoosh.lang.porter2 import stem as english_stem

__all__ = [
    "ANALYZER_VERSION",
    "BENGALI_INTERROGATIVES",
    "ENGLISH_STOPWORDS",
    "SUPPORTED_LANGUAGES",
    "WORD_RE",
    "UnicodeWordTokenizer",
    "analyzer_for",
    "bengali_stem",
    "bengali_stopwords",
    "normalize",
    "primary_language",
    "tokenize",
]

#: Raise whenever an analyzer changes the terms a text becomes (stemming rules, stopwords,
#: normalisation). The KB index records the version it was written with and the worker rebuilds
#: an index written with another one (kb.search_store, kb.indexer.index_pending); an index
#: without a record is version 1. 2: the postposition -সহ is stripped, Bengali interrogatives
#: are stopwords (2026-12-07, issue 13 item 24). The ticket search uses the Bengali analyzer too:
#: after a change, run ``helpdesk tickets reindex`` (docs/architecture.md, "Ticket search").
ANALYZER_VERSION = 2

#: Languages with a dedicated analyzer; every other language gets the multilingual one.
SUPPORTED_LANGUAGES: frozenset[str] = frozenset({"en", "bn"})

# Letters, combining marks (matras, virama, nukta, accents), digits, connector punctuation,
# and the zero-width (non-)joiners Bengali uses inside words (e.g. র‍্যাব).
WORD_RE = regex.compile(r"[\p{L}\p{M}\p{N}\p{Pc}\u200c\u200d]+")


def normalize(text: str) -> str:
    """NFC-normalise ``text`` (the one normal form used everywhere in the index)."""
    return unicodedata.normalize("NFC", text)


def primary_language(lang: str | None) -> str:
    """``"bn-BD"`` / ``"bn_BD"`` / ``"BN"`` -> ``"bn"``; empty/None -> ``""``."""
    if not lang:
        return ""
    return lang.replace("_", "-").split("-", 1)[0].strip().lower()


class UnicodeWordTokenizer(Tokenizer):
    """Yields whole words of any script, NFC-normalised, with offsets into the original text.

    Same call signature and token protocol as Whoosh's ``RegexTokenizer`` (a single reused
    ``Token`` object, positions and chars on request). The pattern lives at module level so
    the tokenizer pickles into Whoosh's schema as just its class name.
    """

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        # Most text is already NFC (we store normalised text); skip the per-token work then.
        needs_nfc = not unicodedata.is_normalized("NFC", value)
        if not tokenize:
            t.original = t.text = normalize(value) if needs_nfc else value
            t.boost = 1.0
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar = start_char
                t.endchar = start_char + len(value)
            yield t
            return
        for pos, match in enumerate(WORD_RE.finditer(value)):
            word = match.group(0)
            t.text = normalize(word) if needs_nfc else word
            t.boost = 1.0
            if keeporiginal:
                t.original = t.text
            t.stopped = False
            if positions:
                t.pos = start_pos + pos
            if chars:
                t.startchar = start_char + match.start()
                t.endchar = start_char + match.end()
            yield t


# --- Bengali stemming --------------------------------------------------------------------

_VIRAMA = "\u09cd"
_NUKTA = "\u09bc"
_ZW_JOINERS = "\u200c\u200d"
_BENGALI_RE = regex.compile(r"\p{Bengali}")
_GRAPHEME_RE = regex.compile(r"\X")


def _is_consonant(ch: str) -> bool:
    # ক..হ, the nukta letters (NFC keeps ড় ঢ় য় decomposed: base + nukta), khanda ta ৎ.
    return "\u0995" <= ch <= "\u09b9" or ch in "\u09dc\u09dd\u09df\u09ce" or ch == _NUKTA


def _is_vowel_end(ch: str) -> bool:
    # Vowel signs া..ৌ, au length mark, independent vowels অ..ঔ, chandrabindu (nasalised vowel).
    return "\u09be" <= ch <= "\u09cc" or ch in "\u09d7\u0981" or "\u0985" <= ch <= "\u0994"


# A suffix is only stripped in the phonological context where Bengali actually attaches it:
# case endings differ for consonant-final and vowel-final nouns (অর্ডার-এর vs ছবি-র), and that
# rule alone keeps most native words whose ending merely looks like a suffix intact.
_ANY = "any"
_AFTER_CONSONANT = "consonant"  # stem ends in a consonant: -ের, -ে, -েরা
_AFTER_VOWEL = "vowel"  # stem ends in any vowel: -তে, -এ
_AFTER_VOWEL_NOT_AA = "vowel-not-aa"  # -র, -রা: not after া, see below
_AFTER_AA_O = "aa-o"  # -য় (locative): ঢাকা-য়, but not উপায়
_ACCUSATIVE = "accusative"  # -কে, see below

# After া, -র/-রা are usually part of the word (অর্ডার, কম্পিউটার, দরকার, চেহারা, ধারা):
# stripping them would split অর্ডার -> অর্ডা while অর্ডারের -> অর্ডার. We accept the miss on
# genitive টাকার instead. -টার is left out for the same reason (রাউটার, কম্পিউটার).
_VOWELS_NOT_AA = "িীুূৃেৈোৌ"
# -কে after a short vowel sign or anusvara is almost always locative -ে on a ক-final noun
# (লিংকে, ক্লিকে, ফেসবুকে), so only strip the whole -কে after consonants and long vowels.
_ACCUSATIVE_OK_SIGNS = "াীূেৈোৌ"

_SUFFIX_RULES: tuple[tuple[str, str], ...] = (
    # classifiers and plural markers, alone and with a case ending
    ("গুলোকে", _ANY),
    ("গুলিকে", _ANY),
    ("গুলোতে", _ANY),
    ("গুলিতে", _ANY),
    ("গুলোর", _ANY),
    ("গুলির", _ANY),
    ("গুলো", _ANY),
    ("গুলি", _ANY),
    ("দেরকে", _ANY),
    ("দের", _ANY),
    ("টিকে", _ANY),
    ("টাকে", _ANY),
    ("টিতে", _ANY),
    ("টাতে", _ANY),
    ("টির", _ANY),
    ("টি", _ANY),
    ("টা", _ANY),
    # the postposition সহ ("with", "including") written joined to its noun: ভ্যাটসহ, নম্বরসহ
    ("সহ", _ANY),
    # case endings and plural -রা
    ("েরা", _AFTER_CONSONANT),
    ("ের", _AFTER_CONSONANT),
    ("এর", _ANY),
    ("কে", _ACCUSATIVE),
    ("তে", _AFTER_VOWEL),
    ("রা", _AFTER_VOWEL_NOT_AA),
    ("য়", _AFTER_AA_O),
    ("ে", _AFTER_CONSONANT),
    ("এ", _AFTER_VOWEL),
    ("র", _AFTER_VOWEL_NOT_AA),
)

# NFC once, so a rule written with precomposed য় (U+09DF) still matches normalised words,
# then longest first so -গুলোর wins over -র.
_SUFFIXES: tuple[tuple[str, str], ...] = tuple(
    sorted(((normalize(s), ctx) for s, ctx in _SUFFIX_RULES), key=lambda r: -len(r[0]))
)

# Common words whose own ending is a suffix in context; never stemmed (Snowball-style
# exception list). Inflected forms (উপায়ে) still reduce to these through -ে.
_PROTECTED: frozenset[str] = frozenset(
    normalize(w) for w in ("উপায়", "পর্যায়", "অধ্যায়", "সহায়", "বিদায়", "অন্যায়", "সম্প্রদায়")
)

_MIN_STEM_GRAPHEMES = 2


def _context_ok(stem: str, context: str) -> bool:
    last = stem[-1]
    if context == _ANY:
        return True
    if context == _AFTER_CONSONANT:
        return _is_consonant(last)
    if context == _AFTER_VOWEL:
        return _is_vowel_end(last)
    if context == _AFTER_VOWEL_NOT_AA:
        return last in _VOWELS_NOT_AA or "\u0985" <= last <= "\u0994"
    if context == _AFTER_AA_O:
        return last in "াো"
    if context == _ACCUSATIVE:
        return _is_consonant(last) or last in _ACCUSATIVE_OK_SIGNS or "\u0985" <= last <= "\u0994"
    raise ValueError(context)


def _valid_stem(stem: str) -> bool:
    # Grapheme clusters, not code points: কা is one letter to a reader, and a conjunct like
    # ত্রু is one cluster, so ত্রুটি / কাটা / ছুটি are never cut down to a single letter.
    if not stem or stem[-1] == _VIRAMA or stem[-1] in _ZW_JOINERS:
        # A trailing virama means we cut through a conjunct (ঘণ্টা -> ঘণ্).
        return False
    return len(_GRAPHEME_RE.findall(stem)) >= _MIN_STEM_GRAPHEMES


@cache
def _bengali_stem_nfc(word: str) -> str:
    if word in _PROTECTED or not _BENGALI_RE.search(word):
        return word
    for suffix, context in _SUFFIXES:
        if len(word) > len(suffix) and word.endswith(suffix):
            stem = word[: -len(suffix)]
            if _valid_stem(stem) and _context_ok(stem, context):
                return stem
    return word


def bengali_stem(word: str) -> str:
    """Strip one inflectional suffix or classifier from a Bengali word, conservatively.

    ``পাসওয়ার্ডটি``, ``পাসওয়ার্ডের``, ``পাসওয়ার্ডে`` -> ``পাসওয়ার্ড``. One pass, longest
    suffix first; compound endings (``-টির``, ``-গুলোকে``) are listed whole. A suffix is only
    removed where Bengali attaches it (after a consonant or a vowel), and never so that fewer
    than two grapheme clusters or a dangling virama remain. Non-Bengali words pass through.
    """
    return _bengali_stem_nfc(normalize(word))


def _bn_or_latin_stem(word: str) -> str:
    # Bengali articles mix scripts; a Latin word in them is English more often than not.
    if _BENGALI_RE.search(word):
        return _bengali_stem_nfc(word)
    if word.isascii() and word.isalpha():
        return str(english_stem(word))
    return word


# --- analyzers -----------------------------------------------------------------------------


ENGLISH_STOPWORDS: frozenset[str] = frozenset(STOP_WORDS)


#: Interrogatives missing from stopwords-iso's list, which has the others (কী, কি, কেন, কবে, কত,
#: কোন, কে) and ভাবে but not কীভাবে: questions are what customers type into the KB search, and
#: "how" or "where" says nothing about which article answers them (they matched any article
#: that happened to say "how to" in Bengali). Both spellings of "how" are common.
BENGALI_INTERROGATIVES: frozenset[str] = frozenset(
    normalize(w) for w in ("কীভাবে", "কিভাবে", "কোথায়", "কোথা", "কখন", "কেমন", "কেমনে")
)


@cache
def bengali_stopwords() -> frozenset[str]:
    """Bengali stopwords (stopwords-iso, and :data:`BENGALI_INTERROGATIVES`), NFC-normalised."""
    # The stopwords-iso list mixes precomposed and decomposed য়; normalise like the tokens.
    return frozenset(normalize(w) for w in stopwordsiso.stopwords("bn")) | BENGALI_INTERROGATIVES


def analyzer_for(lang: str | None) -> Analyzer:
    """The analyzer for an article or query language (``en``, ``bn``, else multilingual)."""
    code = primary_language(lang)
    return _build_analyzer(code if code in SUPPORTED_LANGUAGES else "")


@cache
def _build_analyzer(code: str) -> Analyzer:
    # Cached per analyzer kind (not per raw language string, which callers control):
    # analyzers are stateless apart from the stemmers' LRU caches, so one instance is shared.
    if code == "en":
        return (
            UnicodeWordTokenizer()
            | LowercaseFilter()
            | StopFilter(stoplist=ENGLISH_STOPWORDS)
            | StemFilter(stemfn=english_stem)
        )
    if code == "bn":
        # minsize=1: single-letter Bengali words (ও, এ) are handled by the stoplist, and a
        # one-letter size cut-off would also drop meaningful ones.
        return (
            UnicodeWordTokenizer()
            | LowercaseFilter()
            | StopFilter(stoplist=bengali_stopwords() | ENGLISH_STOPWORDS, minsize=1)
            | StemFilter(stemfn=_bn_or_latin_stem)
        )
    return UnicodeWordTokenizer() | LowercaseFilter()


def tokenize(text: str, lang: str | None) -> list[str]:
    """The terms ``text`` is indexed as in language ``lang`` (stopwords removed, stemmed)."""
    return [t.text for t in analyzer_for(lang)(text)]
