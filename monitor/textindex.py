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
from collections.abc import Callable, Iterable
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
# the same for text without "_": \w is quicker to test, and marks are looked for only after
# a character that could start one (nothing below U+0300 is a mark)
_WORD_NO_UNDERSCORE = re.compile(rf"\w+(?:(?=[^\x00-\u02ff])[{_MARKS}]+\w*)*")
_MARK = re.compile(f"[{_MARKS}]+")
# ASCII text needs no regular expression: non-alphanumerics become spaces, then str.split
_ASCII_TO_SPACE = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})
# the non-ASCII characters of most English news text, none of them part of a word; once they
# are spaces, most articles take the ASCII path
_NEWS_PUNCTUATION = "’‘“”—–…«»„‚‹›•·′″\u00a0\u2009\u200a\u202f\u200b£€©®™°"
_FOLD_CACHE_LIMIT = 200_000
_PREFETCH_AT_LEAST = 3  # fewer words than this are quicker found by a scan each


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
    """The words of an NFC text, in order: what WORD.findall(text) gives, only quicker."""
    if not text.isascii():
        plain = text
        for c in _NEWS_PUNCTUATION:
            if c in plain:
                plain = plain.replace(c, " ")
        if not plain.isascii():
            return (WORD if "_" in text else _WORD_NO_UNDERSCORE).findall(text)
        text = plain
    return text.translate(_ASCII_TO_SPACE).split()


def word_spans(text: str, words: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each of the given leading words of text (from split_words).

    Only characters that are not part of a word lie between two words, so each word is
    the first occurrence of its letters after the end of the one before.
    """
    spans = []
    pos = 0
    find = text.find
    for word in words:
        pos = find(word, pos)
        end = pos + len(word)
        spans.append((pos, end))
        pos = end
    return spans


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
    _fold: Callable[[str], str] = fold_cached
    _folded_tokens: list[str] | None = None
    _positions: dict[tuple[bool, str], list[int]] = field(default_factory=dict)
    _prefixes: dict[tuple[bool, bool, int], frozenset[str]] = field(default_factory=dict)
    _lines: dict[bool, str] = field(default_factory=dict)

    @property
    def folded_tokens(self) -> list[str]:
        """The folded form of every token, aligned with `tokens`."""
        if self._folded_tokens is None:
            self._folded_tokens = self._lower_tokens() or list(map(self._fold, self.tokens))
        return self._folded_tokens

    def _lower_tokens(self) -> list[str] | None:
        """For ASCII words, the words of the lowercased texts (one C pass), if they align."""
        if self._fold is not str.lower:
            return None
        lowered = [*split_words(self.title.lower()), SEPARATOR, *split_words(self.text.lower())]
        return lowered if len(lowered) == len(self.tokens) else None

    def positions(self, word: str, folded: bool) -> list[int]:
        """Sorted positions of a word (compared folded or exact) in title and text."""
        key = (folded, word)
        found = self._positions.get(key)
        if found is None:
            if word not in (self.folded_vocab if folded else self.vocab):
                found = []  # absent: no need to scan the word list
            else:
                found = _find_all(self.folded_tokens if folded else self.tokens, word)
            self._positions[key] = found
        return found

    def prefetch(self, words: Iterable[str], folded: bool) -> None:
        """Find the positions of many words in one pass, before they are asked for one by one.

        A scan of the word list per word costs a pass each; this costs one pass in all.
        """
        vocab = self.folded_vocab if folded else self.vocab
        known = self._positions
        todo = {w for w in words if w in vocab and (folded, w) not in known}
        if len(todo) < _PREFETCH_AT_LEAST:
            return
        tokens = self.folded_tokens if folded else self.tokens
        table: dict[str, list[int]] = {w: [] for w in todo}
        for i in [i for i, t in enumerate(tokens) if t in todo]:
            table[tokens[i]].append(i)
        for word, found in table.items():
            known[folded, word] = found

    def prefixes(self, length: int, folded: bool, title_only: bool = False) -> frozenset[str]:
        """The first `length` characters of every word (shorter words stay whole)."""
        key = (folded, title_only, length)
        found = self._prefixes.get(key)
        if found is None:
            vocab = self.words(folded, title_only)
            found = self._prefixes[key] = frozenset(map(operator.itemgetter(slice(length)), vocab))
        return found

    def has_prefix(self, prefix: str, folded: bool, title_only: bool = False) -> bool:
        """Whether some word (of the document, or of its title) begins with prefix."""
        if title_only:
            return any(w.startswith(prefix) for w in self.words(folded, True))
        return "\n" + prefix in self.word_lines(folded)

    def word_lines(self, folded: bool) -> str:
        """The distinct words, each after a newline: a prefix search is a substring search."""
        lines = self._lines.get(folded)
        if lines is None:
            lines = self._lines[folded] = "\n" + "\n".join(self.words(folded)) + "\n"
        return lines

    def words_with_prefix(self, prefix: str, folded: bool) -> list[str]:
        """The distinct words (exact or folded) that begin with prefix."""
        lines = self.word_lines(folded)
        out = []
        find = lines.find
        pos = find("\n" + prefix)
        while pos >= 0:
            end = find("\n", pos + 1)
            out.append(lines[pos + 1 : end])
            pos = find("\n" + prefix, end)
        return out

    def words(self, folded: bool, title_only: bool = False) -> frozenset[str]:
        """The distinct words of the document (or of its title alone)."""
        if title_only:
            return self.title_folded_vocab if folded else self.title_vocab
        return self.folded_vocab if folded else self.vocab

    def spans(self, in_title: bool, count: int) -> list[tuple[int, int]]:
        """Character offsets of the first `count` words of the title or of the text."""
        if in_title:
            return word_spans(self.title, self.tokens[: min(count, self.boundary)])
        return word_spans(self.text, self.tokens[self.boundary + 1 : self.boundary + 1 + count])


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
    title_tokens = split_words(title)
    tokens = [*title_tokens, SEPARATOR, *split_words(text)]
    vocab = frozenset(tokens) - {SEPARATOR}
    title_vocab = frozenset(title_tokens)
    # ASCII words fold by lower(), a C call with no cache to consult
    fold = str.lower if "".join(vocab).isascii() else fold_cached
    return TextIndex(
        title=title,
        text=text,
        tokens=tokens,
        boundary=len(title_tokens),
        vocab=vocab,
        folded_vocab=frozenset(map(fold, vocab)),
        title_vocab=title_vocab,
        title_folded_vocab=frozenset(map(fold, title_vocab)),
        _fold=fold,
    )
