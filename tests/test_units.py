"""The units users write and read: durations and sizes in config files, counts in words."""

from __future__ import annotations

import pytest

from monitor.units import parse_duration, parse_size, plural


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


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1w", 604800), (" 1.5 h ", 5400)],
)
def test_durations_are_a_number_and_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "15 minutes", "m", "-5m", "1e3s", ""])
def test_a_duration_without_a_known_unit_is_refused_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration; write a number and a unit: 30s"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2000", 2000),
        ("500KB", 500_000),
        ("10MB", 10_000_000),
        ("1GB", 10**9),
        ("512KiB", 524_288),
        ("1.5 mib", 1_572_864),
    ],
)
def test_sizes_are_decimal_or_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["ten megabytes", "10 TB", "-1MB", "MB", ""])
def test_a_size_without_a_known_unit_is_refused_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a size; write a number and a unit: 500KB"):
        parse_size(text)
