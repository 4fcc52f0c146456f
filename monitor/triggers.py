"""The term-to-query index: which queries have a term in a document, without scanning for any.

Every query gets triggers: terms of which at least one must occur for it to match (for AND
and NEAR one side suffices, the one that looks rarest). One dict holds every trigger word,
exact and folded together (an exact key has a capital and a folded key is a folded word: were
the two ever equal, a query would only be evaluated needlessly, never missed); a document's
distinct words are intersected with it in C, then its folded forms are. A query that needs
a second word (a name, a phrase, an AND) is filed under that word too and found only when
the document holds both; title: words are looked for in the title alone. Trigger prefixes
are grouped by their first letters, so one pass over the document's words finds the few
groups worth a substring search. Only the queries found that way are evaluated. A query that
needs no word at all (an exclude such as 'NOT police') has no triggers and is always
evaluated.

Before a triggered query is evaluated, its presence check (compile_presence) rules it out
with dict lookups alone when a word it needs is missing: no positions are located for it.
"""

from __future__ import annotations

from collections.abc import Callable, KeysView
from itertools import chain

from monitor.query import And, Near, Node, Not, Or, Phrase, Prefix, Word
from monitor.textindex import TextIndex, slicer

Trigger = tuple[bool, bool, str, bool]  # (prefix?, folded?, key, in the title only?)
Need = tuple[bool, str]  # (folded?, word) a query needs
_FEW_PREFIXES = 12  # up to this many, each prefix is looked for on its own
_SHORT = 3  # prefixes shorter than this are always looked for on their own
_STEM = 5  # longest stem that groups prefixes
_COMMON = """a about after all also an and are as at be been but by can could do for from had
has have he her his how i if in into is it its just last like made make many may more most mr ms
new no not now of on one only or other our out over people police said say says she so some than
that the their them there they this time to two up us was we were what when which who will with
would year years you government minister officers officer report london uk british court told"""
# the most frequent words of English news text: a poor choice of trigger for AND and NEAR,
# since nearly every article holds them
COMMON_WORDS = frozenset(_COMMON.split())


def choose_triggers(node: Node) -> list[Trigger] | None:
    """Terms of which at least one must occur for node to match; None if there are none."""
    match node:
        case Word(exact=exact, key=key, title=title):
            return [(False, not exact, key, title)]
        case Prefix(exact=exact, key=key, title=title):
            return [(True, not exact, key, title)]
        case Phrase(exact=exact, keys=keys, title=title):
            rarest = min(keys, key=lambda k: _commonness([(False, not exact, k, title)]))
            return [(False, not exact, rarest, title)]
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
    """A guess at how often the terms occur: short, common, folded and prefix terms often;
    a title holds a few words, so a term there far less often."""
    return sum(
        (4 if p else 1)
        * (2 if f else 1)
        * (20 if k.lower() in COMMON_WORDS else 1)
        / (20 if title else 1)
        / len(k)
        for p, f, k, title in triggers
    )


class _Prefixes:
    """The trigger prefixes of one form (exact or folded), arranged for finding them."""

    def __init__(self, table: dict[str, _Group]) -> None:
        self.table = table
        self.stems: dict[str, list[str]] = {}
        if len(table) <= _FEW_PREFIXES:
            self.alone = list(table)
            self.length = 0
            return
        self.alone = [p for p in table if len(p) < _SHORT]
        grouped = [p for p in table if len(p) >= _SHORT]
        self.length = min(_STEM, *map(len, grouped)) if grouped else 0
        for prefix in grouped:
            self.stems.setdefault(prefix[: self.length], []).append(prefix)

    def present(self, index: TextIndex, folded: bool) -> list[str]:
        """The prefixes some word of the document begins with."""
        lines = index.word_lines(folded)
        found = [p for p in self.alone if "\n" + p in lines]
        if self.stems:
            # the stems of the document's words, folded or not: a superset is harmless
            words = chain(index.vocab, index.refolded) if folded else index.vocab
            stems = self.stems.keys() & dict.fromkeys(map(slicer(self.length), words)).keys()
            length = self.length
            for stem in stems:
                found += [p for p in self.stems[stem] if len(p) == length or "\n" + p in lines]
        return found


class _Group:
    """The queries of one trigger, by the second word they need (if any)."""

    __slots__ = ("alone", "exact", "folded")

    def __init__(self) -> None:
        self.alone: list[int] = []  # need no other word
        self.exact: dict[str, list[int]] = {}  # need also this exact word
        self.folded: dict[str, list[int]] = {}  # need also this folded word

    def add(self, ident: int, second: Need | None) -> None:
        if second is None:
            ids = self.alone
        else:
            folded, word = second
            ids = (self.folded if folded else self.exact).setdefault(word, [])
        if not ids or ids[-1] != ident:
            ids.append(ident)

    def collect(self, found: set[int], vocab: KeysView[str], refolded: KeysView[str]) -> None:
        """Add the ids whose second word, if they need one, is in the document."""
        found.update(self.alone)
        exact, folded = self.exact, self.folded
        if exact:
            for word in exact.keys() & vocab:
                found.update(exact[word])
        if folded:
            for word in folded.keys() & vocab:
                found.update(folded[word])
            if refolded:
                for word in folded.keys() & refolded:
                    found.update(folded[word])


