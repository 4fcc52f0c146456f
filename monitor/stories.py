"""Pure: the features two articles are compared by, and whether they report the same story.

Two signals, because copies and rewrites look different:

* Syndicated and lightly edited copies share long runs of words. Each text is cut into
  overlapping five-word shingles, summarised by a one-permutation MinHash sketch, and the share
  of the shorter text found in the longer one (containment) is estimated from two sketches.
* Different outlets' own reports of one event share few runs of words but the same specific
  people, places and rare words. Each article is a bag of content words and capitalised word
  pairs ("charing cross", "sal naseem"), weighted by TF-IDF against the stored articles, so that
  the subject's own vocabulary (police, officer, misconduct, Met, IOPC) weighs little once it is
  common in the store; two articles are compared by the cosine of those vectors.

Every hash is blake2b, never Python's salted hash(), so features are the same in every process.
docs/stories.md gives the method, the thresholds and the measurements behind them.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
import struct
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import compress, count, repeat

from monitor.models import TextFeatures
from monitor.textindex import LETTER, Memo, ascii_words

MAX_CHARS = 200_000  # text beyond this is not read: a hostile page must not cost minutes
SHINGLE_WORDS = 5  # words per shingle: long enough that a shared run means shared copy
MINHASH_BINS = 64  # sketch size
BAND_ROWS = 4  # MinHash bins per LSH band: 16 bands
EMPTY_BIN = 0xFFFF  # a bin no shingle fell into; real values are even, so never this
TITLE_WEIGHT = 2  # a title word counts as this many body occurrences
NAME_WEIGHT = 2  # a capitalised pair ("Alice Vinten") counts as this many occurrences

# Decision thresholds, chosen on tests/data/stories; docs/stories.md has the measurements.
COPY_CONTAINMENT = 0.40  # share of the shorter text's shingles found in the other...
COPY_MIN_SHARED = 12  # ...and at least this many, so a shared boilerplate line is not a copy
REWRITE_COSINE = 0.28  # TF-IDF cosine of two outlets' own reports of one event
# An article joining a story through one of its later articles must be at least this near
# the story's first article: half of either bar (a live blog must not chain two events).
NEAR_SHARE = 0.5
# A page whose text holds less than this share of the content words of its feed entry's title
# (and of its summary) is not the article: real articles hold a third at the least.
ANNOUNCED_SHARE = 0.2
ANNOUNCED_MIN = 3  # fewer content words than this cannot tell

_WORD = re.compile(f"{LETTER}+")  # what matching calls a word, combining marks apart
_FIRST = operator.itemgetter(0)  # a run's first character; a (key, weight) pair's key
_WEIGHT = operator.itemgetter(1)
_SHINGLE_HASH = partial(hashlib.blake2b, digest_size=8)
_DIGEST = operator.methodcaller("digest")
# function words and the words every news report uses; rarity weighting handles the rest
_STOPWORD_TEXT = """
    a about above after again against ago all almost also although always am among an and
    another any are around as at away back be became because become been before being below
    between both but by came can cannot could did do does doing done down during each either
    else even ever every few for from further get gets getting given go going gone got had has
    have having he her here hers herself him himself his how however i if in including into is
    it its itself just last later least less like made make makes many may me might more most
    much must my myself near never new next no nor not now of off often on once one only onto
    or other others our ours ourselves out over own part per put rather said same say saying
    says see seen several shall she should since so some still such take taken than that the
    their theirs them themselves then there these they thing things this those though three
    through thus to told too took two under until up upon us very via was way we week weeks
    well were what when where whether which while who whom whose why will with within without
    would year years yesterday yet you your yours yourself today tomorrow monday tuesday
    wednesday thursday friday saturday sunday mr mrs ms dr according added adding asked
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class StoryFeatures:
    """What one article is compared by; computed once, stored compactly by storyindex."""

    terms: tuple[tuple[int, int], ...]  # (term key, weighted count) for every term, by key
    minhash: tuple[int, ...]  # MINHASH_BINS 16-bit values, EMPTY_BIN where no shingle fell
    shingles: int  # distinct shingles in the text


