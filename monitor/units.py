"""Pure parsers and formatters for the units users write and read: durations, sizes, counts."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SINCE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_duration(text: str) -> float:
    """'30s', '15m', '2h', '1d' -> seconds. Raises ValueError with a user-facing message."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit: 30s, 15m, 2h, 1d")
    return float(m[1]) * _DURATION_UNITS[m[2]]


def parse_size(text: str) -> int:
    """'10MB', '512KiB', '2000' -> bytes. Raises ValueError with a user-facing message."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size; write a number and a unit: 500KB, 10MB, 1GB")
    return int(float(m[1]) * _SIZE_UNITS[(m[2] or "b").lower()])


def is_date(text: str) -> bool:
    """True for an ISO calendar date such as 2026-11-01."""
    return bool(_SINCE_DATE.match(text))


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 hit', '2 hits'; plural(n, "story", "stories") for irregular words."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"