class TriggerIndex:
    """Trigger terms -> ids of the queries they trigger.

    A query that needs two words (a name, a phrase, an AND) is filed under its trigger and
    the rarest other word it needs, and is found only when the document holds both: one
    more dict lookup in C instead of a call to check each query. A title: word is looked
    for among the title's words only.
    """

    def __init__(self) -> None:
        self._words: dict[str, _Group] = {}
        self._title_words: dict[str, _Group] = {}
        self._prefix_tables: dict[bool, dict[str, _Group]] = {False: {}, True: {}}
        self._prefixes: list[tuple[bool, _Prefixes]] = []

    def add(
        self, ident: int, triggers: list[Trigger], needs: frozenset[Need] = frozenset()
    ) -> None:
        """Index one query under each of its triggers (and a second word it needs)."""
        for is_prefix, folded, key, title in triggers:
            if is_prefix:  # a title: prefix is looked for everywhere: rare, and still found
                table = self._prefix_tables[folded]
                others = needs
            else:
                table = self._title_words if title else self._words
                others = needs - {(folded, key)}
            second = min(others, key=_rarity) if others else None
            group = table.get(key)
            if group is None:
                group = table[key] = _Group()
            group.add(ident, second)

    def freeze(self) -> None:
        """Arrange the prefixes once every query is in."""
        self._prefixes = [
            (folded, _Prefixes(table)) for folded, table in self._prefix_tables.items() if table
        ]

    def find(self, index: TextIndex) -> set[int]:
        """Ids of the queries with a trigger (and the second word they need) in the document."""
        words = self._words
        vocab, refolded = index.vocab.keys(), index.refolded.keys()
        found: set[int] = set()
        for word in words.keys() & vocab:
            words[word].collect(found, vocab, refolded)
        if refolded:
            for word in words.keys() & refolded:
                words[word].collect(found, vocab, refolded)
        titled = self._title_words
        if titled and index.boundary:
            for form in (False, True):
                for word in titled.keys() & index.title_words(form):
                    titled[word].collect(found, vocab, refolded)
        for folded, prefixes in self._prefixes:
            for prefix in prefixes.present(index, folded):
                prefixes.table[prefix].collect(found, vocab, refolded)
        return found


def required_words(node: Node) -> frozenset[Need]:
    """(folded?, word) that must all occur somewhere in a document for node to match."""
    match node:
        case Word(exact=exact, key=key):
            return frozenset([(not exact, key)])
        case Phrase(exact=exact, keys=keys):
            return frozenset((not exact, k) for k in keys)
        case Prefix() | Not():
            return frozenset()
        case And(children=children):
            return frozenset().union(*map(required_words, children))
        case Or(children=children):
            return frozenset.intersection(*map(required_words, children))
        case Near(left=left, right=right):
            return required_words(left) | required_words(right)
    raise TypeError(node)  # pragma: no cover


def _rarity(need: Need) -> float:
    folded, word = need
    return _commonness([(False, folded, word, False)])


Presence = Callable[[TextIndex], bool]


def compile_presence(node: Node) -> Presence:
    """A quick necessary condition for the node to match: every word it needs is present.

    Lookups only, no positions and no masks: a query whose words are missing is ruled out
    before anything is located. NOT and NEAR distances are left to the full check.
    """
    match node:
        case Word(key=key, exact=True, title=False):
            return lambda index: key in index.vocab
        case Word(key=key, title=False):
            return lambda index: key in index.vocab or key in index.refolded
        case Phrase(keys=keys, exact=True, title=False):
            keyset = frozenset(keys)
            return lambda index: index.vocab.keys() >= keyset
        case Phrase(keys=keys, title=False):
            return words_present(keys, True)
        case Word(exact=exact, title=True) | Phrase(exact=exact, title=True):
            keyset = frozenset(node.keys if isinstance(node, Phrase) else (node.key,))
            folded = not exact
            return lambda index: index.title_words(folded) >= keyset
        case Prefix(key=key, exact=exact, title=False):
            folded = not exact
            needle = "\n" + key  # a word of the document's word lines begins with key
            return lambda index: needle in index.word_lines(folded)
        case Prefix(key=key, exact=exact, title=True):
            folded = not exact
            return lambda index: index.has_prefix(key, folded, True)
        case And(children=children):
            return _all_present(tuple(compile_presence(c) for c in children))
        case Or(children=children):
            return _any_present_of(children)
        case Not():
            return lambda index: True
        case Near(left=left, right=right):
            return _all_present((compile_presence(left), compile_presence(right)))
    raise TypeError(node)  # pragma: no cover


def words_present(keys: tuple[str, ...], folded: bool) -> Presence:
    """Whether every one of the words occurs (exact, or folded), in any order."""
    keyset = frozenset(keys)
    if not folded:
        return lambda index: index.vocab.keys() >= keyset

    def all_words_present(index: TextIndex) -> bool:
        vocab, refolded = index.vocab, index.refolded
        for key in keyset:  # noqa: SIM110 - all() would build a generator per call
            if key not in vocab and key not in refolded:
                return False
        return True

    return all_words_present


def _any_present_of(children: tuple[Node, ...]) -> Presence:
    """Whether some child of an OR is present: its plain words are looked up together."""
    plain = [c for c in children if isinstance(c, Word) and not c.title]
    exact = frozenset(c.key for c in plain if c.exact)
    folded = frozenset(c.key for c in plain if not c.exact)
    rest = tuple(compile_presence(c) for c in children if not (isinstance(c, Word) and not c.title))

    def any_present_of(index: TextIndex) -> bool:
        # a dict view against a small set looks up the set's words, in C
        if exact and not index.vocab.keys().isdisjoint(exact):
            return True
        if folded and not (
            index.vocab.keys().isdisjoint(folded) and index.refolded.keys().isdisjoint(folded)
        ):
            return True
        for check in rest:  # noqa: SIM110 - any() would build a generator per call
            if check(index):
                return True
        return False

    return any_present_of


def _all_present(checks: tuple[Presence, ...]) -> Presence:
    def all_present(index: TextIndex) -> bool:
        for check in checks:  # noqa: SIM110 - all() would build a generator per call
            if not check(index):
                return False
        return True

    return all_present
