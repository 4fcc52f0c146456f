"""Steady-state poll: `monitor poll` over 200 and 1,000 unchanged feeds, start-up included.

The site is monitor.sitegen.generate_site (seeded, 50 ms of latency per request; 20 articles
a feed, one at 1,000 feeds: see SINGLE_ITEM_ABOVE) served by a LoopbackSite in its own
process. A first poll stores every article; the timed polls that follow find every feed
unchanged (each answer a 304), which is what the daemon does almost all day. Each figure is
the wall time of a whole `monitor poll` process, Python start-up and imports included, median
of three. The whole site is one host, so the bench config raises [fetch] per_host to [fetch]
concurrency (real feeds sit on many hosts); the 1,000-feed poll is also timed at a higher
concurrency, and profiled.

This module also holds what the other whole-process benchmarks share (bench_ingest,
bench_peers, bench_memory): the site server, the bench config, and running a command while
sampling the CPU time and memory of its whole process tree.

Run: .venv/bin/python -m bench --only poll
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import Row, spread
from bench.report import Outcome

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261102
ARTICLES = 20
LATENCY = 0.05
RUNS = 3
SAMPLE_EVERY = 0.1  # seconds between samples of a process tree's CPU and memory
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1_000_000


# -- the site ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteInfo:
    """What a running benchmark site serves: its feeds (name, URL) and its healthy pages."""

    feeds: tuple[tuple[str, str], ...]
    page_urls: tuple[str, ...]


class SiteServer:
    """generate_site in a child process, so serving costs this process no CPU.

    Every page is rendered once before the site starts (generating one on request costs
    about 1 ms), so a request costs the server only HTTP, as a static news site would. Use
    as a context manager.
    """

    def __init__(
        self,
        feeds: int,
        articles: int = ARTICLES,
        *,
        latency: float = LATENCY,
        seed: int = SEED,
    ) -> None:
        self.args = (feeds, articles, latency, seed)
        self.info = SiteInfo((), ())
        self._conn: Connection | None = None
        self._process: Any = None

    def __enter__(self) -> SiteServer:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=serve_site, args=(child, *self.args), daemon=True, name="bench-site"
        )
        self._process.start()
        child.close()
        self._conn = parent
        feeds, pages = parent.recv()
        self.info = SiteInfo(tuple(map(tuple, feeds)), tuple(pages))
        return self

    def cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        return float(self._ask("cpu"))

    def requests(self) -> tuple[int, int, int]:
        """Requests since the last call: (all, to feeds, to feeds with validators)."""
        total, feeds, conditional = self._ask("requests")
        return int(total), int(feeds), int(conditional)

    def _ask(self, question: str) -> Any:
        assert self._conn is not None
        self._conn.send(question)
        return self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.send("stop")
            self._conn.close()
        self._process.join(10)
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join()


def serve_site(
    conn: Connection,
    feeds: int,
    articles: int,
    latency: float,
    seed: int,
) -> None:
    """Child process: serve a generated site until told to stop."""
    from monitor.loopback import Request
    from monitor.sitegen import generate_site

    generated = generate_site(feeds, articles, seed=seed, latency=latency)
    site = generated.site
    feed_paths = {urlsplit(f.url).path for f in generated.feeds}
    for path, route in list(site.routes.items()):
        if path not in feed_paths and callable(route):
            site.routes[path] = route(Request("GET", path, {}, "127.0.0.1"))
    # A burst of connections must not overflow the accept queue (SYN retries take 1 s).
    site._server.socket.listen(1024)
    with site:
        conn.send(([(f.name, f.url) for f in generated.feeds], generated.page_urls))
        while True:
            message = conn.recv()
            if message == "stop":
                return
            if message == "cpu":
                conn.send(time.process_time())
            elif message == "requests":
                taken, site.requests = site.requests, []
                feeds = [r for r in taken if r.path in feed_paths]
                validated = sum(
                    1 for r in feeds if {"if-none-match", "if-modified-since"} & set(r.headers)
                )
                conn.send((len(taken), len(feeds), validated))


# -- the bench config --------------------------------------------------------------------------


def write_config(
    folder: Path,
    feeds: Sequence[tuple[str, str]],
    *,
    concurrency: int = 32,
    workers: int = 2,
    database: str = "monitor.db",
) -> Path:
    """A monitor config in folder, with the shipped watchlist; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    watchlists = folder / "watchlists"
    watchlists.mkdir(exist_ok=True)
    shutil.copy(ROOT / "watchlists" / "met-police.toml", watchlists)
    lines = [
        "[monitor]",
        f'database = "{database}"',
        'watchlists = "watchlists"',
        'digests = "digests"',
        "",
        "[fetch]",
        f"concurrency = {concurrency}",
        f"per_host = {concurrency}  # the whole site is one host",
        'allow_addresses = ["127.0.0.1"]',
        "",
        "[extract]",
        f"workers = {workers}",
    ]
    for name, url in feeds:
        lines += ["", "[[feeds]]", f"name = {json.dumps(name)}", f"url = {json.dumps(url)}"]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def monitor_command(config: Path, *args: str) -> list[str]:
    """The installed `monitor` script, as a user runs it."""
    script = Path(sys.executable).with_name("monitor")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]
    return [*head, "--config", str(config), *args]


