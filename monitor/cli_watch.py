"""Commands about watchlists: `check`, `test`, `search`, `rematch`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli import (
    UsageProblem,
    cli,
    config_option,
    config_path,
    nothing_stored,
    resolve_since,
    settings,
    since_option,
)
from monitor.config import Settings
from monitor.errors import ConfigError, MonitorError
from monitor.models import Article, Document, MatchResult
from monitor.pipeline import utcnow
from monitor.runtime import Runtime
from monitor.store import to_db
from monitor.timeutil import local
from monitor.units import plural

if TYPE_CHECKING:
    from monitor.watchlist import Watchlist


@cli.command()
@config_option
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config and every watchlist; print each problem as FILE:LINE: message.

    Exit status 1 on any error. Warnings (likely mistakes) are printed but do not fail.
    """
    from monitor.checks import run_checks

    errors, warnings, summary = run_checks(config_path(ctx))
    for warning in warnings:
        click.echo(f"{_where(warning)}warning: {warning.message}", err=True)
    for error in errors:
        click.echo(str(error), err=True)
    if errors:
        click.echo(plural(len(errors), "error"), err=True)
        sys.exit(1)
    click.echo(summary)


def _named_in(path: Path, name: str) -> bool:
    """Whether a watchlist file that does not load says `name = NAME`."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return data.get("name") == name


def _where(problem: ConfigError) -> str:
    return f"{problem.location}: " if problem.location else ""


def find_watchlist(spec: str, s: Settings, also: Collection[str] = ()) -> Watchlist:
    """A watchlist named by file path, by file name in watchlists/, or by its `name`; the
    error for none suggests the closest of those names and of `also`."""
    from monitor.watchlist import load_watchlist, load_watchlists

    folder = s.monitor.watchlists
    for candidate in (Path(spec), folder / spec, folder / f"{spec}.toml"):
        if candidate.is_file():
            return load_watchlist(candidate)
    loaded = load_watchlists(folder)
    for w in loaded.watchlists:
        if w.name == spec:
            return w
    for path in {e.location.file for e in loaded.errors if e.location}:
        if _named_in(Path(path), spec):  # a broken file of that name: its errors say more
            return load_watchlist(Path(path))
    from difflib import get_close_matches

    from monitor.checks import shown

    known = sorted(
        {p.stem for p in folder.glob("*.toml")} | {w.name for w in loaded.watchlists} | {*also}
    )
    close = get_close_matches(spec, known, n=1)
    # each watchlist once: its name, and its file's when that differs
    listed = {w.path.stem: w.name for w in loaded.watchlists}
    each = [n if n == stem else f"{n} ({stem}.toml)" for stem, n in sorted(listed.items())]
    each += sorted(n for n in known if n not in listed and n not in listed.values())
    hint = f"did you mean {close[0]!r}?" if close else f"watchlists: {', '.join(each) or 'none'}"
    where = f"{shown(folder)}/"
    # the name given on the command line is wrong, not a file: a command used wrongly
    raise UsageProblem(
        f"no watchlist {spec!r} in {where} (a file, a file name or a watchlist name); {hint}"
    )


def read_document(path: Path, s: Settings) -> Document:
    """A document to test: .html goes through the pipeline's extraction, with its limits (the
    [fetch] byte cap, an extraction worker with [extract]'s time and memory limits); text's
    first line is the title."""
    page = path.suffix.lower() in (".html", ".htm", ".xhtml")
    try:
        size = path.stat().st_size
        if page and size > s.fetch.max_bytes:
            raise MonitorError(
                f"{path}: {size:,} bytes, over [fetch] max_bytes ({s.fetch.max_bytes:,}):"
                " the pipeline would not read a page this large"
            )
        data = path.read_bytes()
    except OSError as exc:  # a wrong argument, as for a watchlist that does not exist
        raise UsageProblem(f"cannot read {path}: {exc.strerror or exc}") from exc
    if page:
        return _extract_file(path, data, s)
    text = data.decode("utf-8", errors="replace")
    title, _, body = text.partition("\n")
    return Document(title.strip(), body)


def _extract_file(path: Path, data: bytes, s: Settings) -> Document:
    from monitor.errors import ExtractError

    with Runtime(s) as rt:
        try:
            extracted = rt.extractor.submit(path.resolve().as_uri(), data, {}).result()
        except ExtractError as exc:
            raise MonitorError(f"{path}: not extracted: {exc}") from exc
    return Document(extracted.title or "", extracted.text)


def read_page(url: str, s: Settings) -> tuple[Document, str]:
    """A web page to test, fetched and extracted as the pipeline does: the address guard,
    the byte cap and the deadline of [fetch], and an extraction worker with [extract]'s limits.
    Also returns the address it was fetched from, after redirects."""
    from monitor.errors import ExtractError, FetchError
    from monitor.fetch import is_html

    with Runtime(s) as rt:
        try:
            page = rt.fetcher.fetch(url)
        except FetchError as exc:
            raise MonitorError(f"page not fetched: {exc}") from exc
        if not is_html(page):
            raise MonitorError(f"{url}: not an HTML page ({page.content_type or 'unknown type'})")
        try:
            extracted = rt.extractor.submit(page.url, page.content, page.headers).result()
        except ExtractError as exc:
            raise MonitorError(f"not extracted: {exc}") from exc
    return Document(extracted.title or "", extracted.text), page.url


def stored_as(s: Settings, watchlist: str, urls: Sequence[str]) -> dict[str, Any] | None:
    """What the store knows of the article at any of these addresses: when and from which
    feed it came, whether its text or only its summary was matched (and why), whether its
    page is to be fetched again, and whether it is a hit for the watchlist. None when no
    polled feed has carried it (or nothing was ever polled)."""
    from monitor.urls import canonical_url, fetchable

    if not s.monitor.database.exists():
        return None
    keys = (fetchable(url) for url in urls)
    with Runtime(s) as rt:
        for key in dict.fromkeys(map(canonical_url, filter(None, keys))):
            article = next(rt.store.articles("a.url = ?", (key,)), None)
            if article is None:
                continue
            (due,) = rt.store.read("SELECT page_retry_at FROM articles WHERE id = ?", (article.id,))
            hit = rt.store.read(
                "SELECT 1 FROM hits WHERE article_id = ? AND watchlist = ?", (article.id, watchlist)
            )
            return {
                "title": article.title,  # the feed's: the pipeline matched under it
                "first_seen": article.first_seen.isoformat(),
                "feed": article.feed,
                "full_text": article.full_text,
                "extract_error": article.extract_error,
                "to_fetch_again": due[0] is not None,
                "hit_stored": bool(hit),
            }
    return None


@cli.command("test")
@click.argument("watchlist")
@click.argument("file", required=False, metavar="[FILE|URL]")
@since_option(help="preview an edited watchlist over stored articles since then (e.g. 30d)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@config_option
@click.pass_context
def test_command(
    ctx: click.Context, watchlist: str, file: str | None, since: str | None, as_json: bool
) -> None:
    """Match one document against one watchlist and show why, or preview an edited watchlist.

    \b
    monitor test met-police article.html     why does it match (or not)?
    monitor test met-police https://...      the same for a page on the web
    monitor test met-police --since 30d      what would the edited file change?
    """
    s = settings(ctx)
    w = find_watchlist(watchlist, s)
    _warn_of_mistakes(w)
    if file is not None and since is not None:
        raise click.UsageError(
            "give a FILE to test or --since to preview over stored articles, not both"
        )
    if file is None:
        if since is None:
            raise click.UsageError(
                "give a FILE to test, or --since to preview over stored articles"
            )
        from monitor.cli_preview import preview

        preview(s, w, resolve_since(since, s, utcnow()), as_json)
        return
    from monitor.match import explain
    from monitor.urls import is_web_address, unwrap_redirect

    stored: dict[str, Any] | None = None
    url = is_web_address(file)  # FILE is a web address rather than a path
    if url:
        page = unwrap_redirect(file)  # a link copied from a Google Alert: the article's own
        document, fetched_from = read_page(page, s)
        stored = stored_as(s, w.name, [page, fetched_from, file])
        if stored is not None and stored["title"]:  # as the pipeline saw it: `title:` agrees
            document = Document(stored["title"], document.text)
    elif Path(file).is_dir():
        raise click.BadParameter(f"File {file!r} is a directory.", param_hint="'[FILE|URL]'")
    else:
        document = read_document(Path(file), s)
    result = explain(w, document)
    if as_json:
        shown = _result_json(result) | ({"stored": stored} if url else {})
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    _print_result(result)
    if url:
        click.echo(f"  stored:      {_stored_line(stored, s)}")


def _warn_of_mistakes(w: Watchlist) -> None:
    """The likely mistakes `monitor check` names, told while the file is being tried out
    (on stderr: the JSON on stdout stays whole)."""
    from monitor.watchlint import lint_watchlist

    for warning in lint_watchlist(w):
        click.echo(f"{_where(warning)}warning: {warning.message}", err=True)


def _stored_line(stored: dict[str, Any] | None, s: Settings) -> str:
    """What the store knows of a tested page, in one line."""
    if stored is None:
        return "no; no feed that was polled has carried it"
    if stored["full_text"]:
        matched = "its text was matched"
    else:
        why = f" ({stored['extract_error']})" if stored["extract_error"] else ""
        again = "; its page will be fetched again" if stored["to_fetch_again"] else ""
        matched = f"only its feed summary was matched{why}{again}"
    hit = "a hit" if stored["hit_stored"] else "no hit"
    seen = local(datetime.fromisoformat(stored["first_seen"]), s.monitor.timezone)
    return f"first seen {seen} from {stored['feed']}; {matched}; {hit} stored"


def _result_json(result: MatchResult) -> dict[str, Any]:
    return {
        "watchlist": result.watchlist,
        "hit": result.hit,
        "matched": list(result.matched),
        "excluded_by": list(result.excluded_by),
        "snippet": result.snippet.text if result.snippet else "",
        "marks": [list(m) for m in result.snippet.marks] if result.snippet else [],
    }


def _print_result(result: MatchResult) -> None:
    verdict = "HIT" if result.hit else "no hit"
    click.echo(f"{result.watchlist}: {verdict}")
    click.echo(f"  matched:     {'; '.join(result.matched) or '(none)'}")
    click.echo(f"  excluded by: {'; '.join(result.excluded_by) or '(none)'}")
    if result.snippet and result.snippet.text:
        if _colour():
            marked = result.snippet.marked("\x1b[1;33m", "\x1b[0m")
        else:
            marked = result.snippet.marked("[", "]")
        click.echo(f"  snippet:     {marked}")


def _colour() -> bool:
    """Whether to highlight with terminal colours: a terminal, and neither NO_COLOR nor a dumb
    terminal asks for none (https://no-color.org)."""
    asked_not = bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"
    return sys.stdout.isatty() and not asked_not


@cli.command()
@click.argument("query")
@since_option()
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="show at most this many",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@config_option
@click.pass_context
def search(ctx: click.Context, query: str, since: str | None, limit: int, as_json: bool) -> None:
    """Search stored articles with the watchlist query language, newest first.

    \b
    monitor search 'vetting NEAR/15 (police OR officer*)' --since 30d
    """
    from monitor.match import match_query
    from monitor.query import QuerySyntaxError, parse_query

    s = settings(ctx)
    try:
        parsed = parse_query(query)
    except QuerySyntaxError as exc:
        raise UsageProblem(f"{exc.message}\n  {query}\n  {' ' * exc.offset}^") from exc
    after = resolve_since(since, s, utcnow())
    found: list[Article] = []
    if nothing_stored(s):
        _print_articles(found, s, as_json)
        return
    with Runtime(s) as rt:
        where, params = ("a.first_seen >= ?", [to_db(after)]) if after else ("1", [])
        for article in rt.store.articles(
            f"{where} ORDER BY COALESCE(a.published, a.first_seen) DESC, a.id DESC", params
        ):
            if match_query(parsed, article.document):
                found.append(article)
                if len(found) > limit:
                    break
    _print_articles(found[:limit], s, as_json)
    if len(found) > limit:  # a list cut short must not read as complete
        click.echo(f"more than {limit} match; these are the newest: raise --limit", err=True)


def _print_articles(articles: list[Article], s: Settings, as_json: bool) -> None:
    tz = s.monitor.timezone
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "url": a.url,
                        "title": a.title,
                        "feed": a.feed,
                        "source": a.source,
                        "published": a.published.isoformat() if a.published else None,
                        "first_seen": a.first_seen.isoformat(),
                        "story": a.story,
                        "full_text": a.full_text,
                    }
                    for a in articles
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for a in articles:
        click.echo(f"{local(a.published or a.first_seen, tz)}  [{a.outlet}] {a.title}")
        click.echo(f"    {a.url}")
    click.echo(plural(len(articles), "article"))


@cli.command()
@since_option(default="7d", help="rematch articles first seen since then (default 7d)")
@config_option
@click.pass_context
def rematch(ctx: click.Context, since: str) -> None:
    """Run today's watchlists over stored articles; record only hits that are new."""
    from monitor.feedstore import rematch_articles

    s = settings(ctx)
    after = resolve_since(since, s, utcnow())
    assert after is not None
    with Runtime(s) as rt:
        matcher = rt.matcher  # invalid watchlists stop here, stored articles or not
        if nothing_stored(s):
            click.echo("rematched 0 articles: 0 new hits")
            return
        articles = list(rt.store.articles("a.first_seen >= ? ORDER BY a.id", [to_db(after)]))
        new = rematch_articles(
            rt.store,
            matcher,
            articles,
            utcnow(),
            progress=_progress_iter if sys.stdout.isatty() else None,
        )
    click.echo(f"rematched {plural(len(articles), 'article')}: {plural(new, 'new hit')}")


def _progress_iter(items: Sequence[Article]) -> Iterable[Article]:
    from rich.progress import track

    return track(items, description="rematching", transient=True)
