"""Invariants of parsing and matching, checked on generated queries and documents."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.evaluate import DocTerms, Evaluator
from monitor.match import compile_watchlists, explain
from monitor.models import Document
from monitor.query import Query, QuerySyntaxError, parse_query
from monitor.textindex import WORD, fold_word, index_text, split_words
from monitor.watchlist import Watchlist

# a small vocabulary, so that generated queries and documents often share words, in every case
WORDS = [
    "Met",
    "met",
    "MET",
    "police",
    "Police",
    "officers",
    "Gala",
    "gala",
    "IOPC",
    "café",
    "Cafe",
]
SEPARATORS = [" ", " ", " ", "-", ", ", "'s ", ". ", "\n", "’"]

words = st.sampled_from(WORDS)


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(words, st.sampled_from(SEPARATORS)), max_size=16))
    return "".join(w + sep for w, sep in parts)


documents = st.builds(Document, title=texts(), text=texts())


def term() -> st.SearchStrategy[str]:
    return st.one_of(
        words,
        words.map(lambda w: w[:2] + "*"),
        st.tuples(words, words).map(lambda p: f'"{p[0]} {p[1]}"'),
        words.map(lambda w: f"title:{w}"),
    )


def side() -> st.SearchStrategy[str]:
    return st.one_of(term(), st.lists(term(), min_size=2, max_size=3).map(_or_group))


def _or_group(parts: list[str]) -> str:
    return "(" + " OR ".join(parts) + ")"


query_texts = st.recursive(
    st.one_of(
        term(),
        st.tuples(side(), st.integers(1, 6), side()).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}"),
    ),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} AND NOT {p[1]})"),
    ),
    max_leaves=6,
)


def query(text: str) -> Query:
    try:
        return parse_query(text)
    except QuerySyntaxError:
        assume(False)
        raise


def matches(q: Query, doc: Document, ignore: tuple[str, ...] = ()) -> bool:
    w = Watchlist("p", Path("p.toml"), match=(q,), ignore=tuple(parse_query(i) for i in ignore))
    return explain(w, doc).hit


def brute_force(q: Query, doc: Document) -> bool:
    """Evaluate with no term index at all: what the index must never disagree with."""
    return Evaluator(DocTerms(index_text(doc.title, doc.text))).test(q.root)


PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(st.text(max_size=80))
def test_parse_never_crashes(text: str) -> None:
    try:
        q = parse_query(text)
    except QuerySyntaxError as exc:
        assert 0 <= exc.offset <= len(text)
        assert exc.message
    else:
        assert q.source == text


@PROPERTY
@given(
    st.lists(
        st.sampled_from(
            [
                *WORDS,
                " ",
                "(",
                ")",
                '"',
                "*",
                "title:",
                "AND",
                "OR",
                "NOT",
                "NEAR",
                "NEAR/3",
                "NEAR/0",
            ]
        ),
        max_size=12,
    )
)
def test_parse_never_crashes_on_query_like_text(parts: list[str]) -> None:
    text = " ".join(parts)
    try:
        parse_query(text)
    except QuerySyntaxError as exc:
        assert 0 <= exc.offset <= len(text)


@PROPERTY
@given(query_texts, query_texts, documents)
def test_adding_an_or_branch_never_loses_a_hit(a: str, b: str, doc: Document) -> None:
    if matches(query(a), doc):
        assert matches(query(f"({a}) OR ({b})"), doc)


@PROPERTY
@given(query_texts, query_texts, documents)
def test_adding_a_match_query_never_loses_a_hit(a: str, b: str, doc: Document) -> None:
    one = Watchlist("p", Path("p.toml"), match=(query(a),))
    two = Watchlist("p", Path("p.toml"), match=(query(a), query(b)))
    if explain(one, doc).hit:
        assert explain(two, doc).hit


@st.composite
def query_and_ignore(draw: st.DrawFn) -> tuple[str, str]:
    """A query and an ignore phrase; often the phrase is what the query's NOT looks for."""
    base = draw(query_texts)
    phrase = draw(st.lists(words, min_size=1, max_size=2).map(" ".join))
    if draw(st.booleans()):
        negated = draw(st.one_of(st.just(phrase), words))
        return f'({base}) AND NOT "{negated}"', f'"{phrase}"'
    return base, f'"{phrase}"'


@PROPERTY
@given(query_and_ignore(), documents)
def test_adding_an_ignore_phrase_never_adds_a_hit(pair: tuple[str, str], doc: Document) -> None:
    a, phrase = pair
    q = query(a)
    if matches(q, doc, ignore=(phrase,)):
        assert matches(q, doc)


@PROPERTY
@given(query_texts, query_texts, documents)
def test_and_is_both(a: str, b: str, doc: Document) -> None:
    both = matches(query(f"({a}) AND ({b})"), doc)
    assert both == (matches(query(a), doc) and matches(query(b), doc))