@dataclass(frozen=True, slots=True)
class StoryProfile:
    """An article as compared: its text sketch and its unit TF-IDF vector."""

    minhash: tuple[int, ...]
    shingles: int
    vector: Mapping[int, float]


@dataclass(frozen=True, slots=True)
class Similarity:
    """How alike two articles are, by each signal."""

    containment: float  # estimated share of the shorter text's shingles found in the other
    shared: float  # estimated number of shingles the two texts share
    cosine: float  # TF-IDF cosine of content words, title words and names

    @property
    def is_copy(self) -> bool:
        """The shorter text is largely a copy of the other (syndication, light edits)."""
        return self.containment >= COPY_CONTAINMENT and self.shared >= COPY_MIN_SHARED

    @property
    def same_story(self) -> bool:
        """A copy of the same text, or another outlet's report of the same event."""
        return self.is_copy or self.cosine >= REWRITE_COSINE

    @property
    def near_story(self) -> bool:
        """Near enough to a story's first article for a join through another of its own."""
        copy = self.containment >= NEAR_SHARE * COPY_CONTAINMENT
        return (copy and self.shared >= COPY_MIN_SHARED) or (
            self.cosine >= NEAR_SHARE * REWRITE_COSINE
        )

    @property
    def score(self) -> float:
        """One number to rank the candidates that pass: the stronger of the two signals."""
        return max(self.cosine, self.containment if self.is_copy else 0.0)


@lru_cache(maxsize=1 << 16)  # news repeats its words: most lookups are hits
def stable_key(text: str) -> int:
    """A signed 32-bit key for a string, the same in every process and on every machine."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


@lru_cache(maxsize=1 << 16)
def fold_word(word: str) -> str:
    """Lower case without accents, so "Vetting", "vetting" and "vétting" are one word."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def stem_word(word: str) -> str:
    """Strip plural endings that would split one word's counts ("officers", "inquiries")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def is_content(word: str) -> bool:
    """A folded word worth weighing: not a stopword, not a single character."""
    return len(word) > 1 and word not in _STOPWORDS


def count_terms(text: str, weight: int = 1) -> Counter[str]:
    """Content words (stemmed) and capitalised word pairs of a text, each counted `weight`."""
    return _count_terms(text, read_words(text), weight)


def read_words(text: str) -> list[str]:
    """The runs of letters and digits of a text (what _WORD.findall gives), cut in C by
    str.split when the text allows it."""
    words = ascii_words(text)
    return _WORD.findall(text) if words is None else words


def _term_of(raw: str) -> str:
    """A word as read -> the term it counts as, "" when it counts as none."""
    word = fold_word(raw)
    return stem_word(word) if is_content(word) else ""


_TERMS = Memo(_term_of, 200_000)


def _count_terms(text: str, words: list[str], weight: int) -> Counter[str]:
    # each word becomes its term by a dict lookup and is counted, all in C iterators: a
    # quarter of the time of judging each distinct spelling in Python
    counts = Counter(filter(None, map(_TERMS.__getitem__, words)))
    if weight != 1:
        for term in counts:
            counts[term] *= weight
    # a name is two capitalised content words with only spaces between them: "Charing Cross".
    # Such words end one run of non-spaces and begin the next; runs that begin with a capital
    # are found in C, and only those are looked at here.
    runs = text.split()
    for i in compress(count(), map(str.isupper, map(_FIRST, runs))):
        before = runs[i - 1] if i else ""
        if not before[-1:].isalnum():  # nothing before, or punctuation between the words
            continue
        first = before if before.isalnum() else _WORD.findall(before)[-1]
        if first[0].isupper():
            second = runs[i] if runs[i].isalnum() else _WORD.findall(runs[i])[0]
            a, b = fold_word(first), fold_word(second)
            if is_content(a) and is_content(b):
                counts[f"{a} {b}"] += weight * NAME_WEIGHT
    return counts


def shingle_hashes(text: str) -> set[int]:
    """64-bit hashes of the text's overlapping runs of SHINGLE_WORDS folded words."""
    return _shingle_hashes(read_words(text))


