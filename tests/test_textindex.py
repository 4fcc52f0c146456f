"""The text index's tables: the combining marks it ships agree with this Python's Unicode."""

from __future__ import annotations

import re
import unicodedata

import pytest

from monitor import textindex, unimarks
from monitor.textindex import LETTER, is_word_char


@pytest.mark.skipif(
    unicodedata.unidata_version != unimarks.UNIDATA_VERSION,
    reason="the shipped table is for another Unicode version; textindex scans afresh",
)
def test_the_shipped_mark_runs_are_this_unicode_s_combining_marks() -> None:
    assert textindex.scan_mark_runs() == unimarks.MARK_RUNS


def test_a_word_runs_on_through_combining_marks_and_stops_at_punctuation() -> None:
    decomposed = unicodedata.normalize("NFD", "Café")  # e + U+0301
    assert textindex.WORD.findall(f"{decomposed}’s Met-Police") == [
        decomposed,
        "s",
        "Met",
        "Police",
    ]


@pytest.mark.skipif(
    unicodedata.unidata_version != unimarks.UNIDATA_VERSION,
    reason="the shipped table is for another Unicode version; textindex scans afresh",
)
def test_the_mark_class_holds_each_run_and_nothing_beside_it() -> None:
    mark = textindex._MARK
    for first, last in unimarks.MARK_RUNS:
        assert mark.fullmatch(chr(first) + chr((first + last) // 2) + chr(last)), hex(first)
        for outside in (first - 1, last + 1):
            if not unicodedata.category(chr(outside)).startswith("M"):
                assert not mark.match(chr(outside)), hex(outside)
    assert not mark.match("]") and not mark.match("-") and not mark.match("a")


def test_ascii_and_news_punctuation_are_their_own_nfc_form() -> None:
    # index_text does not normalise a text made of these alone. None of them decomposes or
    # is a combining mark, so the only change NFC could make is to compose two neighbours.
    chars = [chr(c) for c in range(128)] + list(textindex._NEWS_PUNCTUATION)
    for a in chars:
        assert unicodedata.normalize("NFD", a) == a and not unicodedata.combining(a), hex(ord(a))
        for b in chars:
            assert unicodedata.is_normalized("NFC", a + b), (hex(ord(a)), hex(ord(b)))


@pytest.mark.parametrize(
    "text",
    [
        "Café Khan’s “Met” — £5 é",  # decomposed accents among news punctuation
        "Ω ohm Ω Å Å",  # singletons NFC replaces
        "Met’s “police” — 10 km… «IOPC»",  # news punctuation alone
        "Мет полиция 2024 ΜΕΤ",  # Cyrillic and Greek letters
        "Metro­politan ⁠Police﻿",  # invisible characters inside words
    ],
)
def test_index_reads_the_nfc_text(text: str) -> None:
    index = textindex.index_text(text, text)
    normal = unicodedata.normalize("NFC", textindex._visible(text))
    assert index.title == index.text == normal
    words = textindex.WORD.findall(normal)
    assert index.tokens == [*words, textindex.SEPARATOR, *words]


def test_the_word_character_test_is_the_letter_class() -> None:
    # the snippet's whole-word search and the tokenizer must agree, or it searches for ever
    letter = re.compile(LETTER)
    for code in (*range(0x3000), 0x1D7D8, 0x1F46E):
        c = chr(code)
        assert is_word_char(c) == bool(letter.fullmatch(c)), hex(code)
