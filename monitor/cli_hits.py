"""Commands about hits: `hits` (and the digest commands registered by cli_digest)."""

from __future__ import annotations

import json
from typing import Any

import click

from monitor.cli import cli, config_option, nothing_stored, resolve_since, settings, since_option
from monitor.config import Settings
from monitor.ledger import list_hits
from monitor.models import Hit
from monitor.pipeline import utcnow
from monitor.runtime import Runtime
from monitor.timeutil import local
from monitor.units import plural


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as `monitor hits --json` prints it (the spec's field names)."""
    a = hit.article
    return {
        "watchlist": hit.watchlist,
        "url": a.url,
        "title": a.title,
        "feed": a.feed,
        "source": a.source,
        "published": a.published.isoformat() if a.published else None,
        "first_seen": hit.first_seen.isoformat(),
        "matched": list(hit.matched),
        "snippet": hit.snippet.text,
        "marks": [list(m) for m in hit.snippet.marks],
        "story": a.story if a.story is not None else a.id,
        "full_text": a.full_text,
        "digest": hit.digest,
    }


@cli.command()
@click.option("--watchlist", default=None, metavar="NAME", help="only this watchlist's hits")
@since_option()
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
@config_option
@click.pass_context
def hits(ctx: click.Context, watchlist: str | None, since: str | None, as_json: bool) -> None:
    """List stored hits, newest first.

    --watchlist takes a watchlist's name, its file name (met-police) or the name of one whose
    file is gone but whose hits are stored.
    """
    s = settings(ctx)
    after = resolve_since(since, s, utcnow())
    found: list[Hit] = []
    if not nothing_stored(s):
        from monitor.watchlist import load_watchlists

        with Runtime(s) as rt:
            # the hits of a watchlist renamed since the last poll follow it now (those of a
            # file that does not load stay as they are)
            rt.use_watchlists(load_watchlists(s.monitor.watchlists))
            name = None if watchlist is None else _watchlist_name(watchlist, s, rt)
            found = list_hits(rt.store, watchlist=name, since=after)
    if as_json:
        click.echo(json.dumps([hit_json(h) for h in found], indent=2, ensure_ascii=False))
        return
    _print_hits(found, s)


def _watchlist_name(spec: str, s: Settings, rt: Runtime) -> str:
    """The name the hits of the watchlist `spec` names are stored under; an error, with the
    names it could be, when it is no watchlist's (a mistyped name used to list no hits)."""
    from monitor.cli_watch import find_watchlist

    stored = {name for (name,) in rt.store.read("SELECT DISTINCT watchlist FROM hits")}
    if spec in stored:
        return spec
    return find_watchlist(spec, s, also=stored).name


def _print_hits(found: list[Hit], s: Settings) -> None:
    tz = s.monitor.timezone
    for h in found:
        a = h.article
        summary_only = "" if a.full_text else "  (summary only)"
        click.echo(
            f"{local(h.first_seen, tz)}  {h.watchlist}  [{a.outlet}] {a.title}{summary_only}"
        )
        click.echo(f"    {a.url}")
        click.echo(f"    matched: {'; '.join(h.matched)}")
        if h.snippet.text:
            click.echo(f"    {h.snippet.marked('[', ']')}")
    click.echo(plural(len(found), "hit"))
