"""Commands about feeds: `poll`, `feeds`, `feeds add`, `feeds export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from monitor.cli import UsageProblem, cli, config_option, nothing_stored, settings
from monitor.config import Settings, is_text, load_settings
from monitor.errors import MonitorError
from monitor.pipeline import CycleReport, FeedReport, utcnow
from monitor.runtime import Runtime
from monitor.store import FeedState
from monitor.timeutil import ago, local
from monitor.units import plural

MAX_NAME = 100  # characters of a feed's name taken from its title (a title can be a page long)


@cli.command()
@click.option(
    "--feed",
    "feed_names",
    multiple=True,
    metavar="NAME",
    help="poll only this feed (may be repeated)",
)
@config_option
@click.pass_context
def poll(ctx: click.Context, feed_names: tuple[str, ...]) -> None:
    """Run one poll cycle now, print a summary, exit.

    Exit status 0 even when some feeds fail; 1 only when the config or a watchlist is invalid.
    """
    s = settings(ctx)
    _check_feed_names(s, feed_names)
    with Runtime(s) as rt:
        rt.trust  # noqa: B018 - the CA certificates are read while the rest starts up
        rt.watchlist_set  # noqa: B018 - invalid watchlists stop here, before any request
        states = rt.configured_states(list(feed_names) or None)
        report = _poll_with_progress(rt, states)
        alerts = rt.send_alerts()  # immediate watchlists alert at the end of the cycle
    _print_cycle(report)
    if alerts:
        click.echo(f"alerts: {len(alerts)} made for immediate watchlists")


def _check_feed_names(s: Settings, names: tuple[str, ...]) -> None:
    """Refuse a --feed name the config does not have, suggesting the closest one."""
    known = [f.name for f in s.feeds]
    for name in names:
        if name not in known:
            from difflib import get_close_matches

            from monitor.checks import shown

            close = get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"feeds: {', '.join(known)}"
            # the config is fine: the command was given a wrong value (exit status 2)
            raise UsageProblem(f"--feed: no feed named {name!r} in {shown(s.path)}; {hint}")


def _poll_with_progress(rt: Runtime, states: list[FeedState]) -> CycleReport:
    if not sys.stdout.isatty():
        # color=False: styles are stripped, as click does for output that is not a terminal,
        # without asking the terminal again for every feed (a system call each, at 304 speed)
        return rt.poll(states, on_feed=lambda f: click.echo(_feed_line(f), color=False))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", markup=False),  # a feed's name, as it is written
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("", total=len(states))

        def advance(feed: FeedReport) -> None:
            progress.update(task, advance=1, description=feed.feed)
            if feed.status == "failed":
                progress.console.print(_feed_line(feed), markup=False, emoji=False, highlight=False)

        return rt.poll(states, on_feed=advance)


def _feed_line(feed: FeedReport) -> str:
    if feed.status == "failed":
        return f"failed        {feed.feed}: {feed.error}"
    if feed.status == "not_modified":
        return f"not modified  {feed.feed}"
    extra = (
        f", {_not_extracted(feed.pages_failed, feed.pages_to_retry)}" if feed.pages_failed else ""
    )
    return (
        f"ok            {feed.feed}: {plural(feed.new_articles, 'new article')}, "
        f"{plural(feed.new_hits, 'new hit')}{extra} ({feed.duration:.1f}s)"
    )


def _not_extracted(failed: int, to_retry: int) -> str:
    again = f", {to_retry} to fetch again" if to_retry else ""
    return f"{plural(failed, 'page')} not extracted{again}"


def _print_cycle(report: CycleReport) -> None:
    polled = len(report.feeds)
    click.echo(
        f"polled {plural(polled, 'feed')} in {report.duration:.1f}s: "
        f"{report.count('ok')} ok, {report.count('not_modified')} not modified, "
        f"{report.count('failed')} failed"
    )
    failed = _not_extracted(report.pages_failed, report.pages_to_retry)
    not_extracted = f" ({failed})" if report.pages_failed else ""
    click.echo(f"new articles: {report.new_articles}{not_extracted}")
    if report.pages_retried:
        fetched = plural(report.pages_retried, "page")
        click.echo(
            f"fetched again: {fetched} that had failed, {report.pages_recovered} extracted now"
        )
    click.echo(f"new hits: {report.new_hits}")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@config_option
@click.pass_context
def feeds(ctx: click.Context, as_json: bool) -> None:
    """Each feed's health: last success, last error, consecutive failures, next poll."""
    if ctx.invoked_subcommand is not None:
        if as_json:  # said, not ignored: a script would take OPML for the JSON it asked for
            raise UsageProblem(
                f"--json is for the feed list; feeds {ctx.invoked_subcommand} has none"
            )
        return
    s = settings(ctx)
    now = utcnow()
    if nothing_stored(s):
        states = _never_polled(s)
    else:
        with Runtime(s) as rt:
            states = rt.configured_states()
    if as_json:
        click.echo(json.dumps([_feed_json(st) for st in states], indent=2))
        return
    _print_feeds(states, s.monitor.timezone, now)


