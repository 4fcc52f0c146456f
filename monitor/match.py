"""Match documents against watchlists: which watchlists an article is a hit for, and why.

Compiling the watchlists builds one term-to-query index over all of their queries. For each
document the words are read once (textindex), the index says which queries have a term in
the document, and only those are evaluated; a query none of whose terms occur cannot match
and costs nothing. So a watchlist of ten thousand queries costs little more per article than
one of ten.

Per watchlist: `ignore` phrases are masked first (their words no longer count towards a
match), then the article is a hit when any `match` query matches and no `exclude` query does.
Masking hides words from what makes an article match, never from NOT or `exclude`, so an
ignore phrase can take a hit away but never add one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.evaluate import DocTerms, Evaluator
from monitor.models import Document, MatchResult
from monitor.query import And, Near, Node, Not, Or, Phrase, Prefix, Query, Word, iter_terms
from monitor.snippet import build_snippet
from monitor.textindex import TextIndex, index_text
from monitor.watchlist import Watchlist

Trigger = tuple[bool, bool, str]  # (prefix?, folded?, key)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One query of one watchlist, as the index knows it."""

    watchlist: int
    role: str  # "match", "exclude" or "ignore"
    ordinal: int  # place in its list in the file
    query: Query


@dataclass(slots=True)
class _Due:
    """The queries of one watchlist that have a term in the current document."""

    match: list[Query]
    exclude: list[tuple[int, Query]]  # with the ordinal, to merge with untriggered ones
    ignore: list[Query]


class Matcher:
    """Compiled watchlists; `match` finds the hits of one document among all of them."""

    def __init__(self, watchlists: Sequence[Watchlist]) -> None:
        self.watchlists = tuple(watchlists)
        self._entries: list[_Entry] = []
        self._words: dict[tuple[bool, str], list[int]] = {}
        self._prefixes: dict[tuple[bool, int], dict[str, list[int]]] = {}
        self._always: list[list[tuple[int, Query]]] = [[] for _ in self.watchlists]
        for number, watchlist in enumerate(self.watchlists):
            for role in ("match", "exclude", "ignore"):
                for ordinal, query in enumerate(getattr(watchlist, role)):
                    self._add(_Entry(number, role, ordinal, query))
        self._word_keys = {
            folded: frozenset(k for f, k in self._words if f == folded) for folded in (False, True)
        }
        self._prefix_keys = {key: frozenset(table) for key, table in self._prefixes.items()}

    def _add(self, entry: _Entry) -> None:
        triggers = choose_triggers(entry.query.root)
        if triggers is None:
            # an exclude query like 'NOT police' can match with none of its words present
            self._always[entry.watchlist].append((entry.ordinal, entry.query))
            return
        ident = len(self._entries)
        self._entries.append(entry)
        for is_prefix, folded, key in triggers:
            if is_prefix:
                table = self._prefixes.setdefault((folded, len(key)), {})
                table.setdefault(key, []).append(ident)
            else:
                self._words.setdefault((folded, key), []).append(ident)

    def match(self, doc: Document, feed: str | None = None) -> list[MatchResult]:
        """The hits of a document: one MatchResult (hit=True) per watchlist it is a hit for.

        A watchlist is consulted when its `feeds` is empty, when feed is None, or when it
        names the feed the document came from.
        """
        index = index_text(doc.title, doc.text)
        terms = DocTerms(index)
        results = []
        for number, due in sorted(self._due(index).items()):
            watchlist = self.watchlists[number]
            if feed is not None and watchlist.feeds and feed not in watchlist.feeds:
                continue
            result = self._judge(number, due, terms, full=False)
            if result is not None:
                results.append(result)
        return results

    def explain(self, number: int, doc: Document) -> MatchResult:
        """The full result for the watchlist at position `number`, hit or not."""
        index = index_text(doc.title, doc.text)
        due = self._due(index).get(number, _Due([], [], []))
        result = self._judge(number, due, DocTerms(index), full=True)
        assert result is not None
        return result

    def _due(self, index: TextIndex) -> dict[int, _Due]:
        """Watchlist number -> its queries that have a term in the document."""
        idents: set[int] = set()
        for folded in (False, True):
            for word in index.words(folded) & self._word_keys[folded]:
                idents.update(self._words[folded, word])
        for (folded, length), keys in self._prefix_keys.items():
            table = self._prefixes[folded, length]
            for prefix in index.prefixes(length, folded) & keys:
                idents.update(table[prefix])
        due: dict[int, _Due] = {}
        for ident in sorted(idents):  # sorted: queries keep the order of the file
            entry = self._entries[ident]
            lists = due.setdefault(entry.watchlist, _Due([], [], []))
            if entry.role == "exclude":
                lists.exclude.append((entry.ordinal, entry.query))
            else:
                getattr(lists, entry.role).append(entry.query)
        return due

    def _judge(self, number: int, due: _Due, terms: DocTerms, *, full: bool) -> MatchResult | None:
        """Mask, match, exclude; None when not a hit and no full explanation is wanted."""
        name = self.watchlists[number].name
        if not due.match and not full:
            return None
        masked = terms.masked_positions(t for q in due.ignore for t in iter_terms(q.root))
        ev = Evaluator(terms, masked)
        matched = [q for q in due.match if ev.test(q.root)]
        if not matched:
            return None if not full else MatchResult(name, False)
        excludes = sorted([*due.exclude, *self._always[number]], key=lambda pair: pair[0])
        excluded = [q for _, q in excludes if ev.unmasked.test(q.root)]
        if excluded and not full:
            return None
        spans = [s for q in matched for s in ev.evidence(q.root)]
        return MatchResult(
            watchlist=name,
            hit=not excluded,
            matched=tuple(q.source for q in matched),
            excluded_by=tuple(q.source for q in excluded),
            snippet=build_snippet(terms.index, spans),
        )


