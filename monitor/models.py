"""Frozen records passed between the stages, named by where they are in their life.

Feed (config) -> Fetched (fetch) -> ParsedFeed/Item (parse) -> Extracted (extract)
-> Article (store) -> MatchResult (match) -> Hit (store) -> digest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed as the config names it."""

    name: str
    url: str
    interval: float  # seconds between polls


@dataclass(frozen=True, slots=True)
class Fetched:
    """A completed HTTP exchange, body already decoded and capped."""

    url: str  # the URL that finally answered, after redirects
    status: int
    headers: Mapping[str, str]  # lower-case names
    content: bytes
    moved_to: str | None = None  # set when every redirect hop was permanent (301/308)
    elapsed: float = 0.0

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case ("" when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a feed, as the feed describes it."""

    guid: str | None
    url: str  # canonical: tracking parameters and fragment removed
    link: str  # absolute, as the feed gave it
    title: str
    summary: str  # plain text
    published: datetime | None  # aware, UTC; None when missing or not believable
    # the outlet that wrote it, when the feed only passes it on (Google Alerts, Google News):
    # the entry's <source>, or the host its redirect link leads to; "" for the feed's own
    source: str = ""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a feed body holds."""

    title: str
    link: str
    items: tuple[Item, ...]
    skipped: int = 0  # entries with neither link nor GUID
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """What story grouping needs of an article's text (monitor.stories.text_features),
    computed where the text is extracted so the storing thread only adds the title."""

    terms: tuple[tuple[int, int], ...]  # (term key, count) of the text's terms
    minhash: tuple[int, ...]
    shingles: int


@dataclass(frozen=True, slots=True)
class Extracted:
    """The readable part of an article page."""

    title: str | None
    text: str
    story: TextFeatures | None = None  # the text's story features, when the worker made them


@dataclass(frozen=True, slots=True)
class Document:
    """What a watchlist is matched against."""

    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Snippet:
    """A short passage of the text; marks are (start, end) offsets of matched words in it."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()

    def joined_marks(self) -> list[tuple[int, int]]:
        """The marks in order, those apart by nothing but spaces or hyphens made one, so that
        a phrase reads "[Independent Office for Police Conduct]", not a mark a word. Marks
        that overlap an earlier one or fall outside the text are left out."""
        out: list[tuple[int, int]] = []
        for start, end in sorted(self.marks):
            last = out[-1][1] if out else 0
            if start < last or end <= start or end > len(self.text):
                continue  # a bug upstream must not garble the text
            if out and _JOINABLE.fullmatch(self.text, last, start):
                out[-1] = (out[-1][0], end)
            else:
                out.append((start, end))
        return out

    def marked(self, open_: str = "[", close: str = "]") -> str:
        """The text with each run of marked words wrapped in open_ ... close."""
        out: list[str] = []
        pos = 0
        for start, end in self.joined_marks():
            out += [self.text[pos:start], open_, self.text[start:end], close]
            pos = end
        out.append(self.text[pos:])
        return "".join(out)


_JOINABLE = re.compile(r"[\s\-\u2010\u2011]*")  # between marks that read as one


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Why a document does or does not match one watchlist."""

    watchlist: str
    hit: bool
    matched: tuple[str, ...] = ()  # source text of the match queries that matched
    excluded_by: tuple[str, ...] = ()  # source text of the exclude queries that matched
    snippet: Snippet | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """An article as stored: fetched and extracted once, whatever feeds carry it."""

    id: int
    url: str
    guid: str | None
    feed: str
    title: str
    summary: str
    text: str
    full_text: bool  # False when only the feed's title and summary could be used
    published: datetime | None
    first_seen: datetime
    story: int | None = None
    extract_error: str | None = None
    source: str = ""  # the outlet that wrote it, when the feed only passes it on

    @property
    def outlet(self) -> str:
        """Who published it, as a digest names them: the source, else the feed."""
        return self.source or self.feed

    @property
    def document(self) -> Document:
        """What watchlists see: the extracted text, or the summary when there is none."""
        return Document(self.title, self.text if self.full_text else self.summary)


@dataclass(frozen=True, slots=True)
class Hit:
    """One (article, watchlist) pair that matched."""

    id: int
    watchlist: str
    article: Article
    matched: tuple[str, ...]
    snippet: Snippet
    first_seen: datetime
    digest: int | None = None
    outlets: tuple[str, ...] = field(default=())  # the feeds that carried this very article
