"""The query language: what each construct parses to, and every error with its offset."""

from __future__ import annotations

import pytest

from monitor.query import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    And,
    Near,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QuerySyntaxError,
    Word,
    iter_terms,
    parse_query,
)


def root(text: str) -> object:
    return parse_query(text).root


def words_of(text: str) -> list[str]:
    out = []
    for term in iter_terms(parse_query(text).root):
        out.append(" ".join(term.words) if isinstance(term, Phrase) else term.text)
    return out


def test_query_keeps_its_source() -> None:
    query = parse_query("Met NEAR/12 (police OR officer*)")
    assert isinstance(query, Query)
    assert query.source == "Met NEAR/12 (police OR officer*)"
    assert str(query) == query.source


def test_word_smart_case() -> None:
    met = root("Met")
    vetting = root("vetting")
    assert isinstance(met, Word) and met.exact and met.key == "Met"
    assert isinstance(vetting, Word) and not vetting.exact and vetting.key == "vetting"


def test_lowercase_accented_word_folds_for_lookup() -> None:
    cafe = root("café")
    assert isinstance(cafe, Word) and not cafe.exact and cafe.key == "cafe"


def test_phrase_is_exact_when_any_word_has_a_capital() -> None:
    exact = root('"Metropolitan Police"')
    loose = root('"misconduct hearing"')
    assert isinstance(exact, Phrase) and exact.exact and exact.words == ("Metropolitan", "Police")
    assert isinstance(loose, Phrase) and not loose.exact


def test_phrase_ignores_punctuation_inside_quotes() -> None:
    node = root('"Metropolitan-Police, Service"')
    assert isinstance(node, Phrase) and node.words == ("Metropolitan", "Police", "Service")


def test_one_word_in_quotes_is_a_word() -> None:
    node = root('"IOPC"')
    assert isinstance(node, Word) and node.text == "IOPC"


@pytest.mark.parametrize(
    "text",
    ["“Scotland Yard”", "„Scotland Yard“", "”Scotland Yard”", '“Scotland Yard"', '"Scotland Yard”'],
)
def test_curly_quotes_make_a_phrase_whichever_pair_was_typed(text: str) -> None:
    node = root(f"{text} OR IOPC")
    assert isinstance(node, Or)
    phrase, word = node.children
    assert isinstance(phrase, Phrase) and phrase.words == ("Scotland", "Yard")
    assert isinstance(word, Word) and word.text == "IOPC"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Khan's", ("Khan", "s")),
        ("Khan\u02bcs", ("Khan", "s")),
        ("stop-and-search", ("stop", "and", "search")),
        ("M&S", ("M", "S")),
    ],
)
def test_joined_bare_term_is_a_phrase(text: str, words: tuple[str, ...]) -> None:
    node = root(text)
    assert isinstance(node, Phrase) and node.words == words


def test_prefix() -> None:
    node = root("vet*")
    assert isinstance(node, Prefix) and node.key == "vet" and not node.exact
    capital = root("Vet*")
    assert isinstance(capital, Prefix) and capital.exact


def test_implicit_and_equals_explicit_and() -> None:
    implicit, explicit = root("Met police"), root("Met AND police")
    assert isinstance(implicit, And) and isinstance(explicit, And)
    assert [c.text for c in implicit.children] == [c.text for c in explicit.children]  # type: ignore[union-attr]


def test_precedence_and_binds_tighter_than_or() -> None:
    node = root("a b OR c")
    assert isinstance(node, Or)
    assert isinstance(node.children[0], And) and isinstance(node.children[1], Word)


def test_precedence_near_binds_tighter_than_and() -> None:
    node = root("a NEAR b c")
    assert isinstance(node, And)
    assert isinstance(node.children[0], Near) and isinstance(node.children[1], Word)


def test_precedence_not_binds_tighter_than_and() -> None:
    node = root("a NOT b c")
    assert isinstance(node, And) and len(node.children) == 3
    assert isinstance(node.children[1], Not)


def test_parentheses_group() -> None:
    node = root("(a OR b) c")
    assert isinstance(node, And) and isinstance(node.children[0], Or)


def test_same_operator_chains_are_flattened() -> None:
    node = root("a OR (b OR c) OR d")
    assert isinstance(node, Or) and len(node.children) == 4


@pytest.mark.parametrize("op", ["and", "or", "not", "near", "Or", "Near"])
def test_operators_only_in_capitals(op: str) -> None:
    assert words_of(f"police {op} officer") == ["police", op, "officer"]
    assert isinstance(root(f"police {op} officer"), And)


def test_near_default_and_explicit_distance() -> None:
    default, explicit = root("Met NEAR police"), root("Met NEAR/3 police")
    assert isinstance(default, Near) and default.distance == 10
    assert isinstance(explicit, Near) and explicit.distance == 3


def test_near_side_may_be_an_or_group_of_terms() -> None:
    node = root('Met NEAR/12 (police OR "chief constable" OR officer*)')
    assert isinstance(node, Near) and isinstance(node.right, Or)
    assert [type(c) for c in node.right.children] == [Word, Phrase, Prefix]


