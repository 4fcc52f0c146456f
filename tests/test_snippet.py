"""Snippets: the window shows an actual match, and only words that take part in it are marked."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.match import explain
from monitor.models import Document, Snippet
from monitor.query import parse_query
from monitor.snippet import window_spans
from monitor.textindex import index_text, word_spans
from monitor.watchlist import Watchlist

VETTING = "vetting NEAR/15 (police OR officer* OR recruit* OR Met OR force)"


def snippet_of(
    match: list[str], text: str, title: str = "", ignore: tuple[str, ...] = ()
) -> Snippet:
    watchlist = Watchlist(
        "test",
        Path("test.toml"),
        match=tuple(parse_query(q) for q in match),
        ignore=tuple(parse_query(q) for q in ignore),
    )
    result = explain(watchlist, Document(title, text))
    assert result.hit and result.snippet is not None
    return result.snippet


def marked_words(snippet: Snippet) -> list[str]:
    return [snippet.text[a:b] for a, b in snippet.marks]


def filler(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


def marks_by_word_index(snippet: Snippet) -> list[tuple[int, str]]:
    """(index of the word in the snippet, word) of every mark."""
    starts = [m.start() for m in re.finditer(r"[^\W_]+", snippet.text)]
    return [(starts.index(a), snippet.text[a:b]) for a, b in snippet.marks]


# -- the window holds a whole match ----------------------------------------------------------


def test_a_near_pair_is_shown_whole_rather_than_a_denser_passage_that_cuts_it() -> None:
    # vetting (0) and police (15) are a pair; three IOPCs 35-39 words after the police would
    # fit one window with the police but not with the vetting
    text = " ".join(["vetting", filler("a", 14), "police", filler("b", 34), "IOPC IOPC IOPC"])
    text += " " + filler("c", 60)
    snippet = snippet_of([VETTING, "IOPC"], text)
    words = marked_words(snippet)
    assert "vetting" in words and "police" in words, snippet.marked()


def test_a_phrase_is_preferred_to_more_single_words() -> None:
    text = " ".join(["police police police", filler("a", 60), "at Scotland Yard today"])
    snippet = snippet_of(['"Scotland Yard"', "police"], text + " " + filler("z", 60))
    assert "[Scotland Yard]" in snippet.marked(), snippet.marked()


def test_the_text_is_preferred_to_the_title() -> None:
    snippet = snippet_of(['"Scotland Yard"', "IOPC"], "The IOPC said so.", title="Scotland Yard")
    assert snippet.marked() == "The [IOPC] said so."


def test_the_earliest_of_equal_matches_wins() -> None:
    text = " ".join(["IOPC", filler("a", 60), "IOPC", filler("b", 60)])
    snippet = snippet_of(["IOPC"], text)
    assert snippet.text.startswith("IOPC a0")


def test_more_of_the_matched_queries_beat_more_marks_of_one() -> None:
    text = " ".join(["IOPC IOPC IOPC", filler("a", 60), "IOPC and Casey", filler("b", 60)])
    snippet = snippet_of(["IOPC", "Casey"], text)
    assert "[IOPC] and [Casey]" in snippet.marked()


# -- only real matches are marked ------------------------------------------------------------


def test_near_group_words_are_marked_only_beside_their_partner() -> None:
    # police (0) pairs with vetting (14); recruits (35) pairs only with the vetting at 48,
    # outside the window: in view it is no match, so it is not marked
    parts = ["police", filler("a", 13), "vetting", filler("b", 20), "recruits"]
    text = " ".join([*parts, filler("c", 12), "vetting", filler("d", 40)])
    snippet = snippet_of([VETTING], text)
    assert marked_words(snippet) == ["police", "vetting"], snippet.marked()


def test_group_words_far_from_any_vetting_are_not_marked() -> None:
    text = (
        "Vetting of new officers was tightened last year after the review. "
        + filler("x", 30)
        + " London police said the force would recruit more, and recruits said so. "
        + filler("y", 40)
    )
    snippet = snippet_of([VETTING], text)
    marks = marks_by_word_index(snippet)
    vetting = [i for i, w in marks if w.lower() == "vetting"]
    assert vetting, snippet.marked()
    for i, word in marks:
        assert any(abs(i - v) <= 15 for v in vetting), f"{word} marked far from vetting"
    assert "London" not in marked_words(snippet)


def test_masked_words_are_never_marked() -> None:
    text = "The Met Office said police closed roads. Later the Met said two police officers"
    snippet = snippet_of(["Met NEAR/3 (police OR Office)"], text, ignore=('"Met Office"',))
    assert "Office" not in marked_words(snippet)
    assert snippet.marked().count("[Met]") == 1, snippet.marked()
    assert "the [Met] said two [police]" in snippet.marked()


def test_terms_under_not_and_branches_that_did_not_match_are_never_marked() -> None:
    text = "IOPC report on the Met and the Gala; vetting x x x x x x police"
    snippet = snippet_of(["IOPC AND (Met OR NOT Gala) AND ((vetting NEAR/3 police) OR IOPC)"], text)
    assert marked_words(snippet) == ["IOPC", "Met"], snippet.marked()


def test_a_pair_too_far_apart_for_the_window_still_shows_one_side() -> None:
    text = " ".join(["vetting", filler("a", 80), "police", filler("b", 80)])
    snippet = snippet_of(["vetting NEAR/100 police"], text)
    assert marked_words(snippet) in (["vetting"], ["police"])


# -- properties --------------------------------------------------------------------------------

# mostly filler, so that matches are scattered and some fall across a window's edge
WORDS = ["vetting", "police", "officers", "force", "Met", "IOPC", *["x"] * 14]
PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=160),
    st.integers(1, 12),
    st.sampled_from(["Met", "vetting", "IOPC"]),
)
def test_every_marked_near_word_has_its_partner_marked_within_n(
    words: list[str], n: int, anchor: str
) -> None:
    query = f"{anchor} NEAR/{n} (police OR officer* OR force)"
    watchlist = Watchlist("p", Path("p.toml"), match=(parse_query(query),))
    result = explain(watchlist, Document("", " ".join(words)))
    if not result.hit:
        return
    assert result.snippet is not None
    marks = marks_by_word_index(result.snippet)
    assert marks
    anchors = [i for i, w in marks if w == anchor]
    others = [i for i, w in marks if w != anchor]
    for i in others:
        assert any(abs(i - a) <= n for a in anchors)
    for a in anchors:
        assert any(abs(i - a) <= n for i in others)


def test_window_offsets_skip_letters_inside_longer_words() -> None:
    index = index_text("", "ab, a; a-ab. ba a")
    for word in ("a", "ab"):
        index.positions(word, False)
    expected = word_spans(index.text, index.tokens[1:])
    for start in range(len(expected)):
        for hint in range(start + 1, len(expected) + 1):
            got = window_spans(index, False, start, len(expected), hint)
            assert got == expected[start:], (start, hint)


MESSY = st.lists(
    st.sampled_from(list("abcXYZ019 _-'.,\n\t’“”—éßİ文\u0301\U0001f46e\u02bc")), max_size=80
).map("".join)


@PROPERTY
@given(MESSY, MESSY, st.integers(0, 40), st.integers(0, 40), st.booleans())
def test_window_offsets_agree_with_counting_from_the_start(
    title: str, text: str, start: int, width: int, in_title: bool
) -> None:
    index = index_text(title, text)
    total = index.boundary if in_title else len(index.tokens) - index.boundary - 1
    start, stop = min(start, total), min(start + width, total)
    for word in index.tokens[::3]:  # some words located, so windows have anchors
        if word != "\x00":
            index.positions(word, False)
    field = unicodedata.normalize("NFC", title if in_title else text)
    first = 0 if in_title else index.boundary + 1
    expected = word_spans(field, index.tokens[first : first + stop])[start:]
    assert window_spans(index, in_title, start, stop) == expected
    for hint in range(first + start, first + stop):  # anchored on each word in turn
        assert window_spans(index, in_title, start, stop, hint) == expected
