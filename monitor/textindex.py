"""Words of a text, read once: the shared vocabulary of queries and documents.

A word is a run of Unicode letters and digits (combining accents stay with their letter), so
"Khan's" holds the words "Khan" and "s", and "Metropolitan-Police" two words. Queries and
documents are cut into words by the same regular expression, which is fixed here and never
built from user input, so reading a text costs time linear in its length.

Two forms of every word exist: the exact one (NFC) for terms written with a capital, and the
folded one (lower case, accents and compatibility forms removed) for all-lowercase terms.
"""

from __future__ import annotations

import itertools
import operator
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

SEPARATOR = "\x00"  # stands between the title's words and the text's; never equals a word


def _mark_ranges() -> str:
    """A character class body holding every combining mark (categories Mn, Mc, Me)."""
    # marks live below U+20000 except the variation selectors supplement
    codes = itertools.chain(range(0x20000), range(0xE0100, 0xE01F0))
    marks = [c for c in codes if unicodedata.category(chr(c)).startswith("M")]
    ranges: list[str] = []
    for _, group in itertools.groupby(enumerate(marks), lambda pair: pair[1] - pair[0]):
        run = [code for _, code in group]
        ranges.append(f"\\U{run[0]:08x}-\\U{run[-1]:08x}")
    return "".join(ranges)


_MARKS = _mark_ranges()
# letters/digits, then any mix of marks and more letters; the two classes are disjoint, so the
# loop has exactly one way to match and runs in linear time
WORD = re.compile(rf"[^\W_]+(?:[{_MARKS}]+[^\W_]*)*")
_MARK = re.compile(f"[{_MARKS}]+")
_FOLD_CACHE_LIMIT = 200_000


def has_capital(word: str) -> bool:
    """Whether a term is written with a capital letter (and so matches case-sensitively)."""
    return any(c.isupper() or c.istitle() for c in word)


def fold_word(word: str) -> str:
    """The case- and accent-free form of a word: "Café" -> "cafe", "Straße" -> "strasse"."""
    if word.isascii():
        return word.lower()
    text = unicodedata.normalize("NFKD", word).casefold()
    # casefold can add marks again ("İ" -> "i̇"), so decompose once more before dropping them
    return _MARK.sub("", unicodedata.normalize("NFKD", text))


class _FoldCache(dict[str, str]):
    """Memo of fold_word; its lookups run at C speed once a word has been seen."""

    def __missing__(self, word: str) -> str:
        if len(self) > _FOLD_CACHE_LIMIT:
            self.clear()
        folded = self[word] = fold_word(word)
        return folded


_FOLDED = _FoldCache()
fold_cached: Callable[[str], str] = _FOLDED.__getitem__


def split_words(text: str) -> list[str]:
    """The words of a text, in order, in their exact (NFC) form."""
    return WORD.findall(unicodedata.normalize("NFC", text))


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each word in an NFC text."""
    return [m.span() for m in WORD.finditer(text)]


@dataclass(eq=False)
class TextIndex:
    """One document's words, read once and shared by every watchlist that looks at it.

    Positions index `tokens`: the title's words, then SEPARATOR at `boundary`, then the
    text's words. Everything beyond the word lists is computed on first use and kept.
    """

    title: str
    text: str
    tokens: list[str]
    boundary: int
    vocab: frozenset[str]
    folded_vocab: frozenset[str]
    title_vocab: frozenset[str]
    title_folded_vocab: frozenset[str]
    _folded_tokens: list[str] | None = None
    _positions: dict[tuple[bool, str], list[int]] = field(default_factory=dict)
    _prefixes: dict[tuple[bool, bool, int], frozenset[str]] = field(default_factory=dict)
    _spans: dict[bool, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def folded_tokens(self) -> list[str]:
        """The folded form of every token, aligned with `tokens`."""
        if self._folded_tokens is None:
            self._folded_tokens = list(map(fold_cached, self.tokens))
        return self._folded_tokens

    def positions(self, word: str, folded: bool) -> list[int]:
        """Sorted positions of a word (compared folded or exact) in title and text."""
        key = (folded, word)
        found = self._positions.get(key)
        if found is None:
            found = self._positions[key] = _find_all(
                self.folded_tokens if folded else self.tokens, word
            )
        return found

    def prefixes(self, length: int, folded: bool, title_only: bool = False) -> frozenset[str]:
        """The first `length` characters of every word (shorter words stay whole)."""
        key = (folded, title_only, length)
        found = self._prefixes.get(key)
        if found is None:
            vocab = self.words(folded, title_only)
            found = self._prefixes[key] = frozenset(map(operator.itemgetter(slice(length)), vocab))
        return found

    def words(self, folded: bool, title_only: bool = False) -> frozenset[str]:
        """The distinct words of the document (or of its title alone)."""
        if title_only:
            return self.title_folded_vocab if folded else self.title_vocab
        return self.folded_vocab if folded else self.vocab

    def spans(self, in_title: bool) -> list[tuple[int, int]]:
        """Character offsets of the words of the title or of the text."""
        found = self._spans.get(in_title)
        if found is None:
            found = self._spans[in_title] = word_spans(self.title if in_title else self.text)
        return found


def _find_all(tokens: list[str], word: str) -> list[int]:
    """Every index of word in tokens; list.index scans in C, once over the list in all."""
    out: list[int] = []
    index = tokens.index
    start = 0
    try:
        while True:
            start = index(word, start)
            out.append(start)
            start += 1
    except ValueError:
        return out


def index_text(title: str, text: str) -> TextIndex:
    """Read a document's words once: the input to matching every watchlist."""
    title = unicodedata.normalize("NFC", title)
    text = unicodedata.normalize("NFC", text)
    title_tokens = WORD.findall(title)
    tokens = [*title_tokens, SEPARATOR, *WORD.findall(text)]
    vocab = frozenset(tokens)
    vocab -= {SEPARATOR}
    title_vocab = frozenset(title_tokens)
    return TextIndex(
        title=title,
        text=text,
        tokens=tokens,
        boundary=len(title_tokens),
        vocab=vocab,
        folded_vocab=frozenset(map(fold_cached, vocab)),
        title_vocab=title_vocab,
        title_folded_vocab=frozenset(map(fold_cached, title_vocab)),
    )