def test_title_applies_to_its_term_only() -> None:
    node = root("title:Met police")
    assert isinstance(node, And)
    first, second = node.children
    assert isinstance(first, Word) and first.title
    assert isinstance(second, Word) and not second.title


def test_title_applies_to_a_whole_group() -> None:
    terms = list(iter_terms(parse_query('title:(Met OR "Scotland Yard" OR vet*)').root))
    assert len(terms) == 3 and all(t.title for t in terms)


def test_offsets_point_into_the_source() -> None:
    query = parse_query('IOPC OR "Casey review"')
    spans = [query.source[t.start : t.end] for t in iter_terms(query.root)]
    assert spans == ["IOPC", '"Casey review"']


def test_exclude_may_be_pure_not_when_not_positive() -> None:
    node = parse_query("NOT police", positive=False).root
    assert isinstance(node, Not)


@pytest.mark.parametrize(
    ("text", "offset", "fragment"),
    [
        ('Met "Scotland Yard', 4, "unclosed quote"),
        ("(Met OR police", 0, "unclosed '('"),
        ("Met OR (police", 7, "unclosed '('"),
        ("Met AND (", 8, "unclosed '(': add a term and a ')'"),
        ("(", 0, "unclosed '(': add a term and a ')'"),
        ("Met police)", 10, "unmatched ')'"),
        (")", 0, "unmatched ')'"),
        ("Met AND", 4, "AND needs a term after it"),
        ("OR police", 0, "OR needs a term before it"),
        ("Met OR OR police", 4, "OR needs a term after it"),
        ("Met (OR police)", 5, "OR needs a term before it"),
        ("Met NEAR", 4, "NEAR needs a term after it"),
        ("NEAR Met", 0, "NEAR needs a term before it"),
        ("Met NOT", 4, "NOT needs a term after it"),
        ('Met ""', 4, "empty phrase"),
        ('Met "--"', 4, "empty phrase"),
        ("Met NEAR/0 police", 4, "bad NEAR/n"),
        ("Met NEAR/1001 police", 4, "bad NEAR/n"),
        ("Met NEAR/x police", 4, "bad NEAR/n"),
        ("Met NEAR/ police", 4, "bad NEAR/n"),
        ("NOT Met NEAR police", 0, "NOT inside NEAR"),
        ("Met NEAR (police OR NOT Gala)", 20, "NOT inside NEAR"),
        ("Met NEAR (police AND NOT Gala)", 21, "NOT inside NEAR"),
        ("(Met police) NEAR officer", 1, "each side of NEAR"),
        ("Met NEAR/12 (police or officer*)", 20, "'or' is read as a word"),
        ("(Met and Met) NEAR officer", 5, "operators are written in capitals: AND"),
        ("Met NEAR police NEAR officer", 16, "NEAR after NEAR"),
        ("Met @ police", 4, "stray character '@'"),
        ("Met, police", 3, "stray character ','"),
        ("-Gala Met", 0, "write NOT"),
        ("* Met", 0, "stray '*'"),
        ("body:Met", 0, "unknown field 'body'"),
        ("Title:Met", 0, "did you mean title:"),
        ("title:", 0, "title: must be followed"),
        ("title: OR x", 0, "title: must be followed"),
        ("()", 0, "empty parentheses"),
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("NOT Gala", 0, "nothing to look for"),
        ("Met OR NOT Gala", 0, "nothing to look for"),
        ("(NOT a) AND (NOT b)", 0, "nothing to look for"),
    ],
)
def test_errors_name_the_problem_and_its_offset(text: str, offset: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    assert fragment in info.value.message
    assert info.value.offset == offset
    assert isinstance(info.value, ValueError)


def test_valid_neighbours_of_the_error_cases_parse() -> None:
    for text in [
        'Met "Scotland Yard"',
        "(Met OR police)",
        "Met NEAR/1 police",
        "Met NEAR/1000 police",
        "Met AND NOT Gala",
        "(Met NEAR police) AND (Met NEAR officer)",
        "title:Met",
    ]:
        assert parse_query(text).source == text


def test_nesting_is_limited_so_the_stack_is_safe() -> None:
    deep = "(" * (MAX_DEPTH + 5) + "Met" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(QuerySyntaxError, match="nested"):
        parse_query(deep)
    with pytest.raises(QuerySyntaxError, match="nested"):
        parse_query("NOT " * (MAX_DEPTH + 5) + "Met AND Met")
    ok = "(" * MAX_DEPTH + "Met" + ")" * MAX_DEPTH
    assert isinstance(root(ok), Word)


def test_length_is_limited() -> None:
    with pytest.raises(QuerySyntaxError, match="longer than"):
        parse_query("Met " * (MAX_QUERY_LENGTH // 4 + 1))


def test_control_character_is_reported_by_code_point() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query("Met\x07police")
    assert "U+0007" in info.value.message and info.value.offset == 3
