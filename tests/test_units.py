"""Counts in words, as every command and digest prints them."""

from __future__ import annotations

import pytest

from monitor.units import plural


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "0 new hits"), (1, "1 new hit"), (2, "2 new hits"), (21, "21 new hits")],
)
def test_a_count_takes_the_singular_only_for_one(n: int, expected: str) -> None:
    assert plural(n, "new hit") == expected


def test_an_irregular_plural_is_given_in_full() -> None:
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"
    assert plural(0, "query", "queries") == "0 queries"
