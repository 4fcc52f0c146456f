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

from monitor.evaluate import Check, DocTerms, Evaluator, compile_check
from monitor.models import Document, MatchResult
from monitor.query import And, Near, Node, Or, Phrase, Prefix, Query, Term, iter_terms
from monitor.snippet import build_snippet
from monitor.textindex import TextIndex, index_text
from monitor.triggers import TriggerIndex, choose_triggers
from monitor.watchlist import Watchlist

WordList = tuple[tuple[bool, str, bool], ...]  # (folded?, word or prefix, prefix?)
SNIPPET_QUERIES = 16  # the snippet shows the strongest match among the first this many


@dataclass(frozen=True, slots=True)
class _Entry:
    """One query of one watchlist, compiled."""

    watchlist: int
    role: str  # "match", "exclude" or "ignore"
    ordinal: int  # place in its list in the file
    query: Query
    check: Check
    placed: WordList  # words whose positions matching needs: in phrases and NEAR
    shown: WordList  # words whose positions a snippet needs: every term not under NOT


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
        for number, watchlist in enumerate(self.watchlists):
            for role in ("match", "exclude", "ignore"):
                for ordinal, query in enumerate(getattr(watchlist, role)):
                    self._add(_compile_entry(number, role, ordinal, query))
        self._index.freeze()

    def _add(self, entry: _Entry) -> None:
        triggers = choose_triggers(entry.query.root)
        if triggers is None:
            # an exclude query like 'NOT police' can match with none of its words present
            self._always[entry.watchlist].append(entry)
            return
        self._index.add(len(self._entries), triggers)
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
        due: dict[int, _Due] = {}
        entries = self._entries
        for ident in sorted(self._index.find(terms.index)):  # sorted: the order of the file
            entry = entries[ident]
            lists = due.get(entry.watchlist)
            if lists is None:
                lists = due[entry.watchlist] = _Due([], [], [])
            if entry.role == "match":
                lists.match.append(entry)
            elif entry.role == "exclude":
                lists.exclude.append(entry)
            else:
                lists.ignore.append(entry)
        return due

    def _judge(self, number: int, due: _Due, terms: DocTerms, *, full: bool) -> MatchResult | None:
        """Mask, match, exclude; None when not a hit and no full explanation is wanted."""
        name = self.watchlists[number].name
        if not due.match and not full:
            return None
        _prefetch(terms.index, [e.placed for e in (*due.match, *due.ignore)])
        masked = terms.masked_positions(t for e in due.ignore for t in iter_terms(e.query.root))
        ev = Evaluator(terms, masked)
        hits = [e for e in due.match if e.check(ev)]
        matched = [e.query for e in hits]
        if not matched:
            return None if not full else MatchResult(name, False)
        excludes = sorted([*due.exclude, *self._always[number]], key=lambda e: e.ordinal)
        excluded = [e.query for e in excludes if e.check(ev.unmasked)]
        if excluded and not full:
            return None
        shown = hits[:SNIPPET_QUERIES]
        _prefetch(terms.index, [e.shown for e in shown])
        spans = [s for e in shown for s in ev.evidence(e.query.root)]
        return MatchResult(
            watchlist=name,
            hit=not excluded,
            matched=tuple(q.source for q in matched),
            excluded_by=tuple(q.source for q in excluded),
            snippet=build_snippet(terms.index, spans),
        )


def _compile_entry(number: int, role: str, ordinal: int, query: Query) -> _Entry:
    positive = list(iter_terms(query.root, positive_only=True))
    placed = [t for t in positive if isinstance(t, Phrase)] + _near_terms(query.root)
    check = compile_check(query.root)
    return _Entry(number, role, ordinal, query, check, _words_of(placed), _words_of(positive))


def _near_terms(node: Node) -> list[Term]:
    """The terms of every NEAR in node: they need positions, not only presence."""
    match node:
        case Near(left=left, right=right):
            return [*iter_terms(left), *iter_terms(right)]
        case And(children=children) | Or(children=children):
            return [t for c in children for t in _near_terms(c)]
    return []  # NEAR is never under NOT, and terms alone need only presence


def _words_of(terms: list[Term]) -> WordList:
    """(folded?, word, prefix?) for each word of the terms."""
    out: list[tuple[bool, str, bool]] = []
    for term in terms:
        if isinstance(term, Phrase):
            out += [(not term.exact, key, False) for key in term.keys]
        else:
            out.append((not term.exact, term.key, isinstance(term, Prefix)))
    return tuple(out)


def _prefetch(index: TextIndex, lists: list[WordList]) -> None:
    """Find the positions of the words the due queries will ask for, in one pass per form."""
    wanted: dict[bool, set[str]] = {False: set(), True: set()}
    for words in lists:
        for folded, word, is_prefix in words:
            if is_prefix:
                wanted[folded].update(index.words_with_prefix(word, folded))
            else:
                wanted[folded].add(word)
    for folded, found in wanted.items():
        index.prefetch(found, folded)


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
