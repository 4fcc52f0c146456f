"""The query language: query text -> an AST whose nodes remember where they came from.

::

    query   := or
    or      := and ("OR" and)*
    and     := near (["AND"] near)*          two terms side by side need both
    near    := unary ("NEAR" | "NEAR/n") unary | unary
    unary   := "NOT" unary | primary
    primary := word | word* | "phrase" | "(" or ")" | title:primary

Precedence is NOT, NEAR, AND, OR; operators are written in capitals, so a lowercase `and` is
a word. A word is a run of letters and digits; a bare term joined by hyphens or apostrophes
(`stop-and-search`, `Khan's`) is read as the phrase of its words. Each side of NEAR is a word,
a phrase, a prefix or an OR-group of those. Smart case: a term with a capital letter matches
case-sensitively, an all-lowercase one matches any case and any accents.

Every problem raises QuerySyntaxError with the offset of the character at fault, so a
watchlist file can point at its line and column.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from monitor.querytree import (
    And,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Term,
    Word,
    iter_terms,
    needs_word,
    restrict_to_title,
)
from monitor.textindex import WORD, fold_word, has_capital

__all__ = [
    "And",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Prefix",
    "Query",
    "QuerySyntaxError",
    "Term",
    "Word",
    "iter_terms",
    "needs_word",
    "parse_query",
]

MAX_QUERY_LENGTH = 10_000  # characters; a query is a line a person writes
MAX_DEPTH = 50  # nested parentheses and NOTs
MAX_PHRASE_WORDS = 50
MAX_NEAR = 1000
DEFAULT_NEAR = 10

_OPERATORS = {"AND", "OR", "NOT", "NEAR"}
# A phrase runs from a double quote to the next one, straight or curly, whichever pair was
# typed: editors turn quotes curly as they please, and “Met Police" means the phrase.
_QUOTES = '"“”„'
_CLOSING_QUOTE = re.compile('["“”]')
# inside a bare term these make it a phrase, as they split words in articles too:
# stop-and-search, Khan's (and Khan’s, Khanʼs), snake_case, M&S, 24/7, U.K
_JOINERS = "-'’\u02bc‐‑_&/."
_NEAR_N = re.compile(r"NEAR/(\d{1,7})(?![^\W_])")
_SPACE = re.compile(r"\s+")


class QuerySyntaxError(ValueError):
    """A query that cannot be read; `offset` is the 0-based index of the problem."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at character {offset + 1})")


# -- the lexer --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word prefix phrase ( ) AND OR NOT NEAR title: end
    start: int
    end: int
    words: tuple[str, ...] = ()
    distance: int = 0


def _tokenize(text: str) -> list[_Token]:
    """Cut query text into tokens; stray characters raise at their offset."""
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        space = _SPACE.match(text, i)
        if space:
            i = space.end()
            continue
        token = _read_token(text, i)
        tokens.append(token)
        i = token.end
    tokens.append(_Token("end", len(text), len(text)))
    return tokens


def _read_token(text: str, i: int) -> _Token:
    c = text[i]
    if c in "()":
        return _Token(c, i, i + 1)
    if c in _QUOTES:
        return _read_phrase(text, i)
    if text.startswith("NEAR/", i):
        return _read_near(text, i)
    if WORD.match(text, i):
        return _read_term(text, i)
    raise QuerySyntaxError(_stray_message(c), i)


def _stray_message(c: str) -> str:
    if c == "-":
        return "stray '-': write NOT before a term to leave it out"
    if c in "'’\u02bc":
        return f"stray {c!r}: phrases are written in double quotes"
    if c == "*":
        return "stray '*': write it right after the start of a word, as in vet*"
    shown = repr(c) if c.isprintable() else f"U+{ord(c):04X}"
    return f'stray character {shown}: a query holds words, "phrases", prefix*, operators'


def _read_phrase(text: str, i: int) -> _Token:
    found = _CLOSING_QUOTE.search(text, i + 1)
    if found is None:
        raise QuerySyntaxError("unclosed quote: the phrase needs a closing quote", i)
    close = found.start()
    words = tuple(unicodedata.normalize("NFC", w) for w in WORD.findall(text, i + 1, close))
    if not words:
        raise QuerySyntaxError("empty phrase: put some words between the quotes", i)
    if len(words) > MAX_PHRASE_WORDS:
        raise QuerySyntaxError(f"phrase is longer than {MAX_PHRASE_WORDS} words", i)
    return _Token("phrase", i, close + 1, words)


