"""Words of a text, read once: the shared vocabulary of queries and documents.

A word is a run of Unicode letters and digits (combining accents stay with their letter), so
"Khan's" holds the words "Khan" and "s", and "Metropolitan-Police" two words. Queries and
documents are cut into words by the same rule, fixed here and never built from user input, so
reading a text costs time linear in its length.

Two forms of every word exist: the exact one (NFC) for terms written with a capital, and the
folded one (lower case, accents and compatibility forms removed) for all-lowercase terms.

Reading is the floor under the cost of matching every article, so it does as little per word
as it can, and all of it in C: one translate and one split cut the words, one dict holds the
distinct ones, and only the distinct words that are not already folded (capitalised words,
accented words) are folded. Positions are found only for the words a query or a snippet asks
about, in one pass over the word list for all of them.
"""

from __future__ import annotations

import itertools
import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import compress, count, filterfalse

from monitor import unimarks

SEPARATOR = "\x00"  # stands between the title's words and the text's; never equals a word


def scan_mark_runs() -> tuple[tuple[int, int], ...]:
    """(first, last) code points of each run of combining marks (categories Mn, Mc, Me)."""
    # marks live below U+20000 except the variation selectors supplement
    codes = itertools.chain(range(0x20000), range(0xE0100, 0xE01F0))
    marks = [c for c in codes if unicodedata.category(chr(c)).startswith("M")]
    runs = []
    for _, group in itertools.groupby(enumerate(marks), lambda pair: pair[1] - pair[0]):
        run = [code for _, code in group]
        runs.append((run[0], run[-1]))
    return tuple(runs)


def _mark_ranges() -> str:
    """A character class body holding every combining mark.

    The marks are written as themselves, not as escapes: re compiles the class three times
    quicker so (1.5 against 5 ms, paid by every command that reads a watchlist). No mark is
    one of the characters a class gives a meaning to (] \\ ^ -).
    """
    same = unicodedata.unidata_version == unimarks.UNIDATA_VERSION
    runs = unimarks.MARK_RUNS if same else scan_mark_runs()
    return "".join(f"{chr(first)}-{chr(last)}" for first, last in runs)


_MARKS = _mark_ranges()
# U+02BC, the modifier letter apostrophe, is a letter to Unicode but an apostrophe to news
# sites that print "the Metʼs" with it: like "’" it ends a word, or `Met` would miss the story
_NOT_LETTERS = "\u02bc"
LETTER = rf"[^\W_{_NOT_LETTERS}]"
# letters/digits, then any mix of marks and more letters; the two classes are disjoint, so the
# loop has exactly one way to match and runs in linear time
WORD = re.compile(rf"{LETTER}+(?:[{_MARKS}]+{LETTER}*)*")
_MARK = re.compile(f"[{_MARKS}]+")
# a non-ASCII character that can never be inside a word unless it is a mark: a separator
_ODD = re.compile(r"[^\w\x00-\x7f]")
# ASCII text needs no regular expression: non-alphanumerics become spaces, then str.split
_ASCII_TO_SPACE = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})
# the same on UTF-8 bytes, which leaves every byte of a non-ASCII character alone
_BYTES_TO_SPACE = bytes(c if c >= 0x80 or chr(c).isalnum() else 0x20 for c in range(256))
# the non-ASCII characters of most English news text, none of them part of a word; once they
# are spaces, most articles take the ASCII path
_NEWS_PUNCTUATION = "’‘“”—–…«»„‚‹›•·′″\u02bc\u00a0\u2009\u200a\u202f\u200b£€©®™°"
_FOLD_CACHE_LIMIT = 200_000
# how a text was cut into words: all ASCII; letters and digits only; with combining marks
ASCII, LETTERS, MARKS = 0, 1, 2


def is_word_char(c: str) -> bool:
    """Whether a character is part of a word (what LETTER matches: re's \\w is isalnum)."""
    return c.isalnum() and c not in _NOT_LETTERS


def has_capital(word: str) -> bool:
    """Whether a term is written with a capital letter (and so matches case-sensitively)."""
    return any(c.isupper() or c.istitle() for c in word)


def fold_word(word: str) -> str:
    """The case- and accent-free form of a word: "Café" -> "cafe", "Straße" -> "strasse",
    "Łódź" -> "lodz"."""
    if word.isascii():
        return word.lower()
    text = unicodedata.normalize("NFKD", word).casefold()
    # casefold can add marks again ("İ" -> "i̇"), so decompose once more before dropping them
    return _MARK.sub("", unicodedata.normalize("NFKD", text)).translate(_UNDECOMPOSED)


