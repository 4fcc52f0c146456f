"""Match documents against watchlists: which watchlists an article is a hit for, and why.

Compiling the watchlists builds one term-to-query index over all of their queries. For each
document the words are read once (textindex), the index says which queries have a term in
the document (triggers), a presence check drops those missing a word they need, and only
the rest are evaluated: positions are located for their words alone, all in one pass. A
query none of whose terms occur cannot match and costs nothing, so a watchlist of ten
thousand queries costs little more per article than one of ten.

Per watchlist: `ignore` phrases are masked first (their words no longer count towards a
match), then the article is a hit when any `match` query matches and no `exclude` query does.
Masking hides words from what makes an article match, never from NOT or `exclude`, so an
ignore phrase can take a hit away but never add one.
"""

from __future__ import annotations

import bisect
import gc
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from monitor.evaluate import Check, DocTerms, Evaluator, Span, compile_check
from monitor.models import Document, MatchResult, Snippet
from monitor.query import And, Near, Node, Or, Phrase, Prefix, Query, Term, iter_terms
from monitor.snippet import build_snippet
from monitor.textindex import TextIndex, index_text
from monitor.triggers import (
    Presence,
    TriggerIndex,
    choose_triggers,
    compile_presence,
    required_words,
)
from monitor.watchlist import Watchlist

SNIPPET_QUERIES = 16  # the snippet shows the strongest match among the first this many


@dataclass(frozen=True, slots=True)
class _Words:
    """Words of some terms, by how they are compared: what a document's spellings are for."""

    exact: frozenset[str]
    folded: frozenset[str]
    prefixes: tuple[tuple[bool, str], ...]  # (folded?, prefix)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One query of one watchlist, compiled."""

    watchlist: int
    role: str  # "match", "exclude" or "ignore"
    ordinal: int  # place in its list in the file
    query: Query
    maybe: Presence  # a quick necessary condition: the words check needs are present
    check: Check
    placed: _Words  # words whose positions matching needs: in phrases and NEAR
    shown: _Words  # words whose positions a snippet needs: every term not under NOT


@dataclass(slots=True)
class _Due:
    """The queries of one watchlist that have a term in the current document."""

    match: list[_Entry]
    exclude: list[_Entry]
    ignore: list[_Entry]


class Matcher:
    """Compiled watchlists; `match` finds the hits of one document among all of them."""

    def __init__(self, watchlists: Sequence[Watchlist]) -> None:
        self.watchlists = tuple(watchlists)
        self._entries: list[_Entry] = []
        self._index = TriggerIndex()
        self._always: list[list[_Entry]] = [[] for _ in self.watchlists]
        # where each watchlist's match, exclude and ignore entries start, and where it ends
        self._bounds: list[tuple[int, int, int, int]] = []
        with _no_cycle_collection():
            for number, watchlist in enumerate(self.watchlists):
                starts = []
                for role in ("match", "exclude", "ignore"):
                    starts.append(len(self._entries))
                    for ordinal, query in enumerate(getattr(watchlist, role)):
                        self._add(_compile_entry(number, role, ordinal, query))
                self._bounds.append((starts[0], starts[1], starts[2], len(self._entries)))
            self._index.freeze()

    def _add(self, entry: _Entry) -> None:
        triggers = choose_triggers(entry.query.root)
        if triggers is None:
            # an exclude query like 'NOT police' can match with none of its words present
            self._always[entry.watchlist].append(entry)
            return
        self._index.add(len(self._entries), triggers, required_words(entry.query.root))
        self._entries.append(entry)

    def match(self, doc: Document, feed: str | None = None) -> list[MatchResult]:
        """The hits of a document: one MatchResult (hit=True) per watchlist it is a hit for.

        A watchlist is consulted when its `feeds` is empty, when feed is None, or when it
        names the feed the document came from.
        """
        terms = DocTerms(index_text(doc.title, doc.text))
        results = []
        for number, due in sorted(self._due(terms).items()):
            watchlist = self.watchlists[number]
            if feed is not None and watchlist.feeds and feed not in watchlist.feeds:
                continue
            result = self._judge(number, due, terms, full=False)
            if result is not None:
                results.append(result)
        return results

    def explain(self, number: int, doc: Document) -> MatchResult:
        """The full result for the watchlist at position `number`, hit or not."""
        terms = DocTerms(index_text(doc.title, doc.text))
        due = self._due(terms).get(number, _Due([], [], []))
        result = self._judge(number, due, terms, full=True)
        assert result is not None
        return result

    def _due(self, terms: DocTerms) -> dict[int, _Due]:
        """Watchlist number -> its queries that have a term in the document."""
        found = self._index.find(terms.index)
        if not found:
            return {}
        ids = sorted(found)  # sorted: the order of the file, and one watchlist's ids together
        entries = self._entries
        due: dict[int, _Due] = {}
        for number, bounds in enumerate(self._bounds):
            cuts = [bisect.bisect_left(ids, b) for b in bounds]
            if cuts[0] == cuts[-1]:
                continue
            match, exclude, ignore = (
                [entries[i] for i in ids[a:b]] for a, b in itertools.pairwise(cuts)
            )
            due[number] = _Due(match, exclude, ignore)
        return due

    def _judge(self, number: int, due: _Due, terms: DocTerms, *, full: bool) -> MatchResult | None:
        """Mask, match, exclude; None when not a hit and no full explanation is wanted."""
        name = self.watchlists[number].name
        index = terms.index
        likely = [e for e in due.match if e.maybe(index)]
        if not likely and not full:
            return None
        ignore = [e for e in due.ignore if e.maybe(index)]
        # what the checks place and what a snippet shows: found together in one pass
        index.want(_spellings(index, [*(e.shown for e in likely), *(e.placed for e in ignore)]))
        masked = terms.masked_positions(t for e in ignore for t in iter_terms(e.query.root))
        ev = Evaluator(terms, masked)
        hits = [e for e in likely if e.check(ev)]
        if not hits:
            return None if not full else MatchResult(name, False)
        excludes = sorted([*due.exclude, *self._always[number]], key=lambda e: e.ordinal)
        excluded = [e.query for e in excludes if e.check(ev.unmasked)]
        if excluded and not full:
            return None
        return MatchResult(
            watchlist=name,
            hit=not excluded,
            matched=tuple(e.query.source for e in hits),
            excluded_by=tuple(q.source for q in excluded),
            snippet=_snippet(ev, hits[:SNIPPET_QUERIES]),
        )


