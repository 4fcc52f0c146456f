"""Steady-state poll side by side with the tools users would pick instead, on the same site.

Peers, installed by this script from PyPI with pip into a bench-only virtualenv
(bench/.peers/, never the project's .venv), at pinned versions:

- reader (lemon24), the library: bench/peers/reader_poll.py opens its store and calls
  update_feeds(workers=10, scheduled=False); a whole process is timed;
- feed2exec, its `fetch` command with its defaults (one feed at a time) and the `null`
  output plugin;
- rss2email, its `run --no-send` command (fetch, parse, build the messages, send nothing).

Each is given the same feeds of one loopback site (200 feeds x 20 items, 50 ms of latency per
request), polled once to store every entry (not timed), then timed over three more polls in
which every feed is unchanged, as `monitor poll` is. The polls take turns: each round is one
`monitor poll`, then one poll by each peer, and a peer's ratio to monitor is taken within each
round (a shared machine's speed drifts over the minute a round takes). The server counts the
requests each tool makes and how many carry validators (ETag or Last-Modified), so a tool that
refetches everything is seen to. The peers fetch feeds only; monitor also fetches and extracts every
new article page, but in a steady state there are none, so the work compared is the same.

Run: .venv/bin/python -m bench --only peers
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.bench_poll import (
    RUNS,
    Measured,
    SiteServer,
    Steady,
    expect_conditional_feed_requests,
    run_measured,
    shared_steady,
    site_articles,
    sizes,
    steady_rows,
    time_steady,
    workspace,
)
from bench.common import Row, spread
from bench.report import Outcome

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers"
DRIVERS = HERE / "peers"
PINS = {
    "reader": "reader==3.26",
    "feed2exec": "feed2exec==0.23.0",
    "rss2email": "rss2email==3.14",
    "py-spy": "py-spy==0.4.3",
}
# reader's vendored feedparser imports sgmllib, which feedparser 6.0.12 and later no longer
# bring in (they depend on feedparser-sgmllib instead), so it is installed beside reader.
EXTRAS = {"reader": ["sgmllib3k==1.0.0"]}
IMPORTS = {"reader": "reader, sgmllib", "feed2exec": "feed2exec", "rss2email": "rss2email"}
READER_WORKERS = 10
TARGETS = {"reader": 3.0, "feed2exec": 20.0, "rss2email": 20.0}


# -- the bench-only virtualenv -----------------------------------------------------------------


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> str | None:
    """Create bench/.peers if it is missing; an error message, or None."""
    if venv_python().exists():
        return None
    done = subprocess.run(
        [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=False
    )
    return None if done.returncode == 0 else f"venv failed: {done.stderr.strip()[-300:]}"


def installed(name: str) -> bool:
    """Whether the pinned package is in bench/.peers already."""
    if name == "py-spy":
        return (VENV / "bin" / "py-spy").exists()
    version = PINS[name].split("==")[1]
    check = f"import {IMPORTS[name]}, importlib.metadata as m\n"
    check += f"assert m.version({name!r}) == {version!r}"
    done = subprocess.run([str(venv_python()), "-c", check], capture_output=True, check=False)
    return done.returncode == 0


def ensure_installed(names: Sequence[str]) -> dict[str, str]:
    """Install what is missing, with pip from PyPI; an error message per package that failed."""
    problem = ensure_venv()
    if problem:
        return dict.fromkeys(names, problem)
    errors = {}
    for name in names:
        if installed(name):
            continue
        done = subprocess.run(
            [
                str(venv_python()),
                "-m",
                "pip",
                "install",
                "--quiet",
                PINS[name],
                *EXTRAS.get(name, []),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not installed(name):
            lines = [line for line in done.stderr.splitlines() if "WARNING" not in line]
            errors[name] = f"pip install {PINS[name]} failed: " + " ".join(lines)[-300:]
    return errors


def ensure_tool(name: str) -> Path | None:
    """A command-line tool from bench/.peers (installed if missing), or None."""
    if ensure_installed([name]):
        return None
    return VENV / "bin" / name


# -- the peers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """How to set a peer up for a list of feeds, and the command that polls once."""

    name: str
    setup: Callable[[Path, Sequence[tuple[str, str]], dict[str, str]], list[str]]
    how: str


def peer_env(home: Path) -> dict[str, str]:
    """The environment of a peer: its own home, so nothing lands in the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PYTHON"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"))
    env.update(XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"))
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def setup_reader(folder: Path, feeds: Sequence[tuple[str, str]], env: dict[str, str]) -> list[str]:
    urls = folder / "urls.txt"
    urls.write_text("\n".join(url for _, url in feeds) + "\n", encoding="utf-8")
    database = str(folder / "reader.sqlite")
    driver = str(DRIVERS / "reader_poll.py")
    _setup_step([str(venv_python()), driver, "add", database, str(urls)], env)
    return [str(venv_python()), driver, "update", database, str(READER_WORKERS)]


def setup_feed2exec(
    folder: Path, feeds: Sequence[tuple[str, str]], env: dict[str, str]
) -> list[str]:
    config = folder / "feed2exec.ini"
    sections = [f"[{name}]\nurl = {url}\noutput = feed2exec.plugins.null\n" for name, url in feeds]
    config.write_text("\n".join(sections), encoding="utf-8")
    database = folder / "feed2exec.db"
    command = [str(VENV / "bin" / "feed2exec"), "--config", str(config)]
    return [*command, "--database", str(database), "fetch"]


def setup_rss2email(
    folder: Path, feeds: Sequence[tuple[str, str]], env: dict[str, str]
) -> list[str]:
    opml = folder / "feeds.opml"
    outlines = "\n".join(
        f'<outline type="rss" text="{html.escape(name)}" xmlUrl="{html.escape(url)}"/>'
        for name, url in feeds
    )
    opml.write_text(
        f'<?xml version="1.0"?>\n<opml version="1.0"><head><title>bench</title></head>'
        f"<body>\n{outlines}\n</body></opml>\n",
        encoding="utf-8",
    )
    base = [str(VENV / "bin" / "r2e"), "-c", str(folder / "r2e.cfg")]
    base += ["-d", str(folder / "r2e.json")]
    _setup_step([*base, "new", "bench@example.org"], env)
    _setup_step([*base, "opmlimport", str(opml)], env)
    return [*base, "run", "--no-send"]


def _setup_step(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[1]).name} setup failed: {done.stderr.strip()[-300:]}")


