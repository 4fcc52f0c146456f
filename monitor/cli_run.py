"""Commands that run the monitor: `run`, `digest`, `demo`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from monitor.cli import cli, config_option, nothing_stored, settings
from monitor.pipeline import utcnow
from monitor.runtime import Runtime
from monitor.units import plural

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from monitor.config import Settings
    from monitor.outbox import Outcome
    from monitor.watchlist import Watchlist


@cli.command()
@config_option
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: poll feeds on their intervals, send the digest at the configured time.

    Edited watchlists and config are picked up without a restart. Stop with SIGTERM or Ctrl-C.
    """
    from monitor.daemon import Daemon

    Daemon(settings(ctx)).run()


@cli.command()
@click.option("--dry-run", is_flag=True, help="render and archive, but send and mark nothing")
@config_option
@click.pass_context
def digest(ctx: click.Context, dry_run: bool) -> None:
    """Render the digest of all hits not yet in a digest, archive it, email it, mark them sent."""
    # imported here, as each command's own parts are: every other command starts without them
    from monitor.outbox import Outcome, plan_routes
    from monitor.watchlist import load_watchlists

    s = settings(ctx)
    now = utcnow()
    # one broken watchlist must not hold back the digest of the others: theirs goes out, and
    # its hits wait for the digest after the file is mended
    loaded = load_watchlists(s.monitor.watchlists)
    # a preview makes no database; with send_empty it renders the empty digest, as it should
    if dry_run and not s.digest.send_empty and nothing_stored(s):
        routes = plan_routes(s, [(w.name, w.recipients) for w in loaded.watchlists])
        earlier: list[Outcome] = []
        outcomes = [Outcome(None, r.recipient, "skipped", 0, None) for r in routes]
    else:
        earlier, outcomes = _make_and_send(s, loaded.watchlists, now, dry_run)
    failed = _print_outcomes(earlier, outcomes)
    for error in loaded.errors:
        click.echo(str(error), err=True)
    if loaded.errors:
        click.echo(
            "error: the watchlists above were left out of this digest; their hits wait for"
            " the next one, once the files are mended (monitor check)",
            err=True,
        )
    if failed or loaded.errors:
        sys.exit(1)


def _make_and_send(
    s: Settings, watchlists: Sequence[Watchlist], now: datetime, dry_run: bool
) -> tuple[list[Outcome], list[Outcome]]:
    """Make each recipient's digest and, unless a dry run, send every pending one: the
    digests queued before this run (held, or left by a crash), and this run's."""
    from monitor.delivery import deliver_pending, release_held
    from monitor.outbox import make_digest, plan_routes
    from monitor.watchlist import WatchlistSet

    day = now.astimezone(s.monitor.timezone).date()
    with Runtime(s) as rt:
        rt.use_watchlists(WatchlistSet(tuple(watchlists), [], []))
        routes = plan_routes(s, [(w.name, w.recipients) for w in rt.watchlists])
        outcomes = [
            make_digest(rt.store, s, r, "manual", day, now, dry_run=dry_run) for r in routes
        ]
        if dry_run:
            return [], outcomes
        release_held(rt.store)
        # by hand: every pending digest now, whatever its back-off says
        recipients = {r.recipient for r in routes}
        tried = deliver_pending(rt.store, s, now, recipients=recipients, every=True)
    sent = {o.digest_id: o for o in tried}
    made = {o.digest_id for o in outcomes}
    earlier = [o for digest_id, o in sent.items() if digest_id not in made]
    return earlier, [sent.get(o.digest_id, o) if o.digest_id else o for o in outcomes]


def _print_outcomes(earlier: list[Outcome], outcomes: list[Outcome]) -> bool:
    """Say what became of each digest; whether any failed."""
    from monitor.outbox import ARCHIVE_ONLY

    failed = False
    for o in [*earlier, *outcomes]:
        who = "archive" if o.recipient == ARCHIVE_ONLY else o.recipient
        if o.status == "skipped":
            click.echo(f"{who}: no new hits waiting; nothing new to send")
        elif o.status in ("kept", "elsewhere"):  # not this command's failure
            click.echo(f"{who}: {o.error}")
        elif o.status == "dry-run":
            click.echo(f"{o.archive}")
        elif o.status == "sent":
            done = plural(o.hits, "hit") + (" queued earlier" if o in earlier else "")
            if o.recipient == ARCHIVE_ONLY:
                done += ", not emailed (no [email] in the config)"
            else:
                done = f"sent {done}"
            click.echo(f"{who}: {done}; {_archived(o)}")
        else:
            failed = True
            click.echo(f"{who}: not sent ({o.status}): {o.error}; {_archived(o)}", err=True)
    return failed


@cli.command()
@config_option
@click.pass_context
def demo(ctx: click.Context) -> None:
    """See it work, offline: poll a sample news site on 127.0.0.1 and render a digest.

    Uses the configured watchlists, a throwaway database and no email; the digest is left in
    the digests folder.
    """
    from monitor.demo import run_demo

    s = settings(ctx)
    click.echo(f"serving a sample news site on 127.0.0.1; watchlists from {s.monitor.watchlists}")
    result = run_demo(
        s,
        on_feed=lambda f: click.echo(
            f"  polled {f.feed}: {plural(f.new_articles, 'article')}, {plural(f.new_hits, 'hit')}"
        ),
    )
    cycle = result.cycle
    click.echo(
        f"{plural(cycle.new_articles, 'article')} fetched and extracted in {cycle.duration:.1f}s"
    )
    click.echo(f"matched ({len(result.hits)}):")
    for hit in result.hits:
        click.echo(f"  + [{hit.watchlist}] {hit.article.title} ({hit.article.feed})")
    click.echo(f"not matched ({len(result.missed)}):")
    for article in result.missed:
        click.echo(f"  - {article.title} ({article.feed})")
    click.echo(f"digest: {result.digest.archive}")


def _archived(o: Outcome) -> str:
    if o.archive:
        return f"archived at {o.archive}"
    return "not archived yet: the digests folder could not be written (it is tried again)"
