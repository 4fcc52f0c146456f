"""Warnings about watchlists that load but probably do not do what their writer meant.

`monitor check` prints them; the daemon logs them. None stops a watchlist from loading.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from monitor.errors import ConfigError
from monitor.query import And, Near, Node, Or, Phrase, Prefix, Query, Word, iter_terms
from monitor.textindex import WORD, fold_word, has_capital
from monitor.watchlist import ROLES, Watchlist

# a term that looks like an operator: lowercase `or`, `near/5`, or NEAR's distance joined to it
# by something other than '/' (`NEAR-5`, `NEAR5`), which in any case is a word or a phrase
_LOWER_OPERATOR = re.compile(r"(and|or|not)([-/.]\d+)?|near(?:[-/.]?(\d+))?", re.IGNORECASE)


def lint_watchlist(w: Watchlist) -> list[ConfigError]:
    """Warnings for likely mistakes: lowercase met, lowercase operators, repeated queries..."""
    if not w.match:
        return [ConfigError("matches nothing: the watchlist has no match queries", w.location(()))]
    out: list[ConfigError] = []
    first_seen: dict[tuple[str, str], int] = {}
    matches = {_normal(q.source) for q in w.match}
    for role, i, query in all_queries(w):
        for offset, message in [*_query_warnings(query, role), *_grouping_warnings(query)]:
            out.append(ConfigError(f"{role}: {message}", w.location((role, i), offset)))
        source = _normal(query.source)
        if (role, source) in first_seen:
            where = w.location((role, first_seen[role, source]), 0)
            out.append(
                ConfigError(f"{role}: repeats the query at {where}", w.location((role, i), 0))
            )
        first_seen.setdefault((role, source), i)
        if role == "exclude" and source in matches:
            message = "exclude: the same query is in match, so everything it finds is excluded"
            out.append(ConfigError(message, w.location((role, i), 0)))
        if role == "ignore":
            out += _masked_match_terms(w, i, query)
    return out


def all_queries(w: Watchlist) -> list[tuple[str, int, Query]]:
    """(role, index, query) for every query of a watchlist, in file order."""
    return [(role, i, q) for role in ROLES for i, q in enumerate(getattr(w, role))]


def _normal(source: str) -> str:
    return " ".join(source.split())


def _masked_match_terms(w: Watchlist, i: int, ignore: Query) -> list[ConfigError]:
    """A warning when an ignore entry is one word a match query looks for: masked wherever it
    occurs, that word can never be found (ignore = ['Met'] silences every Met query)."""
    word = ignore.root
    if not isinstance(word, Word):
        return []
    masked = fold_word(word.text)
    for j, query in enumerate(w.match):
        for term in iter_terms(query.root, positive_only=True):
            words = term.words if isinstance(term, Phrase) else (term.text,)
            folded = [fold_word(x) for x in words]
            if masked in folded or (isinstance(term, Prefix) and masked.startswith(folded[0])):
                written = ignore.source[word.start : word.end]
                message = (
                    f"ignore: masks every {written!r}, so the match query at "
                    f"{w.location(('match', j), term.start)} cannot find it there; "
                    "ignore only the phrases in which it should not count"
                )
                return [ConfigError(message, w.location(("ignore", i), word.start))]
    return []


def _query_warnings(query: Query, role: str) -> Iterator[tuple[int, str]]:
    """(offset, message) for each suspicious term of a query."""
    for term in iter_terms(query.root):
        written = query.source[term.start : term.end]
        operator = _LOWER_OPERATOR.fullmatch(written)
        if operator and (operator[3] or not written.isupper()):
            meant = f"NEAR/{operator[3]}" if operator[3] else written.upper()
            how = (
                f"operators are written in capitals: {meant}"
                if meant == written.upper()
                else f"a NEAR distance is written with a slash: {meant}"
            )
            yield term.start, f"{written!r} is read as a word, not an operator; {how}"
        elif isinstance(term, Prefix) and (glued := WORD.match(query.source, term.end)):
            yield term.end - 1, _glued_prefix(written, glued.group())
        elif isinstance(term, Prefix) and len(term.text) < 3:
            yield term.start, f"{written!r} matches every word starting with {term.text!r}"
        elif role == "ignore" and term.exact:
            # masking too little lets the weather back in; masking any case costs nothing
            yield (
                term.start,
                (
                    f"{written} has capitals, so only that spelling is masked "
                    f"({written.upper()} and other spellings still count); "
                    "written all in lowercase it masks any case and accents"
                ),
            )
        elif role != "ignore" and not term.exact and _has_met(term):
            yield (
                term.start,
                (
                    f'{written!r} is all lowercase, so it also matches the verb ("met with"); '
                    "write Met for the Metropolitan Police"
                ),
            )
        elif isinstance(term, Word | Phrase) and "*" in written:
            yield term.start + written.index("*"), _star_in_quotes(term, written)
        elif isinstance(term, Phrase) and _case_trap(term):
            yield (
                term.start,
                (
                    f"{written} has capitals, so it matches only that exact capitalisation "
                    f"(not {' '.join(w.capitalize() for w in term.words)!r}); "
                    "write it all in lowercase to match any capitalisation"
                ),
            )


def _glued_prefix(prefix: str, rest: str) -> str:
    """Why 'Met*Police' is two terms: '*' ends a prefix, it is no wildcard inside a word."""
    return (
        f"'*' ends a prefix, so {prefix}{rest} is read as {prefix} AND {rest}; "
        f"write {prefix} {rest} if that is meant ('*' cannot stand inside a word)"
    )


def _star_in_quotes(term: Word | Phrase, written: str) -> str:
    """Why a '*' between quotes does nothing, and the query that does what it meant."""
    words = term.words if isinstance(term, Phrase) else (term.text,)
    starred = set(_STARRED.findall(written))
    meant = " NEAR/1 ".join(f"{w}*" if w in starred else w for w in words)
    return (
        f"'*' inside quotes is not a prefix: {written} matches only the whole words; "
        f"for any ending write {meant}"
    )


_STARRED = re.compile(r"([^\W_]+)\*")  # a word written with a '*' after it


def _has_met(term: Word | Prefix | Phrase) -> bool:
    if isinstance(term, Phrase):
        return "met" in term.keys
    return term.key == "met"


def _case_trap(phrase: Phrase) -> bool:
    """A phrase with a capital and a lowercase content word: "Casey review", "Met police",
    "metropolitan Police"."""
    words = phrase.words
    return any(map(has_capital, words)) and any(len(w) >= 4 and w.islower() for w in words)


def _grouping_warnings(query: Query) -> Iterator[tuple[int, str]]:
    """(offset, message) where operators group otherwise than the writer probably meant."""
    source = query.source
    for node in _nodes(query.root):
        if isinstance(node, Or):
            yield from _near_beside_or(source, node.children)
        elif isinstance(node, And):
            yield from _names_side_by_side(source, node.children)


def _nodes(node: Node) -> Iterator[Node]:
    """node and every node under it."""
    yield node
    match node:
        case And(children=children) | Or(children=children):
            for child in children:
                yield from _nodes(child)
        case Near(left=left, right=right):
            yield from _nodes(left)
            yield from _nodes(right)


def _near_beside_or(source: str, children: tuple[Node, ...]) -> Iterator[tuple[int, str]]:
    """'Met NEAR/5 officer* OR constable*' reads as (Met NEAR/5 officer*) OR constable*: any
    article naming a constable. NEAR binds tighter than OR, as the spec says, but an OR term
    after a NEAR written like its right side (both lowercase, or both with capitals) was
    probably meant as one more word of that side. 'Met NEAR police OR IOPC', 'IOPC OR Met NEAR
    police' and two NEARs joined by OR are what they look like."""
    for near, term in itertools.pairwise(children):
        if not (isinstance(near, Near) and _is_term(term)):
            continue
        left, right = _extent(source, near.left), _extent(source, near.right)
        if _bracketed(source, left[0], right[1]) or _exact(near.right) != _exact(term):
            continue
        if source[right[1] : term.start].strip() != "OR":
            continue  # (a OR Met NEAR police) OR officer*: the groups were flattened into one
        whole, other = source[left[0] : right[1]], _text(source, term)
        side = f"{source[left[0] : right[0]]}({source[right[0] : right[1]]} OR {other})"
        yield (
            near.start,
            f"NEAR binds tighter than OR, so this reads as ({whole}) OR {other}; if {other} is "
            f"meant as one more word of NEAR's side, write {side} (or put brackets around the "
            "NEAR to keep this reading without a warning)",
        )