def _shingle_hashes(raw: list[str]) -> set[int]:
    words = list(map(fold_word, raw))
    if not words:
        return set()
    size = min(SHINGLE_WORDS, len(words))
    # built and hashed by C iterators: a long article has a thousand shingles
    runs = set(map(" ".join, zip(*(words[i:] for i in range(size)), strict=False)))
    digests = b"".join(map(_DIGEST, map(_SHINGLE_HASH, map(str.encode, runs))))
    return set(struct.unpack(f">{len(runs)}Q", digests))  # each digest as a big-endian int


def sketch_minhash(hashes: Iterable[int]) -> tuple[int, ...]:
    """One-permutation MinHash: low bits choose a bin, the smallest 16 high bits stay in it."""
    bins = [EMPTY_BIN] * MINHASH_BINS
    for h in hashes:
        index = h % MINHASH_BINS
        value = (h >> 32) & 0xFFFE  # even, so a real value is never EMPTY_BIN
        if value < bins[index]:
            bins[index] = value
    return tuple(bins)


def text_features(text: str) -> TextFeatures:
    """The text's share of an article's features: its keyed term counts and its sketch."""
    text = text[:MAX_CHARS]
    words = read_words(text)  # read once for both the terms and the shingles
    counts = _count_terms(text, words, 1)
    keys = list(map(stable_key, counts))
    keyed = dict(zip(keys, counts.values(), strict=True))
    if len(keyed) < len(keys):  # two terms on one 32-bit key: they simply add up
        keyed = Counter()
        for key, n in zip(keys, counts.values(), strict=True):
            keyed[key] += n
    hashes = _shingle_hashes(words)
    return TextFeatures(tuple(keyed.items()), sketch_minhash(hashes), len(hashes))


def story_features(title: str, text: str, part: TextFeatures | None = None) -> StoryFeatures:
    """The features of one article: weighted terms of title and text, and a text sketch.
    `part` is text_features(text) when already computed (by an extraction worker)."""
    title = title[:MAX_CHARS]
    if part is None:
        part = text_features(text)
    keyed = dict(part.terms)
    for term, n in count_terms(title, TITLE_WEIGHT).items():
        key = stable_key(term)
        keyed[key] = keyed.get(key, 0) + n
    minhash, shingles = part.minhash, part.shingles
    if not text[:MAX_CHARS].strip():  # copies keep the text and change the headline, so
        hashes = shingle_hashes(title)  # only the text is shingled, unless there is none
        minhash, shingles = sketch_minhash(hashes), len(hashes)
    terms = tuple(sorted(keyed.items(), key=_FIRST))  # by key alone: keys are distinct
    return StoryFeatures(terms=terms, minhash=minhash, shingles=shingles)


def holds_announced(part: TextFeatures, title: str, summary: str) -> bool:
    """Whether a page's text (its text_features) can be the article its feed entry announced.

    It cannot when it holds less than ANNOUNCED_SHARE of the content words of the entry's
    title and less than that of its summary's: a cookie wall, a login page or an error page
    served as 200 holds next to none, while every real article of tests/data holds a third of
    its headline's words at the least. Both must have ANNOUNCED_MIN content words to tell: a
    headline alone, which may be a pun, never decides against a page.
    """
    told = [_word_keys(title), _word_keys(summary)]
    if any(len(keys) < ANNOUNCED_MIN for keys in told):
        return True
    held = set(map(_FIRST, part.terms))  # in C: a page has hundreds of terms
    return any(len(keys & held) >= ANNOUNCED_SHARE * len(keys) for keys in told)


def _word_keys(text: str) -> set[int]:
    """The keys of a text's content words (not its name pairs), as text_features keys them."""
    # count_terms' words, neither counted nor paired into names: only which ones appear counts
    terms = set(filter(None, map(_TERMS.__getitem__, read_words(text[:MAX_CHARS]))))
    return {stable_key(term) for term in terms if " " not in term}


def minhash_bands(minhash: Sequence[int]) -> tuple[int, ...]:
    """LSH band keys of a sketch. A band holding an empty bin is left out: two short texts
    agree on their empty bins by chance."""
    keys = []
    for start in range(0, len(minhash), BAND_ROWS):
        rows = minhash[start : start + BAND_ROWS]
        if EMPTY_BIN not in rows:
            keys.append(stable_key(f"band {start} " + " ".join(map(str, rows))))
    return tuple(keys)


