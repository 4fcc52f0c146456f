"""Evaluate query ASTs against one indexed document.

Terms are looked up, never scanned for: a word's presence is a set lookup in the document's
vocabulary, its positions come from one C-speed scan of the word list, and each is computed
once per document and shared by every query and watchlist that uses it. NEAR merges two
sorted position lists. Nothing here depends on the shape of user input beyond the size of the
query, so time stays linear in the text.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from monitor.query import And, Near, Node, Not, Or, Phrase, Prefix, Term, Word
from monitor.textindex import TextIndex

Span = tuple[int, int]  # first and last word position of one occurrence
TermKey = tuple[str, bool, tuple[str, ...]]


def term_key(term: Term) -> TermKey:
    """What identifies a term's occurrences, whatever query or watchlist it comes from."""
    if isinstance(term, Phrase):
        return ("phrase", not term.exact, term.keys)
    kind = "word" if isinstance(term, Word) else "prefix"
    return (kind, not term.exact, (term.key,))


class DocTerms:
    """Where each term occurs in one document, in title and text, before any masking."""

    def __init__(self, index: TextIndex) -> None:
        self.index = index
        self._spans: dict[TermKey, list[Span]] = {}

    def spans(self, key: TermKey) -> list[Span]:
        """Sorted spans of every occurrence of a term."""
        found = self._spans.get(key)
        if found is None:
            found = self._spans[key] = self._find(key)
        return found

    def _find(self, key: TermKey) -> list[Span]:
        kind, folded, words = key
        index = self.index
        if kind == "word":
            return [(p, p) for p in index.positions(words[0], folded)]
        if kind == "prefix":
            prefix = words[0]
            hits = [w for w in index.words(folded) if w.startswith(prefix)]
            found = sorted(p for w in hits for p in index.positions(w, folded))
            return [(p, p) for p in found]
        tokens = index.folded_tokens if folded else index.tokens
        last = len(words) - 1
        rest = list(words[1:])
        return [
            (p, p + last)
            for p in index.positions(words[0], folded)
            if tokens[p + 1 : p + 1 + last] == rest
        ]

    def masked_positions(self, terms: Iterable[Term]) -> frozenset[int]:
        """Every word position covered by an occurrence of one of the terms (ignore lists)."""
        masked: set[int] = set()
        for term in terms:
            for first, last in self.spans(term_key(term)):
                masked.update(range(first, last + 1))
        return frozenset(masked)


class Evaluator:
    """Answers queries for one document under one watchlist's masks."""

    def __init__(self, terms: DocTerms, masked: frozenset[int] = frozenset()) -> None:
        self.terms = terms
        self.index = terms.index
        self.masked = masked
        # masked text never counts *for* an article, and never hides words from NOT: what is
        # masked can only take hits away, never add one
        self.unmasked = Evaluator(terms) if masked else self

    def spans(self, term: Term) -> list[Span]:
        """Occurrences of a term that count: in the title if it asks, and not masked."""
        found = self.terms.spans(term_key(term))
        if term.title:
            boundary = self.index.boundary
            found = [s for s in found if s[1] < boundary]
        if self.masked:
            masked = self.masked
            found = [s for s in found if not any(p in masked for p in range(s[0], s[1] + 1))]
        return found

    def occurs(self, term: Term) -> bool:
        """Whether a term occurs at all; a set lookup for words and prefixes when unmasked."""
        if self.masked or isinstance(term, Phrase):
            return bool(self.spans(term))
        vocab_title = term.title
        if isinstance(term, Word):
            return term.key in self.index.words(not term.exact, vocab_title)
        return term.key in self.index.prefixes(len(term.key), not term.exact, vocab_title)

    def test(self, node: Node) -> bool:
        """Whether the node matches the document."""
        match node:
            case Word() | Prefix() | Phrase():
                return self.occurs(node)
            case And(children=children):
                return all(self.test(c) for c in children)
            case Or(children=children):
                return any(self.test(c) for c in children)
            case Not(child=child):
                return not self.unmasked.test(child)
            case Near():
                return bool(self.near_pairs(node, first_only=True))
        raise TypeError(node)  # pragma: no cover

    def side_spans(self, node: Node) -> list[Span]:
        """Sorted occurrences of one side of NEAR: a term or an OR-group of terms."""
        if isinstance(node, Or):
            return sorted({s for child in node.children for s in self.side_spans(child)})
        assert isinstance(node, Word | Prefix | Phrase), "parse_query allows only these"
        return self.spans(node)

    def near_pairs(self, node: Near, *, first_only: bool) -> list[Span]:
        """Spans of left and right occurrences that are within node.distance of each other.

        For each left occurrence, only right occurrences that start within the window are
        looked at, and the first one close enough is taken: time grows with the number of
        occurrences, not with their product.
        """
        left = self.side_spans(node.left)
        right = self.side_spans(node.right)
        if not left or not right:
            return []
        n = node.distance
        longest = max(b - a for a, b in right)
        starts = [a for a, _ in right]
        boundary = self.index.boundary
        found: list[Span] = []
        for span in left:
            i = bisect.bisect_left(starts, span[0] - n - longest)
            while i < len(right) and right[i][0] <= span[1] + n:
                other = right[i]
                i += 1
                if other == span or (other[0] < boundary) != (span[0] < boundary):
                    continue  # the same occurrence, or one in the title and one in the text
                if _gap(span, other) <= n:
                    found += [span, other]
                    if first_only:
                        return found
                    break
        return found

    def evidence(self, node: Node) -> list[Span]:
        """The occurrences that made a matching node match: what a snippet should show."""
        match node:
            case Word() | Prefix() | Phrase():
                return self.spans(node)
            case And(children=children):
                return [s for c in children for s in self.evidence(c)]
            case Or(children=children):
                return [s for c in children if self.test(c) for s in self.evidence(c)]
            case Near():
                return self.near_pairs(node, first_only=False)
        return []  # NOT shows nothing: what matched is an absence


def _gap(a: Span, b: Span) -> int:
    """How many word positions apart two spans are (0 when they overlap)."""
    if a[1] < b[0]:
        return b[0] - a[1]
    if b[1] < a[0]:
        return a[0] - b[1]
    return 0
