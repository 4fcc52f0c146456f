"""The nodes of a parsed query and the walks over them.

Every node keeps the [start, end) offsets of the query text it was read from, so warnings
about a term can point at its line and column in a watchlist file. `title:` is not a node:
the parser pushes it down into the terms it covers, where matching needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Word:
    """A whole word; `key` is what is compared: the exact text, or its folded form."""

    text: str
    exact: bool
    key: str
    title: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Prefix:
    """Any word beginning with `text` (written `text*`)."""

    text: str
    exact: bool
    key: str
    title: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive words; punctuation and hyphens between them do not matter."""

    words: tuple[str, ...]
    exact: bool
    keys: tuple[str, ...]
    title: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Not:
    """Matches when its child does not."""

    child: Node
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class And:
    """Matches when every child does."""

    children: tuple[Node, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Or:
    """Matches when any child does."""

    children: tuple[Node, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Near:
    """Some left and some right term at most `distance` word positions apart."""

    left: Node
    right: Node
    distance: int
    start: int
    end: int


Term = Word | Prefix | Phrase
Node = Word | Prefix | Phrase | Not | And | Or | Near


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: its AST root and the text it was read from."""

    root: Node
    source: str

    def __str__(self) -> str:
        return self.source


def iter_terms(node: Node, *, positive_only: bool = False) -> Iterator[Term]:
    """Every word, prefix and phrase under node (skipping those under NOT if asked)."""
    match node:
        case Word() | Prefix() | Phrase():
            yield node
        case Not(child=child):
            if not positive_only:
                yield from iter_terms(child)
        case And(children=children) | Or(children=children):
            for child in children:
                yield from iter_terms(child, positive_only=positive_only)
        case Near(left=left, right=right):
            yield from iter_terms(left, positive_only=positive_only)
            yield from iter_terms(right, positive_only=positive_only)


def needs_word(node: Node) -> bool:
    """Whether node can only match a document that contains at least one of its words."""
    match node:
        case Word() | Prefix() | Phrase():
            return True
        case Not():
            return False
        case And(children=children):
            return any(needs_word(c) for c in children)
        case Or(children=children):
            return all(needs_word(c) for c in children)
        case Near():
            return True
    raise TypeError(node)  # pragma: no cover - the node types above are all there is


def restrict_to_title(node: Node) -> Node:
    """The same node with every term restricted to the title (what title:(...) means)."""
    match node:
        case Word() | Prefix() | Phrase():
            return _title_term(node)
        case Not(child=child):
            return Not(restrict_to_title(child), node.start, node.end)
        case And(children=children):
            return And(tuple(restrict_to_title(c) for c in children), node.start, node.end)
        case Or(children=children):
            return Or(tuple(restrict_to_title(c) for c in children), node.start, node.end)
        case Near(left=left, right=right):
            return Near(
                restrict_to_title(left),
                restrict_to_title(right),
                node.distance,
                node.start,
                node.end,
            )
    raise TypeError(node)  # pragma: no cover


def _title_term(term: Term) -> Term:
    if isinstance(term, Phrase):
        return Phrase(term.words, term.exact, term.keys, True, term.start, term.end)
    return type(term)(term.text, term.exact, term.key, True, term.start, term.end)


class Side:
    """One side of a NEAR (a term or an OR-group of terms), arranged to be found at once."""

    __slots__ = ("exact", "folded", "others", "prefixes", "size")

    def __init__(self, terms: list[Term]) -> None:
        self.size = len(terms)
        plain = [t for t in terms if not t.title and not isinstance(t, Phrase)]
        self.exact = tuple(t.key for t in plain if isinstance(t, Word) and t.exact)
        self.folded = tuple(t.key for t in plain if isinstance(t, Word) and not t.exact)
        self.prefixes = tuple((not t.exact, t.key) for t in plain if isinstance(t, Prefix))
        self.others = tuple(t for t in terms if t.title or isinstance(t, Phrase))


_SIDES: dict[int, tuple[Near, tuple[Side, Side]]] = {}


def near_sides(node: Near) -> tuple[Side, Side]:
    """The two sides of a NEAR, made once per node (the same objects every time)."""
    cached = _SIDES.get(id(node))
    if cached is not None and cached[0] is node:
        return cached[1]
    sides = Side(_or_terms(node.left)), Side(_or_terms(node.right))
    if len(_SIDES) > 100_000:
        _SIDES.clear()
    _SIDES[id(node)] = (node, sides)  # holding node keeps its id from reuse
    return sides


def _or_terms(node: Node) -> list[Term]:
    """The terms of a side of NEAR: one term, or an OR-group of them however nested."""
    if isinstance(node, Or):
        return [t for child in node.children for t in _or_terms(child)]
    assert isinstance(node, Word | Prefix | Phrase), "parse_query allows nothing else"
    return [node]
