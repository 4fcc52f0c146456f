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
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from monitor.models import TextFeatures

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

_WORD = re.compile(r"[^\W_]+")
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
    counts: Counter[str] = Counter()
    previous: tuple[str, int] | None = None  # the last capitalised content word, and its end
    for match in _WORD.finditer(text):
        raw = match.group()
        word = fold_word(raw)
        if not is_content(word):
            previous = None
            continue
        counts[stem_word(word)] += weight
        if not raw[0].isupper():
            previous = None
            continue
        # a name is two capitalised words with only spaces between them: "Charing Cross"
        if previous is not None and not text[previous[1] : match.start()].strip():
            counts[f"{previous[0]} {word}"] += weight * NAME_WEIGHT
        previous = (word, match.end())
    return counts


def shingle_hashes(text: str) -> set[int]:
    """64-bit hashes of the text's overlapping runs of SHINGLE_WORDS folded words."""
    words = [fold_word(w) for w in _WORD.findall(text)]
    if not words:
        return set()
    size = min(SHINGLE_WORDS, len(words))
    runs = {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}
    return {
        int.from_bytes(hashlib.blake2b(run.encode("utf-8"), digest_size=8).digest(), "big")
        for run in runs
    }


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
    keyed: Counter[int] = Counter()
    for term, n in count_terms(text).items():
        keyed[stable_key(term)] += n  # two terms on one 32-bit key simply add up
    hashes = shingle_hashes(text) if text.strip() else set()
    return TextFeatures(tuple(keyed.items()), sketch_minhash(hashes), len(hashes))


def story_features(title: str, text: str, part: TextFeatures | None = None) -> StoryFeatures:
    """The features of one article: weighted terms of title and text, and a text sketch.
    `part` is text_features(text) when already computed (by an extraction worker)."""
    title = title[:MAX_CHARS]
    if part is None:
        part = text_features(text)
    keyed: Counter[int] = Counter(dict(part.terms))
    for term, n in count_terms(title, TITLE_WEIGHT).items():
        keyed[stable_key(term)] += n
    minhash, shingles = part.minhash, part.shingles
    if not text[:MAX_CHARS].strip():  # copies keep the text and change the headline, so
        hashes = shingle_hashes(title)  # only the text is shingled, unless there is none
        minhash, shingles = sketch_minhash(hashes), len(hashes)
    return StoryFeatures(terms=tuple(sorted(keyed.items())), minhash=minhash, shingles=shingles)


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
    matches = used = 0
    for x, y in zip(a, b, strict=True):
        if x == EMPTY_BIN and y == EMPTY_BIN:
            continue
        used += 1
        matches += x == y
    return matches / used if used else 0.0


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
    weights = {key: (1 + math.log(count)) * idf(df.get(key, 1), n) for key, count in terms}
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {key: w / norm for key, w in weights.items()} if norm else {}


def heaviest_terms(vector: Mapping[int, float], limit: int) -> list[tuple[int, float]]:
    """The `limit` heaviest (key, weight) pairs, ties broken by key so the order is stable."""
    return sorted(vector.items(), key=lambda kw: (-kw[1], kw[0]))[:limit]


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
