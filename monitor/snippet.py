"""The snippet of a hit: about forty words around the strongest match, matched words marked."""

from __future__ import annotations

import re
from collections.abc import Iterable

from monitor.models import Snippet
from monitor.textindex import TextIndex

WINDOW = 40  # words
ELLIPSIS = "…"
# whitespace, control and invisible formatting characters all collapse to one space
_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")
_LEAD = re.compile(r"[\"'“‘(\[]{1,2}$")  # an opening quote or bracket right before a word
_TRAIL = re.compile(r"[^\s\w]{1,3}")  # closing punctuation right after a word


def build_snippet(index: TextIndex, spans: Iterable[tuple[int, int]]) -> Snippet | None:
    """A snippet from the text around the matched spans, or from the title if none is there."""
    positions = sorted({p for first, last in spans for p in range(first, last + 1)})
    boundary = index.boundary
    in_text = [p - boundary - 1 for p in positions if p > boundary]
    if in_text:
        return _cut(index, False, len(index.tokens) - boundary - 1, in_text)
    in_title = [p for p in positions if p < boundary]
    if in_title:
        return _cut(index, True, boundary, in_title)
    return None


def best_window(positions: list[int], size: int = WINDOW) -> tuple[int, int]:
    """Indices [i, j] into sorted positions: the most of them that fit in `size` words."""
    best = (0, 0)
    i = 0
    for j, last in enumerate(positions):
        while last - positions[i] >= size:
            i += 1
        if j - i > best[1] - best[0]:
            best = (i, j)
    return best


def _cut(index: TextIndex, in_title: bool, total: int, positions: list[int]) -> Snippet:
    """The window of the field (title or text) holding most of the matched positions."""
    i, j = best_window(positions)
    first, last = positions[i], positions[j]
    pad = (WINDOW - (last - first + 1)) // 2
    start = max(0, first - pad)
    stop = min(total, start + WINDOW)
    start = max(0, stop - WINDOW)
    words = index.spans(in_title, stop)
    text = index.title if in_title else index.text
    return _render(text, words, start, stop, total, set(positions[i : j + 1]))


def _render(
    text: str, words: list[tuple[int, int]], start: int, stop: int, total: int, marked: set[int]
) -> Snippet:
    """Words start..stop-1 with their punctuation, whitespace collapsed, marks recorded."""
    begin = words[start][0]
    lead = _LEAD.search(text, max(0, begin - 2), begin)
    if lead:
        begin = lead.start()
    out: list[str] = [ELLIPSIS + " "] if start > 0 else []
    length = len(out[0]) if out else 0
    marks: list[tuple[int, int]] = []
    cursor = begin
    for k in range(start, stop):
        a, b = words[k]
        gap = _SPACE.sub(" ", text[cursor:a])
        out.append(gap)
        length += len(gap)
        if k in marked:
            marks.append((length, length + b - a))
        out.append(text[a:b])
        length += b - a
        cursor = b
    trail = _TRAIL.match(text, cursor)
    if trail:
        out.append(_SPACE.sub(" ", trail.group()))
    if stop < total:
        out.append(" " + ELLIPSIS)
    return Snippet("".join(out), tuple(marks))