def _snippet(ev: Evaluator, shown: list[_Entry]) -> Snippet | None:
    """The snippet of the matched queries: their matches, marked only where they match."""
    roots = [e.query.root for e in shown]
    units = [(number, unit) for number, root in enumerate(roots) for unit in ev.units(root)]

    def evidence(lo: int, hi: int) -> list[Span]:
        return [s for root in roots for s in ev.evidence_in(root, lo, hi)]

    return build_snippet(ev.index, units, evidence)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large watchlist compiles.

    Compiling allocates many small objects that all stay alive; the collector would walk
    them again and again as they pile up (over half the compile time of 10,000 queries).
    Nothing compiled here forms a cycle that needs collecting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compile_entry(number: int, role: str, ordinal: int, query: Query) -> _Entry:
    positive = list(iter_terms(query.root, positive_only=True))
    placed = [t for t in positive if isinstance(t, Phrase)] + _near_terms(query.root)
    root = query.root
    maybe, check = compile_presence(root), compile_check(root)
    return _Entry(
        number, role, ordinal, query, maybe, check, _words_of(placed), _words_of(positive)
    )


def _near_terms(node: Node) -> list[Term]:
    """The terms of every NEAR in node: they need positions, not only presence."""
    match node:
        case Near(left=left, right=right):
            return [*iter_terms(left), *iter_terms(right)]
        case And(children=children) | Or(children=children):
            return [t for c in children for t in _near_terms(c)]
    return []  # NEAR is never under NOT, and terms alone need only presence


def _words_of(terms: list[Term]) -> _Words:
    """The words and prefixes of the terms, by how they are compared."""
    exact: list[str] = []
    folded: list[str] = []
    prefixes: list[tuple[bool, str]] = []
    for term in terms:
        keys = term.keys if isinstance(term, Phrase) else (term.key,)
        if isinstance(term, Prefix):
            prefixes.append((not term.exact, term.key))
        else:
            (exact if term.exact else folded).extend(keys)
    return _Words(frozenset(exact), frozenset(folded), tuple(dict.fromkeys(prefixes)))


def _spellings(index: TextIndex, lists: Iterable[_Words]) -> set[str]:
    """The document's spellings of the words and prefixes: what to locate for them."""
    exact: set[str] = set()
    folded: set[str] = set()
    prefixes: set[tuple[bool, str]] = set()
    for words in lists:  # queries share words: each is looked up once
        exact.update(words.exact)
        folded.update(words.folded)
        prefixes.update(words.prefixes)
    vocab = index.vocab.keys()
    wanted = (exact & vocab) | (folded & vocab)
    for word in folded & index.refolded.keys():
        wanted.update(index.spellings(word))
    for is_folded, prefix in prefixes:
        wanted.update(index.spellings_with_prefix(prefix, is_folded))
    return wanted


def compile_watchlists(watchlists: Sequence[Watchlist]) -> Matcher:
    """Build the term index over every query of every watchlist, once per (re)load."""
    return Matcher(watchlists)


def explain(watchlist: Watchlist, doc: Document) -> MatchResult:
    """Why a document is or is not a hit for one watchlist: matched, excluded_by, snippet."""
    return Matcher([watchlist]).explain(0, doc)


def match_query(query: Query, doc: Document) -> bool:
    """Whether one query matches a document (searching stored articles)."""
    index = index_text(doc.title, doc.text)
    return compile_check(query.root)(Evaluator(DocTerms(index)))
