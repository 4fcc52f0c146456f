"""Commands that run the monitor: `run`, `digest`, `demo`."""

from __future__ import annotations

import sys

import click

from monitor.cli import cli, config_option, settings
from monitor.outbox import ARCHIVE_ONLY, deliver_pending, make_digest, plan_routes, release_held
from monitor.pipeline import utcnow
from monitor.runtime import Runtime


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
    s = settings(ctx)
    now = utcnow()
    day = now.astimezone(s.monitor.timezone).date()
    failed = False
    with Runtime(s) as rt:
        routes = plan_routes(s, [(w.name, w.recipients) for w in rt.watchlists])
        outcomes = [
            make_digest(rt.store, s, r, "manual", day, now, dry_run=dry_run) for r in routes
        ]
        if not dry_run:
            release_held(rt.store)
            sent = {o.digest_id: o for o in deliver_pending(rt.store, s, now)}
            outcomes = [sent.get(o.digest_id, o) if o.digest_id else o for o in outcomes]
    for o in outcomes:
        who = "archive" if o.recipient == ARCHIVE_ONLY else o.recipient
        if o.status == "skipped":
            click.echo(f"{who}: no hits waiting; nothing to send")
        elif o.status == "dry-run":
            click.echo(f"{o.archive}")
        elif o.status == "sent":
            click.echo(f"{who}: sent {o.hits} hits; archived at {o.archive}")
        else:
            failed = True
            click.echo(
                f"{who}: not sent ({o.status}): {o.error}; archived at {o.archive}", err=True
            )
    if failed:
        sys.exit(1)
