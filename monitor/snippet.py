"""The snippet of a hit: about forty words around the best match, only real matches marked.

The window is chosen among the matches themselves (units: one occurrence of a term, a phrase,
or a NEAR pair): it holds the most of them, preferring a window with a whole NEAR pair or
phrase, then one showing more of the queries that matched, then the earliest; text before
title. Then only what takes part in a match inside the window is marked: a NEAR side's word
whose partner lies outside the window is not, nor a word that is masked or under NOT.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable

from monitor.evaluate import Span, Unit
from monitor.models import Snippet
from monitor.textindex import TextIndex

WINDOW = 40  # words
ELLIPSIS = "…"
# whitespace, control and invisible formatting characters all collapse to one space
_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")
# what _SPACE would change: any of its characters but a lone space
_UNTIDY = re.compile(r"[^\S ]|  |[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_LEAD = re.compile(r"[\"'“‘(\[]{1,2}$")  # an opening quote or bracket right before a word
_TRAIL = re.compile(r"[^\s\w]{1,3}")  # closing punctuation right after a word

QueryUnit = tuple[int, Unit]  # the number of the query it comes from, and the unit
Evidence = Callable[[int, int], Iterable[Span]]  # what to mark within positions [lo, hi)


def build_snippet(index: TextIndex, units: list[QueryUnit], evidence: Evidence) -> Snippet | None:
    """A snippet around the best of the units, marking what evidence gives for its window."""
    window = choose_window(units, index.boundary, len(index.tokens))
    if window is None:
        return None
    in_title, lo, hi, chosen = window
    spans = list(evidence(lo, hi)) or [s for _, unit in chosen for s in unit[3]]
    offset = 0 if in_title else index.boundary + 1
    marked = {p - offset for a, b in spans for p in range(max(a, lo), min(b + 1, hi))}
    total = index.boundary if in_title else len(index.tokens) - offset
    words = index.spans(in_title, lo - offset, hi - offset)
    text = index.title if in_title else index.text
    return _render(text, words, lo - offset, hi - offset, total, marked)


def choose_window(
    units: list[QueryUnit], boundary: int, end: int, size: int = WINDOW
) -> tuple[bool, int, int, list[QueryUnit]] | None:
    """(in title?, lo, hi, the units inside) of the best window of `size` positions.

    Units longer than the window are shown by their parts. Among the windows that start at a
    unit, the best holds a strong unit (a NEAR pair or a phrase), then units of the most
    queries, then the most strong units, then the most units; the earliest wins a tie.
    """
    fitted = [(q, u) for q, unit in units for u in _fit(unit, size)]
    fitted.sort(key=lambda qu: qu[1][:2])
    in_text = [qu for qu in fitted if qu[1][0] > boundary]
    in_title = not in_text
    candidates = in_text or fitted
    if not candidates:
        return None
    best_key = (-1, -1, -1, -1)
    best: list[QueryUnit] = []
    for i, (_, (start, *_)) in enumerate(candidates):
        stop = start + size
        inside = []
        for qu in itertools.islice(candidates, i, None):
            if qu[1][0] >= stop:
                break
            if qu[1][1] < stop:
                inside.append(qu)
        strong = sum(1 for _, u in inside if u[2])
        key = (min(strong, 1), len({q for q, _ in inside}), strong, len(inside))
        if key > best_key:
            best_key, best = key, inside
    low, high = _field(in_title, boundary, end)
    first = best[0][1][0]
    last = max(u[1] for _, u in best)
    lo = max(low, first - (size - (last - first + 1)) // 2)
    hi = min(high, lo + size)
    return in_title, max(low, hi - size), hi, best


def _fit(unit: Unit, size: int) -> list[Unit]:
    """The unit, or its parts (cut to the window) if it is too long to be seen whole."""
    first, last, _, spans = unit
    if last - first < size:
        return [unit]
    parts = [(a, min(b, a + size - 1)) for a, b in spans]
    return [(a, b, False, ((a, b),)) for a, b in parts]


def _field(in_title: bool, boundary: int, end: int) -> tuple[int, int]:
    """Positions [low, high) of the title's words or the text's."""
    return (0, boundary) if in_title else (boundary + 1, end)


def _render(
    text: str, words: list[tuple[int, int]], start: int, stop: int, total: int, marked: set[int]
) -> Snippet:
    """Words start..stop-1 (their spans are `words`) with their punctuation, whitespace
    collapsed, marks recorded."""
    begin = words[0][0]
    lead = _LEAD.search(text, max(0, begin - 2), begin)
    if lead:
        begin = lead.start()
    head = ELLIPSIS + " " if start > 0 else ""
    end = words[-1][1]
    trail = _TRAIL.match(text, end)
    tail = _SPACE.sub(" ", trail.group()) if trail else ""
    tail += " " + ELLIPSIS if stop < total else ""
    body = text[begin:end]
    if not _UNTIDY.search(body):  # nothing to collapse: offsets carry over
        shift = len(head) - begin
        marks = [(a + shift, b + shift) for k, (a, b) in enumerate(words, start) if k in marked]
        return Snippet(head + body + tail, tuple(marks))
    out = [head]
    length = len(head)
    marks = []
    cursor = begin
    for k, (a, b) in enumerate(words, start):
        gap = text[cursor:a]
        if gap != " " and not (gap.isascii() and gap.isprintable() and "  " not in gap):
            gap = _SPACE.sub(" ", gap)
        out.append(gap)
        length += len(gap)
        if k in marked:
            marks.append((length, length + b - a))
        out.append(text[a:b])
        length += b - a
        cursor = b
    out.append(tail)
    return Snippet("".join(out), tuple(marks))
