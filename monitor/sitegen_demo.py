"""The demo's sample articles: package data in demo_site/*.txt, by invented outlet.

File format: a header line of `key: value` pairs separated by "|" (outlet, hours_ago,
met_police yes/no, and optionally author, story, section), then the headline, then one paragraph
per line; blank lines are ignored. `met_police` says whether a good Met Police watchlist must
match the article; `story` is shared by reports of the same event (other outlets' versions,
syndicated copies).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources

from monitor.sitegen_pages import SiteArticle

# The demo's invented outlets: name -> (path prefix, feed format, page layout).
DEMO_OUTLETS: dict[str, tuple[str, str, int]] = {
    "The London Ledger": ("/ledger", "rss", 0),
    "Capital Courier": ("/courier", "atom", 1),
    "Northgate Gazette": ("/gazette", "rdf", 2),
    "Fleet Wire": ("/wire", "rss", 1),
}


def parse_demo_article(text: str, slug: str, now: datetime) -> tuple[str, SiteArticle]:
    """One demo file's text -> (outlet, article), published `hours_ago` before now."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        raise ValueError(f"{slug}: needs a header, a headline and paragraphs")
    header: dict[str, str] = {}
    for field in lines[0].split("|"):
        key, sep, value = field.partition(":")
        if not sep:
            raise ValueError(f"{slug}: header field without ':': {field!r}")
        header[key.strip()] = value.strip()
    if header.get("met_police") not in ("yes", "no") or "outlet" not in header:
        raise ValueError(f"{slug}: header needs outlet and met_police: yes|no")
    article = SiteArticle(
        slug=slug,
        title=lines[1],
        paragraphs=tuple(lines[2:]),
        published=now - timedelta(hours=float(header["hours_ago"])),
        author=header.get("author", ""),
        met_police=header["met_police"] == "yes",
        story=header.get("story", ""),
        section=header.get("section", "UK"),
    )
    return header["outlet"], article


def read_demo_texts() -> dict[str, str]:
    """The demo's article files, slug -> text (package data, sorted by slug)."""
    folder = resources.files("monitor").joinpath("demo_site")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".txt")), key=lambda f: f.name)
    return {f.name.removesuffix(".txt"): f.read_text(encoding="utf-8") for f in files}


def load_demo_articles(now: datetime) -> dict[str, list[SiteArticle]]:
    """The demo's articles by outlet, newest first, published relative to now (aware)."""
    by_outlet: dict[str, list[SiteArticle]] = {name: [] for name in DEMO_OUTLETS}
    for slug, text in read_demo_texts().items():
        outlet, article = parse_demo_article(text, slug, now)
        if outlet not in by_outlet:
            raise ValueError(f"{slug}: unknown outlet {outlet!r}")
        by_outlet[outlet].append(article)
    for articles in by_outlet.values():
        articles.sort(key=lambda a: a.published, reverse=True)
    return by_outlet