def _read_near(text: str, i: int) -> _Token:
    m = _NEAR_N.match(text, i)
    if not m or not 1 <= int(m[1]) <= MAX_NEAR:
        raise QuerySyntaxError(f"bad NEAR/n: n must be a whole number from 1 to {MAX_NEAR}", i)
    return _Token("NEAR", i, m.end(), distance=int(m[1]))


def _read_term(text: str, i: int) -> _Token:
    """A word, prefix*, title:, operator, or a hyphenated/apostrophised bare phrase."""
    words: list[str] = []
    j = i
    while True:
        m = WORD.match(text, j)
        assert m is not None
        words.append(unicodedata.normalize("NFC", m.group()))
        j = m.end()
        if j + 1 < len(text) and text[j] in _JOINERS and WORD.match(text, j + 1):
            j += 1
            continue
        break
    if len(words) == 1 and text.startswith(":", j):
        return _read_field(text, i, j)
    if text.startswith("*", j):
        if len(words) > 1:
            raise QuerySyntaxError("a prefix* must be a single word", j)
        return _Token("prefix", i, j + 1, tuple(words))
    if len(words) == 1 and words[0] in _OPERATORS:
        return _Token(words[0], i, j, distance=DEFAULT_NEAR)
    return _Token("word" if len(words) == 1 else "phrase", i, j, tuple(words))


def _read_field(text: str, i: int, colon: int) -> _Token:
    name = text[i:colon]
    if name != "title":
        hint = "; did you mean title:?" if name.lower() == "title" else ""
        raise QuerySyntaxError(f"unknown field {name!r}: only title: is supported{hint}", i)
    return _Token("title:", i, colon + 1)


# -- the parser -------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list, one method per precedence level."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    @property
    def peek(self) -> _Token:
        """The next token, not consumed."""
        return self.tokens[self.i]

    def take(self) -> _Token:
        """Consume and return the next token."""
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node:
        """The whole query; anything left over is an error."""
        node = self.parse_or()
        token = self.peek
        if token.kind == ")":
            raise QuerySyntaxError("unmatched ')': there is no '(' before it", token.start)
        if token.kind != "end":  # pragma: no cover - parse_and consumes every other token
            raise QuerySyntaxError(f"unexpected {token.kind}", token.start)
        return node

    def parse_or(self) -> Node:
        """A OR B OR ...: the loosest level."""
        children = [self.parse_and()]
        while self.peek.kind == "OR":
            op = self.take()
            self.expect_operand(op)
            children.append(self.parse_and())
        return _group(Or, children)

    def parse_and(self) -> Node:
        """A AND B, or A B side by side."""
        children = [self.parse_near()]
        while True:
            kind = self.peek.kind
            if kind == "AND":
                op = self.take()
                self.expect_operand(op)
            elif kind in ("OR", ")", "end"):
                return _group(And, children)
            children.append(self.parse_near())

    def parse_near(self) -> Node:
        """A NEAR/n B, each side checked to be terms or an OR-group of them."""
        left = self.parse_unary()
        if self.peek.kind != "NEAR":
            return left
        op = self.take()
        self.expect_operand(op)
        right = self.parse_unary()
        if self.peek.kind == "NEAR":
            raise QuerySyntaxError(
                "NEAR after NEAR: each side of NEAR must be a word, phrase, prefix or an "
                "OR-group; join two NEARs with AND",
                self.peek.start,
            )
        check_near_side(left)
        check_near_side(right)
        return Near(left, right, op.distance, left.start, right.end)

    def parse_unary(self) -> Node:
        """NOT A, or a primary."""
        token = self.peek
        if token.kind != "NOT":
            return self.parse_primary()
        self.take()
        self.expect_operand(token)
        with_depth = self.enter(token)
        child = self.parse_unary()
        self.depth = with_depth
        return Not(child, token.start, child.end)

    def parse_primary(self, title: bool = False) -> Node:
        """A word, prefix, phrase, (group) or title:X."""
        token = self.take()
        match token.kind:
            case "word":
                return _word(token, title)
            case "prefix":
                return _prefix(token, title)
            case "phrase":
                return _phrase(token, title)
            case "(":
                return self.parse_group(token, title)
            case "title:":
                if self.peek.kind not in ("word", "prefix", "phrase", "(", "title:"):
                    raise QuerySyntaxError(
                        "title: must be followed by a word, phrase, prefix or (group)", token.start
                    )
                return self.parse_primary(title=True)
        raise QuerySyntaxError(_missing_side(token), token.start)

    def parse_group(self, opening: _Token, title: bool) -> Node:
        """The inside of ( ... ), after the opening parenthesis."""
        if self.peek.kind == ")":
            raise QuerySyntaxError("empty parentheses", opening.start)
        if self.peek.kind == "end":  # 'Met AND (': not an empty query, an open group
            raise QuerySyntaxError("unclosed '(': add a term and a ')' to close it", opening.start)
        saved = self.enter(opening)
        node = self.parse_or()
        self.depth = saved
        if self.peek.kind != ")":
            raise QuerySyntaxError("unclosed '(': add a ')' to close it", opening.start)
        self.take()
        return restrict_to_title(node) if title else node

    def enter(self, token: _Token) -> int:
        """Count one more level of nesting; too many would exhaust the stack."""
        saved = self.depth
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(f"nested more than {MAX_DEPTH} levels deep", token.start)
        return saved

    def expect_operand(self, op: _Token) -> None:
        """An operator needs a term after it (the one before was checked by the caller)."""
        nxt = self.peek
        if nxt.kind in ("end", ")", "AND", "OR", "NEAR"):
            raise QuerySyntaxError(f"{op.kind} needs a term after it", op.start)