def _never_polled(s: Settings) -> list[FeedState]:
    """The configured feeds as a database that has not polled them yet shows them."""
    return [
        FeedState(
            id=0,
            name=f.name,
            config_url=f.url,
            url=f.url,
            etag=None,
            last_modified=None,
            last_poll=None,
            last_success=None,
            last_error=None,
            last_error_at=None,
            failing_since=None,
            failures=0,
            next_poll=None,
            gone=False,
            last_new_article=None,
        )
        for f in sorted(s.feeds, key=lambda f: f.name)
    ]


def _feed_json(st: FeedState) -> dict[str, Any]:
    def iso(when: Any) -> str | None:
        return None if when is None else when.isoformat()

    return {
        "name": st.name,
        "url": st.url,
        "status": _status(st),
        "last_success": iso(st.last_success),
        "last_error": st.last_error,
        "last_error_at": iso(st.last_error_at),
        "consecutive_failures": st.failures,
        "failing_since": iso(st.failing_since),
        "next_poll": iso(st.next_poll),
        "gone": st.gone,
    }


def _status(st: FeedState) -> str:
    if st.gone:
        return "gone"
    if st.failures:
        return "failing"
    return "ok" if st.last_success else "new"


def _print_feeds(states: list[FeedState], tz: Any, now: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for column in ("feed", "status", "last success", "failures", "next poll", "last error"):
        table.add_column(column, overflow="fold")
    for st in states:
        status = _status(st)
        style = {"failing": "yellow", "gone": "red"}.get(status, "")
        error = f"{st.last_error} ({ago(st.last_error_at, now)})" if st.last_error else ""
        # every cell as Text: a name or an error such as "(see [fetch] allow_addresses)" is
        # shown as written, never read as rich markup ("[fetch]") or an emoji code (":x:")
        table.add_row(
            Text(st.name),
            Text(status, style=style),
            Text(local(st.last_success, tz) or "never"),
            Text(str(st.failures)),
            Text(ago(st.next_poll, now)),
            Text(error),
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@feeds.command("add")
@click.argument("url")
@click.option("--name", default=None, help="the feed's name (default: the feed's own title)")
@config_option
@click.pass_context
def feeds_add(ctx: click.Context, url: str, name: str | None) -> None:
    """Add a feed to the config; URL may be the feed or a page that links to it."""
    from monitor.discover import append_feed
    from monitor.feedfind import discover_feed
    from monitor.parse import one_line
    from monitor.urls import lacks_scheme, same_feed

    s = settings(ctx)
    if name is not None and not is_text(name):
        raise UsageProblem("--name is not valid UTF-8 text")
    if is_text(url) and lacks_scheme(url):
        raise UsageProblem(
            f"{url!r} has no scheme; give the address as your browser shows it,"
            f" e.g. https://{url.strip()}"
        )
    found = discover_feed(s.fetch, url)
    # one line in the config, as a name must be: no control character, not a page's worth
    feed_name = one_line(name or found.title or found.url)[:MAX_NAME].strip()
    given = {same_feed(url), same_feed(found.url)}
    for feed in s.feeds:
        if same_feed(feed.url) in given:
            raise MonitorError(f"{found.url} is already in the config as {feed.name!r}")
        if feed.name == feed_name:
            raise MonitorError(f"a feed is already named {feed_name!r}; choose one with --name")
    append_feed(s.path, feed_name, found.url, check=load_settings)
    entries = plural(found.entries, "entry", "entries")
    click.echo(f"added {feed_name!r}: {found.url} ({entries} in it now)")


@feeds.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write to this file instead of standard output",
)
@config_option
@click.pass_context
def feeds_export(ctx: click.Context, output: Path | None) -> None:
    """Write every feed as OPML, for another feed reader or a backup."""
    from monitor.opml import write_opml

    s = settings(ctx)
    text = write_opml(s.feeds, f"monitor feeds from {s.path.name}", utcnow())
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise MonitorError(f"cannot write {output}: {exc.strerror or exc}") from exc
        click.echo(f"wrote {plural(len(s.feeds), 'feed')} to {output}", err=True)
