"""The snippet of a hit: about forty words around the best match, only real matches marked.

The window is chosen among the matches themselves (units: one occurrence of a term, a phrase,
or a NEAR pair): it holds the most of them, preferring a window with a whole NEAR pair or
phrase, then one showing more of the queries that matched, then the earliest; text before
title. Then only what takes part in a match inside the window is marked: a NEAR side's word
whose partner lies outside the window is not, nor a word that is masked or under NOT.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable

from monitor.evaluate import Span, Unit
from monitor.models import Snippet
from monitor.textindex import MARKS, TextIndex, is_word_char, word_spans

WINDOW = 40  # words
ELLIPSIS = "…"
# whitespace, control and invisible formatting characters all collapse to one space
_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")
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
    words = window_spans(index, in_title, lo - offset, hi - offset, hint=chosen[0][1][0])
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
    if any(u[1] - u[0] >= size for _, u in units):
        units = [(q, part) for q, unit in units for part in _fit(unit, size)]
    in_text = [qu for qu in units if qu[1][0] > boundary]
    in_title = not in_text
    candidates = sorted(in_text or units, key=_place)
    if not candidates:
        return None
    count = len(candidates)
    best_key = (-1, -1, -1, -1)
    best = (0, 0)
    for i in range(count):
        stop = candidates[i][1][0] + size
        strong = inside = queries = 0
        j = i
        while j < count:
            q, unit = candidates[j]
            if unit[0] >= stop:
                break
            if unit[1] < stop:
                inside += 1
                strong += unit[2]
                queries |= 1 << q
            j += 1
        key = (strong > 0, queries.bit_count(), strong, inside)
        if key > best_key:
            best_key, best = key, (i, j)
    start = candidates[best[0]][1][0]
    stop = start + size
    chosen = [qu for qu in candidates[best[0] : best[1]] if qu[1][1] < stop]
    low, high = (0, boundary) if in_title else (boundary + 1, end)
    last = max(u[1] for _, u in chosen)
    lo = max(low, start - (size - (last - start + 1)) // 2)
    hi = min(high, lo + size)
    return in_title, max(low, hi - size), hi, chosen


def _place(query_unit: QueryUnit) -> tuple[int, int]:
    return query_unit[1][0], query_unit[1][1]


def window_spans(
    index: TextIndex, in_title: bool, start: int, stop: int, hint: int | None = None
) -> list[tuple[int, int]]:
    """Character offsets of words start..stop-1 of the title or of the text.

    Counting words from the first costs a search per word; instead a word of the window
    whose positions are known (at position `hint`, or the rarest) is found as the nth
    whole-word occurrence of its letters, and the others are found from it. Only in a text
    cut with combining marks (where "whole word" is harder to tell) are words counted.
    """
    text = index.title if in_title else index.text
    offset = 0 if in_title else index.boundary + 1
    tokens = index.tokens
    words = tokens[offset + start : offset + stop]
    anchor = None
    if index.kind != MARKS:
        anchor = _anchor(index, offset + start, offset + stop, hint)
    if anchor is None:
        return word_spans(text, tokens[offset : offset + stop])[start:]
    at, nth = anchor
    at -= offset + start
    begin = _nth_whole_word(text, words[at], nth)
    if begin is None:  # not where the words say: count them from the first instead
        return word_spans(text, tokens[offset : offset + stop])[start:]
    return _spans_back(text, words[:at], begin) + word_spans(text, words[at:], begin)


def _anchor(index: TextIndex, lo: int, hi: int, hint: int | None) -> tuple[int, int] | None:
    """(position, n): a located word in [lo, hi) that is the nth of its letters in its field."""
    field = 0 if lo < index.boundary else index.boundary + 1
    tokens = index.tokens
    if hint is not None and lo <= hint < hi and index.located(tokens[hint]) is not None:
        candidates: Iterable[int] = (hint,)
    else:
        candidates = range(lo, hi)
    best: tuple[int, int] | None = None
    fewest = 0
    for p in candidates:
        found = index.located(tokens[p])
        if found is not None and (best is None or len(found) < fewest):
            nth = bisect.bisect_left(found, p) - bisect.bisect_left(found, field)
            best, fewest = (p, nth), len(found)
    return best


def _nth_whole_word(text: str, word: str, nth: int) -> int | None:
    """Where the nth (from 0) occurrence of word as a whole word (no letter or digit on either
    side) starts: text cut without combining marks has its words exactly there. None if
    there is no such occurrence."""
    pos = -1
    while True:
        pos = text.find(word, pos + 1)
        if pos < 0:
            return None
        end = pos + len(word)
        if (pos == 0 or not is_word_char(text[pos - 1])) and (
            end == len(text) or not is_word_char(text[end])
        ):
            if nth == 0:
                return pos
            nth -= 1


def _spans_back(text: str, words: list[str], end: int) -> list[tuple[int, int]]:
    """Spans of the words that come just before offset end, found backwards."""
    spans = []
    rfind = text.rfind
    for word in reversed(words):
        end = rfind(word, 0, end)
        spans.append((end, end + len(word)))
    spans.reverse()
    return spans


def _fit(unit: Unit, size: int) -> list[Unit]:
    """The unit, or its parts (cut to the window) if it is too long to be seen whole."""
    first, last, _, spans = unit
    if last - first < size:
        return [unit]
    parts = [(a, min(b, a + size - 1)) for a, b in spans]
    return [(a, b, False, ((a, b),)) for a, b in parts]


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
    tidy = _SPACE.sub(" ", body)
    if len(tidy) == len(body):  # one space for one character: offsets carry over
        shift = len(head) - begin
        marks = [(a + shift, b + shift) for k, (a, b) in enumerate(words, start) if k in marked]
        return Snippet(head + tidy + tail, tuple(marks))
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