PEERS = (
    Peer("reader", setup_reader, f"update_feeds(workers={READER_WORKERS}, scheduled=False)"),
    Peer("feed2exec", setup_feed2exec, "fetch, defaults (one feed at a time), null output"),
    Peer("rss2email", setup_rss2email, "run --no-send"),
)


@dataclass
class PeerResult:
    """A peer's command, its first (storing) poll, its timed polls, what the server saw of
    them, and each round's ratio of its wall time to monitor's."""

    peer: Peer
    home: Path
    env: dict[str, str]
    command: list[str]
    first: Measured
    runs: list[Measured] = field(default_factory=list)
    requests: int = 0
    conditional: int = 0
    ratios: list[float] = field(default_factory=list)


def prepare_peer(peer: Peer, folder: Path, site: SiteServer) -> PeerResult:
    """Set the peer up and poll once to store everything (not timed)."""
    home = folder / peer.name
    home.mkdir(parents=True)
    env = peer_env(home)
    command = peer.setup(home, site.info.feeds, env)
    first = run_measured(command, cwd=home, env=env).check(f"{peer.name} (first poll)")
    return PeerResult(peer, home, env, command, first)


def measure_in_turn(
    steady: Steady, feeds: int, peers: list[PeerResult]
) -> tuple[list[Measured], float]:
    """RUNS rounds of one unchanged `monitor poll`, then one poll by each peer; monitor's
    runs and the server's CPU a monitor poll. A peer's ratio is taken within each round, so
    a machine that slows down or speeds up meanwhile weighs on both sides of it."""
    site = steady.site
    site.requests()
    monitor: list[Measured] = []
    server = 0.0
    for _ in range(RUNS):
        before = site.cpu()
        [mine] = time_steady(steady.config, feeds, runs=1)
        server += site.cpu() - before
        expect_conditional_feed_requests(site)
        monitor.append(mine)
        for result in peers:
            name = result.peer.name
            run = run_measured(result.command, cwd=result.home, env=result.env).check(name)
            _, to_feeds, conditional = site.requests()
            result.runs.append(run)
            result.requests += to_feeds
            result.conditional += conditional
            result.ratios.append(run.wall / mine.wall)
    return monitor, server / RUNS