# lowercase letters with a stroke, and ligatures, that Unicode does not decompose into a letter
# and a mark: folded as their own languages spell them in ASCII ("Łódź" is Lodz, "Søren" is
# Soren, "Encyclopædia" is Encyclopaedia)
_UNDECOMPOSED = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ħ": "h",
        "ı": "i",
        "ŧ": "t",
        "ƀ": "b",
        "ð": "d",
        "þ": "th",
        "æ": "ae",
        "œ": "oe",
    }
)


class Memo(dict[str, str]):
    """A memo of a function of words: a word seen before is a dict lookup, run at C speed
    (news repeats its words). Past `limit` words it starts afresh, so memory stays bounded."""

    def __init__(self, compute: Callable[[str], str], limit: int) -> None:
        super().__init__()
        self.compute = compute
        self.limit = limit

    def __missing__(self, word: str) -> str:
        if len(self) > self.limit:
            self.clear()
        value = self[word] = self.compute(word)
        return value


_FOLDED = Memo(fold_word, _FOLD_CACHE_LIMIT)
fold_cached: Callable[[str], str] = _FOLDED.__getitem__


def split_words(text: str) -> list[str]:
    """The words of an NFC text, in order: what WORD.findall(text) gives, only quicker."""
    words, _ = _split(text)
    return words


def ascii_words(text: str) -> list[str] | None:
    """The runs of letters and digits of a text whose only characters beyond ASCII are news
    punctuation (curly quotes, dashes, odd spaces, currency and other symbols, none of them
    part of a word), cut in C; None for any other text. Most English news takes this path."""
    plain = text if text.isascii() else _without_news_punctuation(text)
    return plain.translate(_ASCII_TO_SPACE).split() if plain.isascii() else None


def _without_news_punctuation(text: str) -> str:
    for c in _NEWS_PUNCTUATION:
        if c in text:
            text = text.replace(c, " ")
    return text


def _split(text: str) -> tuple[list[str], int]:
    """The words of an NFC text, and how they were cut: ASCII, LETTERS or MARKS."""
    plain = text if text.isascii() else _without_news_punctuation(text)
    if plain.isascii():
        return plain.translate(_ASCII_TO_SPACE).split(), ASCII
    # what is left besides letters: separators (spaces, symbols, emoji) or combining marks
    for c in set(_ODD.findall(plain)):
        if _MARK.match(c):
            return WORD.findall(text), MARKS  # a mark joins a word: the full pattern
        plain = plain.replace(c, " ")
    # every non-ASCII character left is a letter or digit: cut at ASCII non-alphanumerics
    return plain.encode().translate(_BYTES_TO_SPACE).decode().split(), LETTERS


