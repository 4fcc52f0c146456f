"""Where things are in a TOML file, so problems can be shown as FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.tomlpos import Positions, load_toml

# (as written, the characters it stands for), by the kind of string it may appear in
_PLAIN = [("a", "a"), ("é", "é"), (" ", " "), ("\U0001f600", "\U0001f600")]
_ESCAPED = [
    ("\\n", "\n"),
    ("\\t", "\t"),
    ('\\"', '"'),
    ("\\\\", "\\"),
    ("\\u00e9", "é"),
    ("\\U0001F600", "\U0001f600"),
]
_NEWLINES = [("\n", "\n"), ("\r\n", "\n")]  # a multi-line string's CRLF is one newline
_CONTINUED = [("\\\n    ", ""), ("\\  \r\n\n  ", "")]  # line-ending backslash: nothing
_KINDS = {
    '"': [*_PLAIN, ("'", "'"), *_ESCAPED],
    '"""': [*_PLAIN, ("'", "'"), *_ESCAPED, *_NEWLINES, *_CONTINUED],
    "'": [*_PLAIN, ('"', '"'), ("\\", "\\")],
    "'''": [*_PLAIN, ('"', '"'), ("\\", "\\"), *_NEWLINES],
}


def parsed(tmp_path: Path, text: str) -> tuple[dict[str, Any], Positions]:
    path = tmp_path / "w.toml"
    path.write_bytes(text.encode("utf-8"))
    return load_toml(path, "w.toml")


def line_and_column(source: str, index: int) -> tuple[int, int]:
    return source.count("\n", 0, index) + 1, index - (source.rfind("\n", 0, index) + 1) + 1


@st.composite
def quoted_strings(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    quote = draw(st.sampled_from(sorted(_KINDS)))
    # the fixed first and last pieces keep clear of the rules about the quotes' neighbours
    pieces = [("S", "S")]
    for piece in draw(st.lists(st.sampled_from(_KINDS[quote]), max_size=20)):
        pieces.append(piece)
        if piece in _CONTINUED:  # it eats the whitespace after it, so a letter follows
            pieces.append(("a", "a"))
    return quote, [*pieces, ("E", "E")]


@given(case=quoted_strings())
def test_a_position_in_a_string_follows_its_escapes_and_lines(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, list[tuple[str, str]]]
) -> None:
    quote, pieces = case
    head = 'name = "x"\nmatch = [' + quote
    source = head + "".join(written for written, _ in pieces) + quote + "]\n"
    data, positions = parsed(tmp_path_factory.mktemp("toml"), source)
    assert data["match"] == ["".join(chars for _, chars in pieces)]
    index, offset = len(head), 0
    for written, chars in pieces:
        if chars:  # a line-ending backslash stands for nothing, so has no position
            where = positions.location_in_string(("match", 0), offset)
            assert (where.line, where.column) == line_and_column(source, index), (written, offset)
        index += len(written)
        offset += len(chars)


def test_a_byte_order_mark_is_not_part_of_the_file(tmp_path: Path) -> None:
    """Some editors save UTF-8 with a BOM; it read as "invalid statement" at 1:1."""
    data, positions = parsed(tmp_path, "\ufeffmatch = ['IOPC AND Met']\nname = 'Desk'\n")
    assert data == {"name": "Desk", "match": ["IOPC AND Met"]}
    where = positions.location_in_string(("match", 0), 9)
    assert (where.line, where.column) == (1, 20)  # columns as the user sees them: no BOM


def test_a_literal_string_has_no_escapes(tmp_path: Path) -> None:
    data, positions = parsed(tmp_path, "match = ['a\\nb IOPC']\n")
    assert data["match"] == ["a\\nb IOPC"]
    where = positions.location_in_string(("match", 0), 5)
    assert (where.line, where.column) == (1, 16)


def test_a_line_ending_backslash_skips_to_the_next_line(tmp_path: Path) -> None:
    source = 'match = ["""Met \\\n      police"""]\n'
    data, positions = parsed(tmp_path, source)
    assert data["match"] == ["Met police"]
    where = positions.location_in_string(("match", 0), 4)
    assert (where.line, where.column) == (2, 7)


def test_keys_inside_and_after_an_inline_table_have_their_lines(tmp_path: Path) -> None:
    source = (
        "[digest]\n"
        'at = "07:00"\n'
        'smtp = { host = "mail", port = 25, to = ["a", "b"] }\n'
        "send_empty = true\n"
        "[[feeds]]\n"
        'name = "A"\n'
        "[[feeds]]\n"
        'name = "B"\n'
        'url = "x"\n'
    )
    data, positions = parsed(tmp_path, source)
    assert data["digest"]["smtp"]["port"] == 25
    located = {
        path: positions.location(path).line
        for path in [
            ("digest", "smtp", "port"),
            ("digest", "smtp", "to", 1),
            ("digest", "send_empty"),
            ("feeds", 1, "url"),
            ("feeds", 0, "name"),
        ]
    }
    assert located == {
        ("digest", "smtp", "port"): 3,
        ("digest", "smtp", "to", 1): 3,
        ("digest", "send_empty"): 4,
        ("feeds", 1, "url"): 9,
        ("feeds", 0, "name"): 6,
    }
    where = positions.location(("digest", "smtp", "to", 1))
    assert where.column is None  # a value's location is its line; strings give columns