# -- running a process and measuring its tree --------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One run of a command: wall time, CPU of the process and of its descendants, memory."""

    wall: float
    cpu_main: float  # exact, from wait4
    cpu_children: float  # sampled every SAMPLE_EVERY seconds: a little low
    rss_main: float  # peak resident memory of the process (VmHWM), MB
    rss_tree: float  # largest sum over the tree at one sample, MB
    rss_child: float  # peak of the largest descendant, MB
    returncode: int
    stdout: str
    stderr: str
    descendants: int = 0

    def check(self, what: str) -> Measured:
        """Self, or RuntimeError with the command's own words when it failed."""
        if self.returncode != 0:
            raise RuntimeError(f"{what} exited {self.returncode}: {self.stderr[-2000:]}")
        return self


@dataclass
class _TreeSampler:
    root: int
    cpu: dict[int, float] = field(default_factory=dict)
    peak: dict[int, float] = field(default_factory=dict)
    tree_peak: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        # Popen returns once the child has exec'd, so the first sample sees its own memory
        while True:
            self.sample()
            if self.stop.wait(SAMPLE_EVERY):
                return

    def sample(self) -> None:
        total = 0.0
        for pid in _descendants(self.root):
            stat = _read(f"/proc/{pid}/stat")
            status = dict(line.split(":", 1) for line in _read(f"/proc/{pid}/status").splitlines())
            if not stat or "VmHWM" not in status:
                continue  # gone, or not yet (or no longer) holding memory of its own
            fields = stat.rsplit(")", 1)[1].split()
            self.cpu[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            # VmHWM, not wait4's ru_maxrss: a child started by vfork counts its parent's
            # memory in ru_maxrss until it execs
            peak = int(status["VmHWM"].split()[0]) * 1024 / MB
            self.peak[pid] = max(self.peak.get(pid, 0.0), peak)
            total += int(status["VmRSS"].split()[0]) * 1024 / MB
        self.tree_peak = max(self.tree_peak, total)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _descendants(root: int) -> list[int]:
    """Every process below root (root included), from /proc/PID/task/TID/children."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            todo += [int(c) for c in _read(f"/proc/{pid}/task/{tid}/children").split()]
    return found


def run_measured(
    command: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Run command to its end; its wall time, CPU and memory, and the tree's."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = _TreeSampler(process.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    # communicate() would reap the process; wait4 gives its exact usage, so read by hand
    output: dict[str, str] = {}
    readers = [
        threading.Thread(target=_drain, args=(pipe, name, output), daemon=True)
        for name, pipe in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop.set()
    thread.join()
    for reader in readers:
        reader.join()
    children = {pid: cpu for pid, cpu in sampler.cpu.items() if pid != process.pid}
    child_peaks = [rss for pid, rss in sampler.peak.items() if pid != process.pid]
    return Measured(
        wall=wall,
        cpu_main=usage.ru_utime + usage.ru_stime,
        cpu_children=sum(children.values()),
        rss_main=sampler.peak.get(process.pid, 0.0),
        rss_tree=sampler.tree_peak,
        rss_child=max(child_peaks, default=0.0),
        returncode=process.returncode,
        stdout=output.get("stdout", ""),
        stderr=output.get("stderr", ""),
        descendants=len(children),
    )


def _drain(pipe: Any, name: str, output: dict[str, str]) -> None:
    with pipe:
        output[name] = pipe.read()


# -- sites and steady-state databases shared by the benchmarks of one run ----------------------

# Larger steady-state sites have one item a feed: a steady-state poll reads no feed body and
# no article, so the item count does not change what is timed, while filling the database of
# 1,000 feeds x 20 items took over three minutes (20,000 items stored, 10 ms each).
SINGLE_ITEM_ABOVE = 200
_SITES: dict[tuple[int, int], SiteServer] = {}
_STEADY: dict[int, Steady] = {}


@dataclass
class Steady:
    """A database that has stored every article of a site: its next polls are all 304s."""

    site: SiteServer
    config: Path
    first: Measured | None  # the poll that stored the articles, if it was this one


def shared_site(feeds: int, articles: int = ARTICLES) -> SiteServer:
    """A site of this size, started once per run (close_shared stops it)."""
    key = (feeds, articles)
    if key not in _SITES:
        _SITES[key] = SiteServer(feeds, articles).__enter__()
    return _SITES[key]


def shared_steady(folder: Path, feeds: int, articles: int = ARTICLES) -> Steady:
    """A steady-state database for the shared site of this size, made once per run."""
    if feeds not in _STEADY:
        site = shared_site(feeds, articles)
        config = write_config(folder / f"steady-{feeds}", site.info.feeds)
        first = run_measured(monitor_command(config, "poll")).check("monitor poll (first)")
        _, _, _, failed = poll_summary(first.stdout)
        if failed:
            raise RuntimeError(f"the first poll of {feeds} feeds had {failed} failures")
        _STEADY[feeds] = Steady(site, config, first)
    return _STEADY[feeds]


def register_steady(feeds: int, steady: Steady) -> None:
    """Offer a database that already stored every article of a shared site."""
    _STEADY.setdefault(feeds, steady)


def close_shared() -> None:
    """Stop every shared site."""
    _STEADY.clear()
    while _SITES:
        _SITES.popitem()[1].__exit__()


@contextmanager
def workspace(folder: Path | None, name: str) -> Iterator[Path]:
    """A benchmark's folder: inside the run's folder, kept with the shared sites until the
    run ends; or, run alone, a temporary one that takes the shared sites with it."""
    if folder is not None:
        path = folder / name
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        try:
            yield Path(tmp)
        finally:
            close_shared()


# -- the steady-state poll ---------------------------------------------------------------------

_SUMMARY = re.compile(r"polled (\d+) feeds? in [\d.]+s: (\d+) ok, (\d+) not modified, (\d+) failed")


def poll_summary(stdout: str) -> tuple[int, int, int, int]:
    """(polled, ok, not modified, failed) from `monitor poll`'s summary line."""
    found = _SUMMARY.search(stdout)
    if found is None:
        raise RuntimeError(f"no summary in monitor poll's output: {stdout[-500:]!r}")
    polled, ok, unchanged, failed = (int(g) for g in found.groups())
    return polled, ok, unchanged, failed


def time_steady(config: Path, feeds: int, runs: int = RUNS) -> list[Measured]:
    """`runs` timed polls in which every feed must answer 304."""
    measured = []
    for _ in range(runs):
        m = run_measured(monitor_command(config, "poll")).check("monitor poll")
        polled, _, unchanged, _ = poll_summary(m.stdout)
        if polled != feeds or unchanged != feeds:
            raise RuntimeError(f"not a steady state: {polled} polled, {unchanged} unchanged")
        measured.append(m)
    return measured


def steady_rows(label: str, runs: list[Measured], note: str, target: float | None) -> list[Row]:
    """Wall time, CPU and peak memory of timed steady-state polls."""
    wall = spread([m.wall for m in runs])
    cpu = spread([m.cpu_main + m.cpu_children for m in runs])
    rss = spread([m.rss_main for m in runs])
    if target is not None:
        verdict = "meets" if wall[0] < target else "misses"
        note += f"; {verdict} the target of {target:g} s"
    return [
        Row("poll", f"{label}: wall", *wall, "s", note),
        Row("poll", f"{label}: CPU", *cpu, "s", "process tree, start-up included"),
        Row("poll", f"{label}: peak memory", *rss, "MB", "resident, the monitor process"),
    ]


def startup_rows(folder: Path) -> list[Row]:
    """`monitor --help` and `monitor poll` with no feeds: the floor every poll pays."""
    config = write_config(folder / "empty", [])
    run_measured(monitor_command(config, "poll")).check("monitor poll")  # creates the database
    helps = [run_measured(monitor_command(config, "--help")).check("--help") for _ in range(RUNS)]
    empties = [run_measured(monitor_command(config, "poll")).check("poll") for _ in range(RUNS)]
    return [
        Row("poll", "start-up: monitor --help", *spread([m.wall for m in helps]), "s"),
        Row(
            "poll",
            "start-up: monitor poll, no feeds",
            *spread([m.wall for m in empties]),
            "s",
            "imports, config, database, watchlists",
        ),
    ]


def with_concurrency(config: Path, concurrency: int) -> Path:
    """A copy of config (same database) with another [fetch] concurrency and per_host."""
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^concurrency = \d+", f"concurrency = {concurrency}", text)
    text = re.sub(r"(?m)^per_host = \d+", f"per_host = {concurrency}", text)
    path = config.with_name(f"config-{concurrency}.toml")
    path.write_text(text, encoding="utf-8")
    return path


def expect_conditional_feed_requests(site: SiteServer) -> None:
    """The requests since the site last counted must all be conditional requests for feeds:
    a steady-state poll fetches no page and sends every feed's validators."""
    total, to_feeds, validated = site.requests()
    if total != to_feeds or validated != to_feeds:
        raise RuntimeError(f"expected only conditional feed requests, got {total, validated}")


def measure_steady(steady: Steady, feeds: int, concurrency: int) -> list[Row]:
    """Timed steady-state polls of one site at one concurrency (= per_host)."""
    config = steady.config if concurrency == 32 else with_concurrency(steady.config, concurrency)
    site = steady.site
    site.requests()
    cpu_before = site.cpu()
    runs = time_steady(config, feeds)
    server = (site.cpu() - cpu_before) / len(runs)
    expect_conditional_feed_requests(site)
    note = (
        f"every answer 304; concurrency = per_host = {concurrency}"
        f"; server used {server:.2f} s CPU a poll"
    )
    label = f"{feeds:,} unchanged feeds"
    if concurrency != 32:
        label += f", concurrency {concurrency}"
    return steady_rows(label, runs, note, 2.0 if feeds >= 1_000 else None)


def sizes(quick: bool) -> tuple[int, int]:
    """The two site sizes: 200 and 1,000 feeds, or 10 and 50 for a smoke run."""
    return (10, 50) if quick else (200, 1_000)


def site_articles(feeds: int, quick: bool) -> int:
    """Articles a feed for a steady-state site of this size (see SINGLE_ITEM_ABOVE)."""
    if quick:
        return 2
    return 1 if feeds > SINGLE_ITEM_ABOVE else ARTICLES


def run(quick: bool = False, folder: Path | None = None) -> Outcome:
    """Every figure of this benchmark."""
    notes = [
        "Steady state: a database that already stored every article, "
        "then whole `monitor poll` processes in which every feed answers 304. The site is one "
        "host, so per_host is raised to concurrency (32, the default, and 64 for the largest "
        "site); real feeds spread over many hosts. The server's CPU is on the same 2 cores.",
        f"Sites of more than {SINGLE_ITEM_ABOVE} feeds have one item a feed (the others 20): "
        "a steady-state poll reads no feed body and no article, so the timed polls do the "
        "same work either way, while filling a database with 1,000 x 20 items took over "
        "three minutes.",
    ]
    with workspace(folder, "poll") as work:
        rows = startup_rows(work)
        for feeds in sizes(quick):
            steady = shared_steady(work, feeds, site_articles(feeds, quick))
            if steady.first is not None:
                notes.append(
                    f"The poll that filled the {feeds:,}-feed database took "
                    f"{steady.first.wall:.1f} s (one run, not a figure)."
                )
            rows += measure_steady(steady, feeds, 32)
            if feeds == sizes(quick)[-1]:
                rows += measure_steady(steady, feeds, 64)
                notes += steady_profile(steady, feeds, work)
    return Outcome(rows, notes)


def steady_profile(steady: Steady, feeds: int, folder: Path) -> list[str]:
    """One more steady-state poll of the site under py-spy, as report notes."""
    from bench.bench_ingest import profile_command, profile_notes

    profile = profile_command(monitor_command(steady.config, "poll"), folder / "profile.txt")
    if profile is None:
        return ["No profile: py-spy could not be installed or could not sample here."]
    return profile_notes(profile, f"one more steady-state poll of {feeds:,} feeds")


if __name__ == "__main__":
    from bench.__main__ import main

    main(["--only", "poll", *sys.argv[1:]])