def _extent(source: str, node: Node) -> tuple[int, int]:
    """Where a node is written, with the brackets around it: a group's span leaves them out."""
    start, end = node.start, node.end
    while _bracketed(source, start, end):
        start = source.rindex("(", 0, start)
        end = source.index(")", end) + 1
    return start, end


def _exact(node: Node) -> bool | None:
    """Whether the terms of a side are written with capitals; None when some are, some not."""
    kinds = {term.exact for term in iter_terms(node)}
    return kinds.pop() if len(kinds) == 1 else None


def _is_term(node: Node) -> bool:
    return isinstance(node, Word | Prefix | Phrase)


def _bracketed(source: str, start: int, end: int) -> bool:
    """Whether source[start:end] is written inside brackets: '(' just before, ')' just after."""
    return source[:start].rstrip().endswith("(") and source[end:].lstrip().startswith(")")


def _names_side_by_side(source: str, children: tuple[Node, ...]) -> Iterator[tuple[int, str]]:
    """'Met Police' without quotes is Met AND Police, each anywhere in the article: two
    capitalised words side by side with nothing between them were probably meant as a phrase."""
    for a, b in itertools.pairwise(children):
        if not (isinstance(a, Word) and isinstance(b, Word) and a.exact and b.exact):
            continue
        if a.title != b.title or any(_LOWER_OPERATOR.fullmatch(w.text) for w in (a, b)):
            continue  # title:Met Police (a phrase is in the title or out of it); Met NEAR5
        if source[a.end : b.start].strip():
            continue  # AND written out: meant as it reads
        written = source[a.start : b.end]
        yield (
            a.start,
            (
                f"{written} is read as {a.text} AND {b.text}, each anywhere in the article; "
                f'for the words side by side write "{a.text} {b.text}" (or write AND between '
                "them to keep this reading without a warning)"
            ),
        )


def _text(source: str, node: Node) -> str:
    return source[node.start : node.end]
