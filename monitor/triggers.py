"""The term-to-query index: which queries have a term in a document, without scanning for any.

Every query gets triggers: terms of which at least one must occur for it to match (for AND
and NEAR one side suffices, the one that looks rarest). One dict holds every trigger word,
exact and folded together (an exact key has a capital, a folded one never does, so the two
cannot be confused in a way that loses a query); a document's distinct words are intersected
with it in C, then its folded forms are. Trigger prefixes are grouped by their first letters,
so one pass over the document's words finds the few groups worth a substring search. Only
the queries found that way are evaluated. A query that needs no word at all (an exclude such
as 'NOT police') has no triggers and is always evaluated.
"""

from __future__ import annotations

from itertools import chain

from monitor.query import And, Near, Node, Not, Or, Phrase, Prefix, Word
from monitor.textindex import TextIndex, slicer

Trigger = tuple[bool, bool, str]  # (prefix?, folded?, key)
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
        case Word(exact=exact, key=key):
            return [(False, not exact, key)]
        case Prefix(exact=exact, key=key):
            return [(True, not exact, key)]
        case Phrase(exact=exact, keys=keys):
            rarest = min(keys, key=lambda k: _commonness([(False, not exact, k)]))
            return [(False, not exact, rarest)]
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
    """A guess at how often the terms occur: short, common, folded and prefix terms often."""
    return sum(
        (4 if p else 1) * (2 if f else 1) * (20 if k.lower() in COMMON_WORDS else 1) / len(k)
        for p, f, k in triggers
    )


class _Prefixes:
    """The trigger prefixes of one form (exact or folded), arranged for finding them."""

    def __init__(self, table: dict[str, list[int]]) -> None:
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


class TriggerIndex:
    """Trigger terms -> ids of the queries they trigger."""

    def __init__(self) -> None:
        self._words: dict[str, list[int]] = {}
        self._prefix_tables: dict[bool, dict[str, list[int]]] = {False: {}, True: {}}
        self._prefixes: list[tuple[bool, _Prefixes]] = []

    def add(self, ident: int, triggers: list[Trigger]) -> None:
        """Index one query under each of its triggers."""
        for is_prefix, folded, key in triggers:
            table = self._prefix_tables[folded] if is_prefix else self._words
            ids = table.setdefault(key, [])
            if not ids or ids[-1] != ident:
                ids.append(ident)

    def freeze(self) -> None:
        """Arrange the prefixes once every query is in."""
        self._prefixes = [
            (folded, _Prefixes(table)) for folded, table in self._prefix_tables.items() if table
        ]

    def find(self, index: TextIndex) -> set[int]:
        """Ids of the queries with a trigger in the document."""
        words = self._words
        found: set[int] = set()
        for word in words.keys() & index.vocab.keys():
            found.update(words[word])
        if index.refolded:
            for word in words.keys() & index.refolded.keys():
                found.update(words[word])
        for folded, prefixes in self._prefixes:
            for prefix in prefixes.present(index, folded):
                found.update(prefixes.table[prefix])
        return found
