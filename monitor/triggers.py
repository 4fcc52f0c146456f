"""The term-to-query index: which queries have a term in a document, without scanning for any.

Every query gets triggers: terms of which at least one must occur for it to match (for AND
and NEAR one side suffices, the one that looks rarest). A document's distinct words are
intersected with the trigger words, and its words are searched for the trigger prefixes;
only the queries found that way are evaluated. A query that needs no word at all (an exclude
such as 'NOT police') has no triggers and is always evaluated.
"""

from __future__ import annotations

from monitor.query import And, Near, Node, Not, Or, Phrase, Prefix, Word
from monitor.textindex import TextIndex

Trigger = tuple[bool, bool, str]  # (prefix?, folded?, key)
_FEW_PREFIXES = 32  # up to this many, each prefix gets its own binary search per document
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
    """A guess at how often the terms occur: short, common, folded and prefix terms often."""
    return sum(
        (4 if p else 1) * (2 if f else 1) * (20 if k.lower() in COMMON_WORDS else 1) / len(k)
        for p, f, k in triggers
    )


class TriggerIndex:
    """Trigger terms -> ids of the queries they trigger."""

    def __init__(self) -> None:
        self._words: dict[bool, dict[str, list[int]]] = {False: {}, True: {}}
        self._prefixes: dict[bool, dict[str, list[int]]] = {False: {}, True: {}}
        self._word_keys: dict[bool, frozenset[str]] = {}
        self._stems: dict[bool, tuple[int, dict[str, list[str]], frozenset[str]]] = {}

    def add(self, ident: int, triggers: list[Trigger]) -> None:
        """Index one query under each of its triggers."""
        for is_prefix, folded, key in triggers:
            table = (self._prefixes if is_prefix else self._words)[folded]
            ids = table.setdefault(key, [])
            if not ids or ids[-1] != ident:
                ids.append(ident)

    def freeze(self) -> None:
        """Build the lookup sets once every query is in."""
        for folded in (False, True):
            self._word_keys[folded] = frozenset(self._words[folded])
            prefixes = self._prefixes[folded]
            if len(prefixes) > _FEW_PREFIXES:
                # many prefixes: group them by their first few letters, so that one pass over
                # the document's words finds the groups worth a binary search
                length = min(len(p) for p in prefixes)
                stems: dict[str, list[str]] = {}
                for prefix in prefixes:
                    stems.setdefault(prefix[:length], []).append(prefix)
                self._stems[folded] = (length, stems, frozenset(stems))

    def find(self, index: TextIndex) -> set[int]:
        """Ids of the queries with a trigger in the document."""
        found: set[int] = set()
        for folded in (False, True):
            words = self._words[folded]
            for word in index.words(folded) & self._word_keys[folded]:
                found.update(words[word])
            prefixes = self._prefixes[folded]
            for prefix in self._present_prefixes(index, folded):
                found.update(prefixes[prefix])
        return found

    def _present_prefixes(self, index: TextIndex, folded: bool) -> list[str]:
        if folded not in self._stems:
            candidates = list(self._prefixes[folded])
        else:
            length, stems, stem_keys = self._stems[folded]
            hits = index.prefixes(length, folded) & stem_keys
            candidates = [prefix for stem in hits for prefix in stems[stem]]
        return [p for p in candidates if index.has_prefix(p, folded)]