def choose_triggers(node: Node) -> list[Trigger] | None:
    """Terms of which at least one must occur for node to match; None if there are none.

    For AND and NEAR one side suffices: the side whose terms look rarest, so that as few
    queries as possible are evaluated for nothing.
    """
    match node:
        case Word(exact=exact, key=key):
            return [(False, not exact, key)]
        case Prefix(exact=exact, key=key):
            return [(True, not exact, key)]
        case Phrase(exact=exact, keys=keys):
            return [(False, not exact, max(keys, key=len))]
        case Not():
            return None
        case Or(children=children):
            found = [choose_triggers(c) for c in children]
            if any(f is None for f in found):
                return None
            return [t for f in found if f is not None for t in f]
        case And(children=children):
            return _rarest([choose_triggers(c) for c in children])
        case Near(left=left, right=right):
            return _rarest([choose_triggers(left), choose_triggers(right)])
    raise TypeError(node)  # pragma: no cover


def _rarest(options: list[list[Trigger] | None]) -> list[Trigger] | None:
    usable = [o for o in options if o is not None]
    return min(usable, key=_commonness) if usable else None


def _commonness(triggers: list[Trigger]) -> float:
    """A guess at how often the terms occur: short, folded and prefix terms are common."""
    return sum((4 if p else 1) * (2 if f else 1) / max(len(k), 1) for p, f, k in triggers)


def compile_watchlists(watchlists: Sequence[Watchlist]) -> Matcher:
    """Build the term index over every query of every watchlist, once per (re)load."""
    return Matcher(watchlists)


def explain(watchlist: Watchlist, doc: Document) -> MatchResult:
    """Why a document is or is not a hit for one watchlist: matched, excluded_by, snippet."""
    return Matcher([watchlist]).explain(0, doc)


def match_query(query: Query, doc: Document) -> bool:
    """Whether one query matches a document (searching stored articles)."""
    index = index_text(doc.title, doc.text)
    return Evaluator(DocTerms(index)).test(query.root)