def estimate_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """Jaccard similarity of two shingle sets from their sketches (0 when both are empty)."""
    if len(a) != len(b):
        raise ValueError(f"sketches of {len(a)} and {len(b)} bins")
    equal = sum(map(operator.eq, a, b))  # in C: this runs for every candidate of an article
    both_empty = 0
    if EMPTY_BIN in a and EMPTY_BIN in b:  # only short texts leave bins empty
        both_empty = sum(x == EMPTY_BIN and y == EMPTY_BIN for x, y in zip(a, b, strict=True))
    used = len(a) - both_empty
    return (equal - both_empty) / used if used else 0.0


def estimate_overlap(
    a: Sequence[int], a_shingles: int, b: Sequence[int], b_shingles: int
) -> tuple[float, float]:
    """(containment, shared shingles) of two sketched texts, from |A n B| = J(|A|+|B|)/(1+J)."""
    jaccard = estimate_jaccard(a, b)
    shared = jaccard * (a_shingles + b_shingles) / (1 + jaccard)
    smaller = min(a_shingles, b_shingles)
    return (min(1.0, shared / smaller) if smaller else 0.0), shared


def idf(df: int, n: int) -> float:
    """Inverse document frequency of a term found in df of n articles; log(1 + n/df) stays
    positive, so the first articles of a fresh store still have weights."""
    return math.log(1 + n / max(df, 1))


def term_vector(
    terms: Iterable[tuple[int, int]], df: Mapping[int, int], n: int
) -> dict[int, float]:
    """The unit TF-IDF vector of an article: (1 + ln count) x idf, scaled to length 1.
    df and n must already count the article itself."""
    counts = dict(terms)  # one count per key, the last, as the dictionary of weights kept
    dfs = list(map(df.get, counts))
    # idf() written out, once per distinct df (an article's 280 terms have about 110), and the
    # rest in C iterators: this runs for every article stored
    idf_of = {d: math.log(1 + n / (d or 1)) for d in set(dfs)}
    tf = map(operator.add, repeat(1), map(math.log, counts.values()))  # 1 + ln count
    weights = list(map(operator.mul, tf, map(idf_of.__getitem__, dfs)))
    norm = math.sqrt(sum(map(operator.mul, weights, weights)))
    if not norm:
        return {}
    return dict(zip(counts, map(operator.truediv, weights, repeat(norm)), strict=True))


def heaviest_terms(vector: Mapping[int, float], limit: int) -> list[tuple[int, float]]:
    """The `limit` heaviest (key, weight) pairs, ties broken by key so the order is stable."""
    # by key, then by weight: the second sort keeps the first's order among equal weights
    # (reverse=True too), and both sort on C item getters rather than a tuple per pair
    by_key = sorted(vector.items(), key=_FIRST)
    return sorted(by_key, key=_WEIGHT, reverse=True)[:limit]


def dot(a: Mapping[int, float], b: Mapping[int, float]) -> float:
    """Dot product of two sparse vectors; the cosine when both have length 1."""
    if len(b) < len(a):
        a, b = b, a
    return sum(w * b.get(key, 0.0) for key, w in a.items())


def profile_article(
    features: StoryFeatures, df: Mapping[int, int], n: int, limit: int | None = None
) -> StoryProfile:
    """An article ready to compare: its sketch and its unit term vector, optionally cut to the
    `limit` heaviest terms (the small ones left out still count in the length)."""
    vector = term_vector(features.terms, df, n)
    if limit is not None:
        vector = dict(heaviest_terms(vector, limit))
    return StoryProfile(features.minhash, features.shingles, vector)


def compare_profiles(a: StoryProfile, b: StoryProfile) -> Similarity:
    """The similarity of two articles by both signals."""
    containment, shared = estimate_overlap(a.minhash, a.shingles, b.minhash, b.shingles)
    return Similarity(containment=containment, shared=shared, cosine=dot(a.vector, b.vector))


def count_documents(features: Iterable[StoryFeatures]) -> tuple[Counter[int], int]:
    """Document frequency of every term over a collection, and its size."""
    df: Counter[int] = Counter()
    n = 0
    for f in features:
        n += 1
        df.update(key for key, _ in f.terms)
    return df, n