def peer_rows(result: PeerResult) -> list[Row]:
    """The peer's wall time, and how many times slower than monitor it is."""
    peer = result.peer
    walls = [m.wall for m in result.runs]
    cpu = [m.cpu_main + m.cpu_children for m in result.runs]
    polls = len(result.runs)
    validated = f"{result.conditional}/{result.requests} feed requests conditional"
    target = TARGETS[peer.name]
    ratio = spread(result.ratios)
    verdict = "meets" if ratio[0] >= target else "misses"
    return [
        Row(
            "peers",
            f"{peer.name}: wall",
            *spread(walls),
            "s",
            f"{peer.how}; {validated} over {polls} polls; first poll {result.first.wall:.1f} s",
        ),
        Row("peers", f"{peer.name}: CPU", *spread(cpu), "s", "process tree"),
        Row(
            "peers",
            f"{peer.name} / monitor, wall",
            *ratio,
            "x",
            f"monitor {verdict} the target of {target:g}x faster; each round's ratio",
        ),
    ]


def run(quick: bool = False, folder: Path | None = None) -> Outcome:
    """monitor and every peer that could be installed, on one shared site."""
    feeds = sizes(quick)[0]
    articles = site_articles(feeds, quick)
    errors = ensure_installed(list(IMPORTS))
    notes = [
        f"Same site for all: {feeds} feeds x {articles} items, 50 ms per request; each tool "
        "polled once to store everything (not timed), then timed over three polls in which "
        "every feed is unchanged, taking turns: in each round monitor polls, then every "
        "peer, and each ratio is the median of the rounds' own. Every figure is a whole "
        "process, start-up included. "
        "The peers fetch feeds only, never the article pages; in a steady state monitor "
        "fetches none either, so the work compared is the same. monitor runs with "
        "concurrency = per_host = 32 (the site is one host); reader with 10 workers; "
        "feed2exec and rss2email with their defaults, one feed at a time.",
        f"Versions: {', '.join(PINS[p] for p in IMPORTS)}, in bench/.peers (Python "
        f"{sys.version.split()[0]}).",
    ]
    with workspace(folder, "peers") as work:
        steady: Steady = shared_steady(work, feeds, articles)
        prepared = []
        for peer in PEERS:
            if peer.name in errors:
                notes.append(f"{peer.name} skipped: {errors[peer.name]}")
                continue
            try:
                prepared.append(prepare_peer(peer, work, steady.site))
            except RuntimeError as exc:
                notes.append(f"{peer.name} skipped: it could not run here: {exc}")
        monitor, server = measure_in_turn(steady, feeds, prepared)
        note = "every answer 304; concurrency = per_host = 32"
        note += f"; server used {server:.2f} s CPU a poll"
        rows = [
            replace(r, section="peers", label=f"monitor poll, {r.label}")
            for r in steady_rows(f"{feeds:,} unchanged feeds", monitor, note, None)
        ]
        for result in prepared:
            rows += peer_rows(result)
    return Outcome(rows, notes)
