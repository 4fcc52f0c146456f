"""Finding a site's feed from one of its pages, and adding a feed to config.toml."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

from monitor.errors import BadURL, ConfigError, ConfigErrors, MonitorError
from monitor.urls import canonical_url

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+json",
    "application/xml",
    "text/xml",
)
# where sites usually keep a feed when the page does not say
COMMON_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml", "/feeds/all")
MAX_SITEMAPS_TRIED = 3  # of those a site's robots.txt names, when it has no feed


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (type, href, title)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("link", "a"):
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        rels = a.get("rel", "").lower().split()
        kind = a.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and a.get("href"):
            self.links.append((kind, a["href"], a.get("title", "")))


def find_feed_links(html: str, base: str) -> list[str]:
    """Feed URLs a page declares with <link rel="alternate" type="application/rss+xml">,
    absolute, RSS and Atom first, in page order."""
    finder = _LinkFinder()
    finder.feed(html)
    finder.close()
    ranked = sorted(enumerate(finder.links), key=lambda x: (FEED_TYPES.index(x[1][0]) > 2, x[0]))
    out: list[str] = []
    for _, (_kind, href, _title) in ranked:
        try:
            url = canonical_url(href, base)
        except BadURL:  # javascript:, data: and broken hrefs are not feeds
            continue
        if url.startswith(("http://", "https://")) and url not in out:
            out.append(url)
    return out


def guess_feed_urls(page_url: str) -> list[str]:
    """Common feed locations on the page's site, to try when the page declares none."""
    return [canonical_url(path, page_url) for path in COMMON_PATHS]


def robots_url(page_url: str) -> str:
    """The site's robots.txt, where it names its sitemaps."""
    return canonical_url("/robots.txt", page_url)


def sitemaps_in_robots(text: str, base: str) -> list[str]:
    """The sitemaps a robots.txt names ("Sitemap: URL" lines), news sitemaps first (those
    with "news" in their address), at most MAX_SITEMAPS_TRIED of them."""
    found: list[str] = []
    for line in text.splitlines():
        field, _, value = line.partition(":")
        if field.strip().lower() != "sitemap" or not value.strip():
            continue
        try:
            url = canonical_url(value.strip(), base)
        except BadURL:
            continue
        if url not in found:
            found.append(url)
    return news_first(found)


def news_first(sitemaps: list[str]) -> list[str]:
    """Sitemaps to try for a site's news, at most MAX_SITEMAPS_TRIED: those with "news" in
    their address first, each group in the order given."""
    ranked = sorted(sitemaps, key=lambda url: "news" not in url.lower())  # a stable sort
    return ranked[:MAX_SITEMAPS_TRIED]


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def append_feed(
    config: Path, name: str, url: str, check: Callable[[Path], object] | None = None
) -> None:
    """Add a [[feeds]] table at the end of config.toml, keeping everything else as written.

    Written to a temporary file beside it, checked there with `check` (which raises if the
    result would not load) and only then renamed over the original: a failed check or a crash
    leaves the config as it was. Line endings stay as the file has them (CRLF too), and two
    `feeds add` at once take turns, so neither loses the other's feed.
    """
    with _folder_lock(config.parent):
        raw = config.read_bytes()
        newline = "\r\n" if b"\r\n" in raw else "\n"
        text = raw.decode("utf-8")
        if text and not text.endswith("\n"):
            text += newline
        table = ["", "[[feeds]]", f"name = {toml_string(name)}", f"url = {toml_string(url)}", ""]
        text += newline.join(table)
        fd, tmp = tempfile.mkstemp(dir=config.parent, prefix=".config-", suffix=".toml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            if check is not None:
                _check_edit(check, Path(tmp))
            os.chmod(tmp, config.stat().st_mode & 0o777)
            os.replace(tmp, config)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the config's folder (no lock file left behind), released when the
    edit is over or the process ends."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_edit(check: Callable[[Path], object], edited: Path) -> None:
    try:
        check(edited)
    except ConfigError as exc:
        first = exc.errors[0] if isinstance(exc, ConfigErrors) else exc
        raise MonitorError(
            f"the config would not load with this feed ({first.message}); nothing was changed"
        ) from exc
