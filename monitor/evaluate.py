"""Evaluate query ASTs against one indexed document.

Terms are looked up, never scanned for: a word's presence is a dict lookup in the document's
vocabulary, positions come from one C-speed pass over the word list for every word asked
about, and each is computed once per document and shared by every query and watchlist that
uses it. NEAR merges two sorted position lists. Nothing here depends on the shape of user
input beyond the size of the query, so time stays linear in the text.

Besides yes or no, an Evaluator says what made a query match, for the snippet: `units` (the
matches a snippet window can show: one occurrence of a term, or a NEAR pair) and `evidence_in`
(the occurrences inside a window that take part in a match there). Neither ever points at a
NOT term or a masked word.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable

from monitor.query import And, Near, Node, Not, Or, Phrase, Prefix, Term, Word
from monitor.querytree import Side, near_sides
from monitor.textindex import TextIndex
from monitor.triggers import words_present

Span = tuple[int, int]  # first and last word position of one occurrence
TermKey = tuple[str, bool, tuple[str, ...]]
Unit = tuple[int, int, bool, tuple[Span, ...]]  # first, last, strong?, the spans it is made of
UNITS_PER_QUERY = 32  # a snippet is chosen among the earliest matches of each query


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
            return [(p, p) for p in index.locate(index.spellings_with_prefix(words[0], folded))]
        if folded:
            spellings = [index.spellings(word) for word in words]
            if not all(spellings):
                return []
            index.want(itertools.chain.from_iterable(spellings))
        else:
            if not index.vocab.keys() >= set(words):
                return []
            index.want(words)
        # where the phrase starts: where its first word is, and its kth word k places on
        starts = set(index.positions(words[0], folded))
        for k, word in enumerate(words[1:], 1):
            if not starts:
                return []
            starts.intersection_update([p - k for p in index.positions(word, folded)])
        last = len(words) - 1
        return [(p, p + last) for p in sorted(starts)]

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
        self.vocab = index.vocab
        self.refolded = index.refolded
        self.masked = masked
        # masked text never counts *for* an article, and never hides words from NOT: what is
        # masked can only take hits away, never add one
        self._unmasked = Evaluator(terms) if masked else None
        self._sides: dict[int, tuple[Side, list[Span]]] = {}
        self._spans: dict[int, tuple[Term, list[Span]]] = {}

    @property
    def unmasked(self) -> Evaluator:
        """The evaluator of the same document without masks (itself when it has none).

        Not kept as an attribute pointing back at itself: that cycle would keep a
        document's words alive until the cyclic collector ran, and make every one of its
        runs walk the words of the last dozen documents.
        """
        return self if self._unmasked is None else self._unmasked

    def spans(self, term: Term) -> list[Span]:
        """Occurrences of a term that count: in the title if it asks, and not masked."""
        cached = self._spans.get(id(term))
        if cached is not None and cached[0] is term:
            return cached[1]
        found = self.terms.spans(term_key(term))
        if term.title:
            boundary = self.index.boundary
            found = [s for s in found if s[1] < boundary]
        if self.masked:
            masked = self.masked
            found = [s for s in found if masked.isdisjoint(range(s[0], s[1] + 1))]
        # a query's check, its snippet units and its evidence all ask for the same terms
        self._spans[id(term)] = (term, found)
        return found

    def occurs(self, term: Term) -> bool:
        """Whether a term occurs at all; a dict lookup for words and prefixes when unmasked."""
        index = self.index
        folded = not term.exact
        if term.title:
            title = index.words(folded, True)
            if isinstance(term, Prefix):
                present = index.has_prefix(term.key, folded, True)
            else:
                keys = term.keys if isinstance(term, Phrase) else (term.key,)
                present = all(k in title for k in keys)
        elif isinstance(term, Word):
            present = index.has_word(term.key, folded)
        elif isinstance(term, Prefix):
            present = index.has_prefix(term.key, folded)
        else:
            present = all(index.has_word(k, folded) for k in term.keys)
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

    def side_spans(self, side: Side) -> list[Span]:
        """Sorted occurrences of one side of NEAR: a term or an OR-group of terms.

        The side's plain words and prefixes are turned into the document's spellings of them
        and located together; only phrases and title: terms are found one by one.
        """
        cached = self._sides.get(id(side))
        if cached is not None and cached[0] is side:
            return cached[1]
        index = self.index
        vocab, refolded = self.vocab, self.refolded
        spellings = [w for w in side.exact if w in vocab]
        for word in side.folded:
            if word in vocab or word in refolded:
                spellings += index.spellings(word)
        for folded, prefix in side.prefixes:
            spellings += index.spellings_with_prefix(prefix, folded)
        if len(spellings) > 1:
            spellings = list(dict.fromkeys(spellings))
        positions = index.locate(spellings) if spellings else []
        if self.masked:
            positions = [p for p in positions if p not in self.masked]
        found = [(p, p) for p in positions]
        if side.others:
            found = sorted({*found, *(s for t in side.others for s in self.spans(t))})
        self._sides[id(side)] = (side, found)
        return found

    def _longest(self, side: Side, spans: list[Span]) -> int:
        """How far the longest occurrence of a side reaches past its first word."""
        return _longest(spans) if side.others else 0

    def near_pairs(self, node: Near, *, first_only: bool) -> list[Span]:
        """Occurrences of the two sides of a NEAR that are close enough (see pair_spans)."""
        sides = near_sides(node)
        return self.pair_spans(*sides, node.distance, first_only=first_only)

    def pair_spans(
        self, left_side: Side, right_side: Side, n: int, *, first_only: bool
    ) -> list[Span]:
        """Left occurrences with a right one within n word positions, each with that right one.

        For each left occurrence, only right occurrences that start within the window are
        looked at, and the first one close enough is taken: time grows with the number of
        occurrences, not with their product.
        """
        left = self.side_spans(left_side)
        right = self.side_spans(right_side) if left else []
        if not right:
            return []
        reach = n + self._longest(right_side, right)
        found: list[Span] = []
        for span in left:
            other = _partner(span, right, n, reach, self.index.boundary, nearest=False)
            if other is not None:
                found += [span, other]
                if first_only:
                    break
        return found

    def units(self, node: Node) -> list[Unit]:
        """The matches of a matching node a snippet could show, the earliest few of each kind.

        A term's occurrence is one unit; a NEAR match is the pair of its two occurrences, a
        strong unit, as is a phrase. A branch of OR that did not match gives none, nor NOT.
        """
        match node:
            case Word() | Prefix() | Phrase():
                return [(a, b, a != b, ((a, b),)) for a, b in self.spans(node)[:UNITS_PER_QUERY]]
            case And(children=children):
                return [u for c in children for u in self.units(c)]
            case Or(children=children):
                return [u for c in children if self.test(c) for u in self.units(c)]
            case Near():
                return self._near_units(node)
        return []  # NOT shows nothing: what matched is an absence

    def _near_units(self, node: Near) -> list[Unit]:
        """A pair for each occurrence of the rarer side that has the other side within n."""
        sides = sorted(near_sides(node), key=lambda side: len(self.side_spans(side)))
        left, right = (self.side_spans(side) for side in sides)
        if not left:
            return []
        reach = node.distance + self._longest(sides[1], right)
        units: list[Unit] = []
        for span in left:
            other = _partner(span, right, node.distance, reach, self.index.boundary, nearest=True)
            if other is not None:
                pair = (span, other) if span < other else (other, span)
                units.append((pair[0][0], max(span[1], other[1]), True, pair))
                if len(units) == UNITS_PER_QUERY:
                    break
        return units

    def evidence_in(self, node: Node, lo: int, hi: int) -> list[Span]:
        """The occurrences within positions [lo, hi) that take part in the node's match there.

        Terms of matching branches; for NEAR, only the occurrences of each side that have an
        occurrence of the other within n inside the same window.
        """
        match node:
            case Word() | Prefix() | Phrase():
                return _inside(self.spans(node), lo, hi)
            case And(children=children):
                return [s for c in children for s in self.evidence_in(c, lo, hi)]
            case Or(children=children):
                return [s for c in children if self.test(c) for s in self.evidence_in(c, lo, hi)]
            case Near(distance=n):
                left, right = (_inside(self.side_spans(s), lo, hi) for s in near_sides(node))
                return [
                    *(a for a in left if any(_close(a, b, n) for b in right)),
                    *(b for b in right if any(_close(a, b, n) for a in left)),
                ]
        return []


def _partner(
    span: Span, others: list[Span], n: int, reach: int, boundary: int, *, nearest: bool
) -> Span | None:
    """An occurrence in sorted others within n of span, in the same field; the first or nearest.

    Only the others that start within reach (n plus the longest of them) before span, up to
    n after it, are looked at: bisect finds the first of them.
    """
    i = bisect.bisect_left(others, (span[0] - reach, -1))
    in_title = span[0] < boundary
    best: Span | None = None
    best_gap = n + 1
    while i < len(others) and others[i][0] <= span[1] + n:
        other = others[i]
        i += 1
        if other == span or (other[0] < boundary) != in_title:
            continue  # the same occurrence, or one in the title and one in the text
        gap = _gap(span, other)
        if gap < best_gap:
            best, best_gap = other, gap
            if not nearest:
                break
    return best


def _longest(spans: list[Span]) -> int:
    """How many positions the longest span covers beyond its first."""
    return max(b - a for a, b in spans)


def _close(a: Span, b: Span, n: int) -> bool:
    return a != b and _gap(a, b) <= n


def _inside(spans: list[Span], lo: int, hi: int) -> list[Span]:
    """The spans that lie wholly within positions [lo, hi)."""
    start = bisect.bisect_left(spans, (lo, -1))
    out = []
    for span in spans[start:]:
        if span[0] >= hi:
            break
        if span[1] < hi:
            out.append(span)
    return out


Check = Callable[[Evaluator], bool]


def compile_check(node: Node) -> Check:
    """The node as a function of an Evaluator: what Evaluator.test(node) answers, quicker.

    Matching evaluates the same queries for every article; walking the AST each time costs
    more than the lookups themselves, so each query is turned into closures once.
    """
    match node:
        case Word(key=key, exact=exact, title=False):
            return _word_check(node, key, not exact)
        case Phrase(keys=keys, exact=exact, title=False):
            present = words_present(keys, not exact)
            phrase = node
            return lambda ev: present(ev.index) and bool(ev.spans(phrase))
        case Word() | Prefix() | Phrase():
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


def _word_check(word: Word, key: str, folded: bool) -> Check:
    if folded:

        def check_folded(ev: Evaluator) -> bool:
            if key not in ev.vocab and key not in ev.refolded:
                return False
            # present; under masks, some occurrence must be outside them
            return not ev.masked or bool(ev.spans(word))

        return check_folded

    def check_exact(ev: Evaluator) -> bool:
        if key not in ev.vocab:
            return False
        return not ev.masked or bool(ev.spans(word))

    return check_exact


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
    left_side, right_side = near_sides(node)
    if right_side.size < left_side.size:
        # the side of fewer terms first: usually the rarer, and if it has no occurrence
        # (all masked, say) the other side is never located
        left_side, right_side = right_side, left_side
    n = node.distance

    def check_near(ev: Evaluator) -> bool:
        # both sides present is cheap to learn and usually false: positions only then
        return (
            left(ev)
            and right(ev)
            and bool(ev.pair_spans(left_side, right_side, n, first_only=True))
        )

    return check_near


def _gap(a: Span, b: Span) -> int:
    """How many word positions apart two spans are (0 when they overlap)."""
    if a[1] < b[0]:
        return b[0] - a[1]
    if b[1] < a[0]:
        return a[0] - b[1]
    return 0