@PROPERTY
@given(st.lists(query_texts, min_size=1, max_size=8), documents)
def test_term_index_agrees_with_evaluating_every_query(texts_: list[str], doc: Document) -> None:
    queries = [query(t) for t in texts_]
    matcher = compile_watchlists(
        [Watchlist(f"w{i}", Path(f"w{i}.toml"), match=(q,)) for i, q in enumerate(queries)]
    )
    found = {r.watchlist for r in matcher.match(doc)}
    expected = {f"w{i}" for i, q in enumerate(queries) if brute_force(q, doc)}
    assert found == expected


@PROPERTY
@given(query_texts, documents)
def test_every_hit_has_a_snippet_whose_marks_are_words_of_the_document(
    a: str, doc: Document
) -> None:
    w = Watchlist("p", Path("p.toml"), match=(query(a),))
    result = explain(w, doc)
    if result.hit:
        snippet = result.snippet
        assert snippet is not None and snippet.marks
        for start, end in snippet.marks:
            marked = snippet.text[start:end]
            assert marked and marked in doc.title + " " + doc.text
        assert len(snippet.text.split()) <= 45


# every kind of character a news page may hold, in runs that make words and non-words
CHARACTERS = st.sampled_from(
    list("abcXYZ019 _-'.,\n\t\x00")
    + list("’‘“”—–…«»£€°\u00a0\u200b\u202e\u02bc")
    + list("éÉßİıﬁ½²ⅫΩ文字हिन्दी\u0301\u0308\U0001d7d8\U0001f46e")
)
messy_text = st.lists(CHARACTERS, max_size=60).map("".join)


@PROPERTY
@given(messy_text)
def test_fast_word_splitting_agrees_with_the_word_pattern(text: str) -> None:
    normal = unicodedata.normalize("NFC", text)
    assert split_words(normal) == WORD.findall(normal)


@pytest.mark.parametrize(
    "text",
    [
        "a\u202eb police👮officer",  # symbols and formatting characters between letters
        "Café\u2028Straße ½ Ⅻ x²",  # a line separator; numbers that are letters or digits
        "naïve e\u0301 q\u0303",  # combining marks take the slow path
        "snake_case M&S 24/7 U.K",
        "the Met\u02bcs officers, Khan\u02bcs office",  # the modifier letter apostrophe
        "cafe\u0301\u02bcs",  # the same, on the slow path
    ],
)
def test_word_splitting_agrees_with_the_word_pattern_on_odd_characters(text: str) -> None:
    normal = unicodedata.normalize("NFC", text)
    assert split_words(normal) == WORD.findall(normal)


@PROPERTY
@given(messy_text, messy_text)
def test_folded_tokens_are_the_folded_words(title: str, text: str) -> None:
    index = index_text(title, text)
    assert index.folded_tokens == [fold_word(w) for w in index.tokens]
    assert index.folded_vocab == {fold_word(w) for w in index.vocab}


@PROPERTY
@given(messy_text, st.sampled_from(["a", "ab", "é", "x", "文", "e\u0301"]))
def test_prefix_lookups_agree_with_a_scan(text: str, prefix: str) -> None:
    index = index_text("", text)
    for folded in (False, True):
        expected = sorted(w for w in index.words(folded) if w.startswith(prefix))
        assert sorted(index.words_with_prefix(prefix, folded)) == expected
        assert index.has_prefix(prefix, folded) == bool(expected)


@PROPERTY
@given(messy_text, messy_text, st.sampled_from(["a", "ab", "é", "x", "文", "e\u0301", "ss", "i"]))
def test_prefix_spellings_agree_with_a_scan(title: str, text: str, prefix: str) -> None:
    index = index_text(title, text)
    for folded in (False, True):
        expected = sorted(
            w for w in index.vocab if (fold_word(w) if folded else w).startswith(prefix)
        )
        assert sorted(index.spellings_with_prefix(prefix, folded)) == expected


CASINGS = ["met", "Met", "MET", "mEt", "McDonald", "mcdonald", "Mcdonald", "café", "Café"]
CASINGS += ["CAFÉ", "cafe", "2023", "x2", "X2", "straße", "STRASSE", "İstanbul", "istanbul"]


@PROPERTY
@given(st.lists(st.sampled_from(CASINGS), max_size=30), st.sampled_from(CASINGS))
def test_folded_positions_are_every_spelling(words: list[str], query: str) -> None:
    index = index_text(" ".join(words[:3]), " ".join(words[3:]))
    key = fold_word(query)
    expected = [i for i, t in enumerate(index.tokens) if fold_word(t) == key]
    assert index.positions(key, True) == expected
    assert index.positions(query, False) == [i for i, t in enumerate(index.tokens) if t == query]
