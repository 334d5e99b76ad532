"""Language analyzers: whole words in every script, NFC, and the Bengali stemmer."""

from __future__ import annotations

import pickle
import unicodedata

import pytest
from whoosh.analysis import RegexTokenizer

from kb.analysis import analyzer_for, bengali_stem, normalize, tokenize


def test_default_whoosh_tokenizer_fragments_bengali() -> None:
    # Why kb.analysis exists: Python re's \w misses vowel signs and virama.
    words = [t.text for t in RegexTokenizer()("গ্রাহক সম্পর্ক ব্যবস্থাপনা")]
    assert "গ্রাহক" not in words
    assert len(words) > 3


@pytest.mark.parametrize("lang", ["bn", "en", "", "fr"])
def test_bengali_words_kept_whole(lang: str) -> None:
    assert tokenize("গ্রাহক সম্পর্ক ব্যবস্থাপনা", lang) == ["গ্রাহক", "সম্পর্ক", "ব্যবস্থাপনা"]


def test_zero_width_joiner_stays_inside_word() -> None:
    # র‍্যাব is written with a ZWJ after র; splitting there would make two non-words.
    word = "র\u200d্যাব"
    assert tokenize(word, "") == [word]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # Devanagari matras and virama
        ("مَرْحَبًا بالعالم", ["مَرْحَبًا", "بالعالم"]),  # Arabic with harakat
        ("ภาษาไทย ง่าย", ["ภาษาไทย", "ง่าย"]),  # Thai tone marks and vowels
        ("Café naïve Ærøskøbing", ["café", "naïve", "ærøskøbing"]),
    ],
)
def test_other_scripts_not_fragmented(text: str, expected: list[str]) -> None:
    assert tokenize(text, "mul") == expected


def test_nfc_composed_and_decomposed_index_the_same() -> None:
    composed = "গুলো পাসওয়ার্ড"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    for lang in ("bn", "en", ""):
        assert tokenize(decomposed, lang) == tokenize(composed, lang)
    assert normalize(decomposed) == composed


def test_offsets_point_into_the_original_text() -> None:
    # The highlighter slices the text it was given with startchar/endchar, so offsets must
    # refer to the un-normalised input even though token text is NFC.
    text = "আমি " + unicodedata.normalize("NFD", "গুলো") + " পাই"
    tokens = [
        (t.text, t.startchar, t.endchar) for t in analyzer_for("")(text, chars=True, positions=True)
    ]
    for word, start, end in tokens:
        assert normalize(text[start:end]) == word
    assert [w for w, _, _ in tokens] == ["আমি", "গুলো", "পাই"]


def test_english_stemming_and_stopwords() -> None:
    assert tokenize("Resetting your passwords", "en") == ["reset", "password"]
    # Whoosh's short stoplist: "for" goes, question words stay (BM25's IDF weighs them down).
    assert tokenize("Refunds for deliveries", "en") == ["refund", "deliveri"]


def test_bengali_stopwords_removed_and_english_words_stemmed() -> None:
    terms = tokenize("আমার bKash payments থেকে টাকা ফেরত", "bn")
    assert terms == ["bkash", "payment", "টাকা", "ফেরত"]


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        # classifiers, plurals and case endings come off
        ("পাসওয়ার্ডটি", "পাসওয়ার্ড"),
        ("পাসওয়ার্ডের", "পাসওয়ার্ড"),
        ("পাসওয়ার্ডে", "পাসওয়ার্ড"),
        ("পাসওয়ার্ডগুলো", "পাসওয়ার্ড"),
        ("পাসওয়ার্ডগুলোর", "পাসওয়ার্ড"),
        ("অ্যাকাউন্টটি", "অ্যাকাউন্ট"),
        ("অ্যাপটিতে", "অ্যাপ"),
        ("গ্রাহকদের", "গ্রাহক"),
        ("গ্রাহককে", "গ্রাহক"),
        ("গ্রাহকেরা", "গ্রাহক"),
        ("অর্ডারের", "অর্ডার"),
        ("ফেরতের", "ফেরত"),
        ("ডেলিভারির", "ডেলিভারি"),
        ("বাড়িতে", "বাড়ি"),
        ("ঢাকায়", "ঢাকা"),
        ("কর্মীরা", "কর্মী"),
        ("লিংকে", "লিংক"),  # locative -ে on ক-final noun, not accusative -কে
        ("ক্লিকে", "ক্লিক"),
        ("উপায়ে", "উপায়"),
        ("সময়ে", "সময়"),
        # the postposition সহ ("with") written joined: "a receipt with VAT", "with the number"
        ("ভ্যাটসহ", "ভ্যাট"),
        ("নম্বরসহ", "নম্বর"),
        # must NOT be over-stemmed: the ending is part of the word
        ("পাসওয়ার্ড", "পাসওয়ার্ড"),
        ("অর্ডার", "অর্ডার"),  # -র after া is not genitive here
        ("কম্পিউটার", "কম্পিউটার"),
        ("রাউটার", "রাউটার"),
        ("নম্বর", "নম্বর"),  # -র after a consonant is never the genitive
        ("ঘণ্টা", "ঘণ্টা"),  # -টা would cut the conjunct ণ্ট
        ("ত্রুটি", "ত্রুটি"),  # -টি would leave one grapheme (ত্রু)
        ("কাটা", "কাটা"),
        ("ঘর", "ঘর"),
        ("উপায়", "উপায়"),
        ("ফেরত", "ফেরত"),
        ("টাকা", "টাকা"),
        ("ডেটা", "ডেটা"),
        ("গুলো", "গুলো"),  # a bare suffix is a word of its own
        ("দুঃসহ", "দুঃসহ"),  # "unbearable": -সহ would leave one grapheme
        ("bkash", "bkash"),
    ],
)
def test_bengali_stem(word: str, stem: str) -> None:
    assert bengali_stem(word) == stem


def test_bengali_question_words_are_stopwords() -> None:
    # "how do I get it repaired under guarantee": কীভাবে ("how") matched every article that
    # says "how to" in Bengali; stopwords-iso has কী, কেন, কবে, কত but not these.
    assert tokenize("গ্যারান্টিতে কীভাবে ঠিক করাব", "bn") == ["গ্যারান্টি", "করাব"]
    for word in ("কীভাবে", "কিভাবে", "কোথায়", "কখন", "কেমন"):
        assert tokenize(word, "bn") == [], word


def test_bengali_stem_normalises_input() -> None:
    assert bengali_stem(unicodedata.normalize("NFD", "পাসওয়ার্ডের")) == normalize("পাসওয়ার্ড")


def test_inflected_forms_share_one_term() -> None:
    forms = ["পাসওয়ার্ডটি", "পাসওয়ার্ডের", "পাসওয়ার্ডে", "পাসওয়ার্ড"]
    assert {t for f in forms for t in tokenize(f, "bn")} == {"পাসওয়ার্ড"}


def test_language_codes_are_normalised() -> None:
    assert analyzer_for("bn-BD") is analyzer_for("bn")
    assert analyzer_for("EN_us") is analyzer_for("en")
    assert analyzer_for("hi") is analyzer_for(None)


@pytest.mark.parametrize("lang", ["en", "bn", ""])
def test_analyzers_pickle(lang: str) -> None:
    # Whoosh pickles the schema (with its analyzers) into the index's table of contents.
    clone = pickle.loads(pickle.dumps(analyzer_for(lang)))
    text = "পাসওয়ার্ডটি resetting"
    assert [t.text for t in clone(text)] == tokenize(text, lang)
