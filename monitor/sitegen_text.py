"""Seeded, plausible news English for the benchmark sites: a word-level Markov chain.

The chain is trained on the demo's own articles, so generated text reads like UK news copy and
carries the same names, the Met and its distractors (Met Office, Met Gala, "met with") in
realistic proportions: matching has real work to do. Everything is a pure function of the
random generator passed in, so a seed fixes every word.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_SENTENCE = 45  # longest sentence, in words
_BUDGET = 80  # largest word budget of one paragraph
_LONGEST = _BUDGET - 1 + _SENTENCE
_END = "\n"  # marks the end of a paragraph in the chain
_DROP = str.maketrans("", "", '\u201c\u201d"()[]')  # unpaired quotes/brackets read badly
_WEAK_ENDINGS = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "is",
        "of",
        "on",
        "or",
        "that",
        "the",
        "to",
        "was",
        "were",
        "which",
        "who",
        "with",
    ]
)


@dataclass(frozen=True, slots=True)
class TextModel:
    """An order-2 chain: each pair of words -> the words seen after it (with repeats)."""

    next_words: Mapping[tuple[str, str], tuple[str, ...]]
    starts: tuple[tuple[str, str], ...]  # word pairs that open a sentence


def _ends_sentence(word: str) -> bool:
    return word.endswith((".", "?", "!", ".’", "?’", "!’"))


def build_model(texts: Iterable[str]) -> TextModel:
    """A chain from texts, one paragraph per line (the demo_site format)."""
    followers: dict[tuple[str, str], list[str]] = {}
    starts: list[tuple[str, str]] = []
    for text in texts:
        for line in text.splitlines():
            words = line.translate(_DROP).split()
            if len(words) < 3:
                continue
            for i in range(len(words) - 1):
                if i == 0 or _ends_sentence(words[i - 1]):
                    starts.append((words[i], words[i + 1]))
                after = words[i + 2] if i + 2 < len(words) else _END
                followers.setdefault((words[i], words[i + 1]), []).append(after)
    if not starts:
        raise ValueError("no text to learn from")
    return TextModel({k: tuple(v) for k, v in followers.items()}, tuple(starts))


def generate_sentence(model: TextModel, rng: random.Random, limit: int = _SENTENCE) -> list[str]:
    """The words of one sentence, at most limit long, ending with its punctuation."""
    first, second = rng.choice(model.starts)
    words = [first, second]
    while not _ends_sentence(words[-1]) and len(words) < limit:
        after = rng.choice(model.next_words.get((words[-2], words[-1]), (_END,)))
        if after == _END:
            break
        words.append(after)
    if not _ends_sentence(words[-1]):
        words[-1] = words[-1].rstrip(",;:–—-") + "."
    return words


def generate_paragraph(model: TextModel, rng: random.Random, words: int) -> str:
    """Whole sentences until the paragraph holds at least `words` words."""
    out: list[str] = []
    while len(out) < words:
        out += generate_sentence(model, rng)
    return " ".join(out)


def generate_paragraphs(
    model: TextModel, rng: random.Random, low: int, high: int
) -> tuple[str, ...]:
    """Paragraphs of whole sentences totalling between low and high words (high - low must
    exceed the longest paragraph, _LONGEST words)."""
    if high - low < _LONGEST:
        raise ValueError(f"the range {low}-{high} is narrower than a paragraph")
    # A paragraph overshoots its budget by less than one sentence, so stopping at a target at
    # most _LONGEST below high never passes high.
    target = rng.randint(low, high - _LONGEST)
    paragraphs: list[str] = []
    total = 0
    while total < target:
        paragraph = generate_paragraph(model, rng, rng.randint(30, _BUDGET))
        paragraphs.append(paragraph)
        total += len(paragraph.split())
    return tuple(paragraphs)


def generate_title(model: TextModel, rng: random.Random) -> str:
    """A headline: the opening words of a generated sentence, without a weak last word."""
    words = generate_sentence(model, rng)[: rng.randint(7, 12)]
    words[-1] = words[-1].rstrip(".,;:?!’")
    while len(words) > 4 and words[-1].lower() in _WEAK_ENDINGS:
        words.pop()
        words[-1] = words[-1].rstrip(".,;:?!’")
    title = " ".join(words)
    return title[:1].upper() + title[1:]