def _missing_side(token: _Token) -> str:
    if token.kind in ("AND", "OR", "NEAR"):
        return f"{token.kind} needs a term before it"
    if token.kind == ")":
        return "unmatched ')': there is no '(' before it"
    return "the query is empty"


def _phrase(token: _Token, title: bool) -> Word | Phrase:
    words = token.words
    if len(words) == 1:
        return _word(token, title)
    exact = any(has_capital(w) for w in words)
    keys = words if exact else tuple(fold_word(w) for w in words)
    return Phrase(words, exact, keys, title, token.start, token.end)


def _word(token: _Token, title: bool) -> Word:
    text = token.words[0]
    exact = has_capital(text)
    return Word(text, exact, text if exact else fold_word(text), title, token.start, token.end)


def _prefix(token: _Token, title: bool) -> Prefix:
    text = token.words[0]
    exact = has_capital(text)
    return Prefix(text, exact, text if exact else fold_word(text), title, token.start, token.end)


def _group(kind: type[And] | type[Or], children: list[Node]) -> Node:
    """One child stays itself; nested groups of the same kind are flattened."""
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for child in children:
        flat.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(flat), children[0].start, children[-1].end)


def check_near_side(node: Node) -> None:
    """A side of NEAR is a term or an OR-group of terms; anything else raises at its offset."""
    match node:
        case Word() | Prefix() | Phrase():
            return
        case Or(children=children):
            for child in children:
                check_near_side(child)
            return
        case Not():
            raise QuerySyntaxError(
                "NOT inside NEAR: write (A NEAR B) AND NOT C instead", node.start
            )
        case And() | Near():
            inner = _first_not(node)
            if inner is not None:
                check_near_side(inner)
            if isinstance(node, And):
                for child in node.children:  # `(police or officer*)`: an OR meant in lowercase
                    if isinstance(child, Word) and child.text.lower() in ("or", "and", "not"):
                        raise QuerySyntaxError(
                            f"{child.text!r} is read as a word, and each side of NEAR must be a"
                            " word, phrase, prefix or an OR-group of those; operators are"
                            f" written in capitals: {child.text.upper()}",
                            child.start,
                        )
    raise QuerySyntaxError(
        "each side of NEAR must be a word, phrase, prefix or an OR-group of those", node.start
    )


def _first_not(node: Node) -> Not | None:
    """The first NOT under node, so that NOT inside NEAR gets its own message."""
    match node:
        case Not():
            return node
        case And(children=children) | Or(children=children):
            for child in children:
                found = _first_not(child)
                if found is not None:
                    return found
        case Near(left=left, right=right):
            return _first_not(left) or _first_not(right)
    return None


def parse_query(text: str, *, positive: bool = True) -> Query:
    """Read one query; raises QuerySyntaxError(message, offset) when it is malformed.

    With positive=True (match queries, searches) the query must look for at least one word:
    `NOT Gala` alone would match nearly every article. Exclude queries pass positive=False.
    """
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"query is longer than {MAX_QUERY_LENGTH} characters", 0)
    tokens = _tokenize(text)
    if tokens[0].kind == "end":
        raise QuerySyntaxError("the query is empty", 0)
    root = _Parser(tokens).parse()
    if positive and not needs_word(root):
        raise QuerySyntaxError(
            "nothing to look for: a query needs a word that must be present, "
            "e.g. 'Met AND NOT Gala' rather than 'NOT Gala'",
            len(text) - len(text.lstrip()),
        )
    return Query(root, text)