def word_spans(text: str, words: list[str], pos: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each of the given words of text (from split_words), the first of them
    at or after pos.

    Only characters that are not part of a word lie between two words, so each word is
    the first occurrence of its letters after the end of the one before.
    """
    spans = []
    find = text.find
    for word in words:
        pos = find(word, pos)
        end = pos + len(word)
        spans.append((pos, end))
        pos = end
    return spans


class TextIndex:
    """One document's words, read once and shared by every watchlist that looks at it.

    Positions index `tokens`: the title's words, then SEPARATOR at `boundary`, then the
    text's words. `vocab` holds the distinct words; `folds` maps each distinct word that is
    not its own folded form to that form and `refolded` holds those forms, so a folded word
    is present when it is in `vocab` or in `refolded`. Everything else is computed on first
    use and kept.
    """

    __slots__ = (
        "_fold_counts",
        "_folded_located",
        "_folded_tokens",
        "_folded_vocab",
        "_lines",
        "_located",
        "_pending",
        "_prefixed",
        "_spellings",
        "_title_vocab",
        "_variants",
        "_words",
        "boundary",
        "fold",
        "folds",
        "kind",
        "refolded",
        "text",
        "title",
        "tokens",
        "vocab",
    )

    def __init__(
        self,
        title: str,
        text: str,
        title_words: list[str],
        text_words: list[str],
        *,
        kind: int,
    ) -> None:
        self.title = title
        self.text = text
        self.boundary = len(title_words)
        title_words.append(SEPARATOR)
        title_words += text_words
        self.tokens = tokens = title_words
        self.vocab = vocab = dict.fromkeys(tokens)
        del vocab[SEPARATOR]
        # the distinct words that are not their own folded form: an ASCII word is folded
        # when it is lowercase, so only the capitalised ones need folding
        self.kind = kind
        if kind == ASCII:
            self.fold: Callable[[str], str] = str.lower
            others = list(filterfalse(str.islower, vocab))
        else:
            self.fold = fold_cached
            lower = filter(str.islower, vocab)
            others = [*filterfalse(str.islower, vocab), *filterfalse(str.isascii, lower)]
        self.folds = dict(zip(others, map(self.fold, others), strict=True))
        self.refolded = dict.fromkeys(self.folds.values())
        self._located: dict[str, list[int]] = {}  # exact word -> its positions
        self._folded_located: dict[str, list[int]] = {}  # folded word -> its positions
        self._pending: set[str] = set()  # exact words to locate in the next pass
        self._lines: dict[bool, str] = {}
        self._variants: dict[str, list[str]] | None = None
        self._fold_counts: Counter[str] | None = None
        self._spellings: dict[str, list[str]] = {}
        self._prefixed: dict[tuple[bool, str], list[str]] = {}
        self._folded_tokens: list[str] | None = None
        self._folded_vocab: frozenset[str] | None = None
        self._title_vocab: dict[bool, frozenset[str]] = {}
        self._words: list[str] | None = None

    def has_word(self, word: str, folded: bool) -> bool:
        """Whether a word (compared folded or exact) occurs in the title or text."""
        if word in self.vocab:
            # a folded key present as it is: folding is idempotent, so it folds to itself
            return True
        return folded and word in self.refolded

    @property
    def folded_tokens(self) -> list[str]:
        """The folded form of every token, aligned with `tokens`."""
        if self._folded_tokens is None:
            self._folded_tokens = list(map(self.fold, self.tokens))
        return self._folded_tokens

    @property
    def folded_vocab(self) -> frozenset[str]:
        """The distinct folded words."""
        if self._folded_vocab is None:
            self._folded_vocab = frozenset(map(self.fold, self.vocab))
        return self._folded_vocab

    def words(self, folded: bool, title_only: bool = False) -> Collection[str]:
        """The distinct words of the document (or of its title alone)."""
        if title_only:
            return self.title_words(folded)
        return self.folded_vocab if folded else self.vocab.keys()

    def title_words(self, folded: bool) -> frozenset[str]:
        """The distinct words of the title, exact or folded."""
        found = self._title_vocab.get(folded)
        if found is None:
            title = self.tokens[: self.boundary]
            found = frozenset(map(self.fold, title) if folded else title)
            self._title_vocab[folded] = found
        return found

    def positions(self, word: str, folded: bool) -> list[int]:
        """Sorted positions of a word (compared folded or exact) in title and text."""
        if not folded:
            return self.locate((word,)) if word in self.vocab else []
        found = self._folded_located.get(word)
        if found is None:
            # a word with several spellings merges their positions: once per document
            found = self._folded_located[word] = self.locate(self.spellings(word))
        return found

    def want(self, spellings: Iterable[str]) -> None:
        """Say which words (exact, of the document) will be located, so one pass finds all.

        Nothing is searched yet: the next locate() does it, for every word wanted by then,
        in one pass over the word list run by C iterators.
        """
        located = self._located
        self._pending.update(w for w in spellings if w not in located)

    def locate(self, spellings: Sequence[str]) -> list[int]:
        """Sorted positions of any of the given distinct words of the document."""
        located = self._located
        if len(spellings) == 1:
            found = located.get(spellings[0])
            if found is not None:
                return found
        missing = [w for w in spellings if w not in located]
        if missing:
            self._search(missing)
        if len(spellings) == 1:
            return located[spellings[0]]
        return sorted(itertools.chain.from_iterable(map(located.__getitem__, spellings)))

    def _search(self, words: list[str]) -> None:
        """Positions of the words and of every pending one, in one pass."""
        pending = self._pending
        pending.update(words)
        if len(pending) == 1:  # one word: list.index finds it quicker than a pass
            self._located[words[0]] = _find_all(self.tokens, words[0])
        else:
            table: dict[str, list[int]] = {w: [] for w in pending}
            tokens = self.tokens
            for i in compress(count(), map(pending.__contains__, tokens)):
                table[tokens[i]].append(i)
            self._located.update(table)
        pending.clear()

    def spellings(self, folded: str) -> list[str]:
        """The distinct words of the document whose folded form is `folded`."""
        if folded not in self.refolded:  # no capitalised or accented form of it
            return [folded] if folded in self.vocab else []
        found = self._spellings.get(folded)
        if found is None:
            found = self._other_spellings(folded)
            if folded in self.vocab:
                found = [folded, *found]
            self._spellings[folded] = found
        return found

    def _other_spellings(self, folded: str) -> list[str]:
        """The words other than `folded` itself that fold to it."""
        folds = self.folds
        if self.kind == ASCII:
            # "Police" and "POLICE" are what English text holds; a count of the words that
            # fold to it says whether that is all, without grouping every word
            if self._fold_counts is None:
                self._fold_counts = Counter(folds.values())
            forms = dict.fromkeys((folded.capitalize(), folded.upper(), folded.title()))
            found = [w for w in forms if w != folded and w in folds]
            if len(found) == self._fold_counts[folded] - (folded in folds):
                return found
        if self._variants is None:
            variants: dict[str, list[str]] = {}
            for word, form in folds.items():
                if word != form:  # "2023" and other uncased words fold to themselves
                    variants.setdefault(form, []).append(word)
            self._variants = variants
        return self._variants.get(folded, [])

    def has_prefix(self, prefix: str, folded: bool, title_only: bool = False) -> bool:
        """Whether some word (of the document, or of its title) begins with prefix."""
        if title_only:
            return any(w.startswith(prefix) for w in self.words(folded, True))
        return "\n" + prefix in self.word_lines(folded)

    def word_lines(self, folded: bool) -> str:
        """The distinct words, each after a newline: a prefix search is a substring search.

        The folded lines may hold a word twice ("police" from "Police" and "police").
        """
        lines = self._lines.get(folded)
        if lines is None:
            if not folded:
                lines = "\n" + "\n".join(self.vocab) + "\n"
            elif self.fold is str.lower:
                lines = self.word_lines(False).lower()
            else:
                lines = "\n" + "\n".join(map(self.fold, self.vocab)) + "\n"
            self._lines[folded] = lines
        return lines

    def words_with_prefix(self, prefix: str, folded: bool) -> list[str]:
        """The distinct words (exact or folded) that begin with prefix."""
        lines = self.word_lines(folded)
        out: dict[str, None] = {}
        find = lines.find
        pos = find("\n" + prefix)
        while pos >= 0:
            end = find("\n", pos + 1)
            out[lines[pos + 1 : end]] = None
            pos = find("\n" + prefix, end)
        return list(out)

    def spellings_with_prefix(self, prefix: str, folded: bool) -> list[str]:
        """The distinct words of the document whose (folded) form begins with prefix."""
        found = self._prefixed.get((folded, prefix))
        if found is None:
            found = self._prefixed[folded, prefix] = self._find_prefixed(prefix, folded)
        return found

    def _find_prefixed(self, prefix: str, folded: bool) -> list[str]:
        lines = self.word_lines(folded)
        # one line per word in vocab order; lowering ASCII lines keeps every offset
        same = not folded or self.fold is str.lower
        exact = self.word_lines(False)
        vocab = [] if same else self._vocab_list()
        out = []
        find = lines.find
        needle = "\n" + prefix
        pos = find(needle)
        line, counted = 0, 0
        while pos >= 0:
            end = find("\n", pos + 1)
            if same:
                out.append(exact[pos + 1 : end])
            else:
                line += lines.count("\n", counted, pos)
                counted = pos
                out.append(vocab[line])
            pos = find(needle, end)
        return out

    def _vocab_list(self) -> list[str]:
        """The distinct words in vocab order: line n of the word lines is the nth of them."""
        if self._words is None:
            self._words = list(self.vocab)
        return self._words

    def located(self, word: str) -> list[int] | None:
        """The positions of an exact word if they have been located already, else None."""
        return self._located.get(word)


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
    title, title_words, title_kind = _read(title)
    text, text_words, text_kind = _read(text)
    return TextIndex(title, text, title_words, text_words, kind=max(title_kind, text_kind))


def _read(text: str) -> tuple[str, list[str], int]:
    """The NFC form of a text (without invisible characters), its words and how they were cut."""
    text = _visible(text)
    words = ascii_words(text)
    if words is not None:
        # ASCII and news punctuation are their own NFC form: most news needs no normalising
        return text, words, ASCII
    text = unicodedata.normalize("NFC", text)
    words, kind = _split(text)
    return text, words, kind


def _visible(text: str) -> str:
    """text without the invisible characters that can sit inside a word: the soft hyphen (a
    hint where to break "Metro\u00adpolitan"), the word joiner and the zero width no-break
    space. Feed titles and pasted text carry them; read as separators, they split the word."""
    if "\xad" in text or "\u2060" in text or "\ufeff" in text:
        return text.translate(_INVISIBLE_IN_WORDS)
    return text


_INVISIBLE_IN_WORDS = dict.fromkeys(map(ord, "\xad\u2060\ufeff"))
_SLICES: dict[int, Callable[[str], str]] = {}


def slicer(length: int) -> Callable[[str], str]:
    """A C-level function giving the first `length` characters of a string."""
    found = _SLICES.get(length)
    if found is None:
        found = _SLICES[length] = operator.itemgetter(slice(0, length))
    return found
