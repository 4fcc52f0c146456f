"""Evaluate query ASTs against one indexed document.

Terms are looked up, never scanned for: a word's presence is a set lookup in the document's
vocabulary, its positions come from one C-speed scan of the word list, and each is computed
once per document and shared by every query and watchlist that uses it. NEAR merges two
sorted position lists. Nothing here depends on the shape of user input beyond the size of the
query, so time stays linear in the text.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

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
            hits = index.words_with_prefix(words[0], folded)
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
        self.index = index = terms.index
        self.masked = masked
        # indexed by _vocab_slot(folded, title), for the compiled word checks
        self.vocabs = (index.vocab, index.title_vocab, index.folded_vocab, index.title_folded_vocab)
        # masked text never counts *for* an article, and never hides words from NOT: what is
        # masked can only take hits away, never add one
        self.unmasked = Evaluator(terms) if masked else self
        self._sides: dict[int, tuple[tuple[Term, ...], list[Span]]] = {}

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
        index = self.index
        title = term.title
        if isinstance(term, Word):
            present = term.key in index.words(not term.exact, title)
        elif isinstance(term, Prefix):
            present = index.has_prefix(term.key, not term.exact, title)
        else:
            present = all(k in index.words(not term.exact, title) for k in term.keys)
        # a phrase needs its words in order, and masks may hide every occurrence
        return present and (
            (not self.masked and not isinstance(term, Phrase)) or bool(self.spans(term))
        )

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

    def side_spans(self, terms: tuple[Term, ...]) -> list[Span]:
        """Sorted occurrences of one side of NEAR: a term or an OR-group of terms."""
        cached = self._sides.get(id(terms))
        if cached is not None and cached[0] is terms:
            return cached[1]
        present = [self.spans(t) for t in terms if self.occurs(t)]
        found = present[0] if len(present) == 1 else sorted({s for p in present for s in p})
        self._sides[id(terms)] = (terms, found)  # holding terms keeps its id from reuse
        return found

    def near_pairs(self, node: Near, *, first_only: bool) -> list[Span]:
        """Occurrences of the two sides of a NEAR that are close enough (see pair_spans)."""
        sides = _near_sides(node)
        return self.pair_spans(*sides, node.distance, first_only=first_only)

    def pair_spans(
        self,
        left_terms: tuple[Term, ...],
        right_terms: tuple[Term, ...],
        n: int,
        *,
        first_only: bool,
    ) -> list[Span]:
        """Spans of left and right occurrences that are within n word positions of each other.

        For each left occurrence, only right occurrences that start within the window are
        looked at, and the first one close enough is taken: time grows with the number of
        occurrences, not with their product.
        """
        left = self.side_spans(left_terms)
        right = self.side_spans(right_terms)
        if not left or not right:
            return []
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


Check = Callable[[Evaluator], bool]


def compile_check(node: Node) -> Check:
    """The node as a function of an Evaluator: what Evaluator.test(node) answers, quicker.

    Matching evaluates the same queries for every article; walking the AST each time costs
    more than the lookups themselves, so each query is turned into closures once.
    """
    match node:
        case Word(key=key, exact=exact, title=title):
            slot = _vocab_slot(not exact, title)
            word = node

            def check_word(ev: Evaluator) -> bool:
                if key not in ev.vocabs[slot]:
                    return False
                # present; under masks, some occurrence must be outside them
                return not ev.masked or bool(ev.spans(word))

            return check_word
        case Prefix() | Phrase():
            term = node
            return lambda ev: ev.occurs(term)
        case And(children=children):
            return _all_of(tuple(compile_check(c) for c in children))
        case Or(children=children):
            return _any_of(tuple(compile_check(c) for c in children))
        case Not(child=child):
            inner = compile_check(child)
            return lambda ev: not inner(ev.unmasked)
        case Near(left=left, right=right):
            return _near(node, compile_check(left), compile_check(right))
    raise TypeError(node)  # pragma: no cover


def _vocab_slot(folded: bool, title: bool) -> int:
    return 2 * folded + title


def _all_of(checks: tuple[Check, ...]) -> Check:
    def check_all(ev: Evaluator) -> bool:
        for check in checks:  # noqa: SIM110 - all() would build a generator per call
            if not check(ev):
                return False
        return True

    return check_all


def _any_of(checks: tuple[Check, ...]) -> Check:
    def check_any(ev: Evaluator) -> bool:
        for check in checks:  # noqa: SIM110 - any() would build a generator per call
            if check(ev):
                return True
        return False

    return check_any


def _near(node: Near, left: Check, right: Check) -> Check:
    left_terms, right_terms = _near_sides(node)
    n = node.distance

    def check_near(ev: Evaluator) -> bool:
        # both sides present is cheap to learn and usually false: positions only then
        return (
            left(ev)
            and right(ev)
            and bool(ev.pair_spans(left_terms, right_terms, n, first_only=True))
        )

    return check_near


def _near_sides(node: Near) -> tuple[tuple[Term, ...], tuple[Term, ...]]:
    """The terms of each side of a NEAR."""
    return tuple(_or_terms(node.left)), tuple(_or_terms(node.right))


def _or_terms(node: Node) -> list[Term]:
    """The terms of a side of NEAR: one term, or an OR-group of them however nested."""
    if isinstance(node, Or):
        return [t for child in node.children for t in _or_terms(child)]
    assert isinstance(node, Word | Prefix | Phrase), "parse_query allows nothing else"
    return [node]


def _gap(a: Span, b: Span) -> int:
    """How many word positions apart two spans are (0 when they overlap)."""
    if a[1] < b[0]:
        return b[0] - a[1]
    if b[1] < a[0]:
        return a[0] - b[1]
    return 0
