"""Shared helpers for the benchmarks: repeated timing and report rows."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One figure of the report: a median with its min and max over the runs."""

    section: str
    label: str
    median: float
    low: float
    high: float
    unit: str
    note: str = ""


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, min, max."""
    return statistics.median(values), min(values), max(values)


def repeat(fn: Callable[[], float], runs: int = 3) -> tuple[float, float, float]:
    """Run fn (which returns one measurement) `runs` times; median, min, max."""
    return spread([fn() for _ in range(runs)])


def timed(fn: Callable[[], object]) -> float:
    """Wall time of one call, in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
