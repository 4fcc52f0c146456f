"""Cold ingest: `monitor poll` on a fresh database against trafilatura alone on the same pages.

The site: monitor.sitegen.generate_site, 200 feeds x 20 articles of 600-1,200 words, seeded,
50 ms of latency per request, pages rendered before the site starts (so the server spends its
CPU on HTTP only), served from its own process. The bench config: 2 extraction workers,
[fetch] concurrency 32 (the default) and per_host 32, since the whole site is one host.

Figures, median of three runs:

- the pipeline: a whole `monitor poll` process on a fresh database, start-up included, in
  articles stored per second, with the CPU time of its process tree per article (the monitor
  process, and the extraction workers);
- the ceiling: every page fetched first (not timed), then trafilatura.extract alone (the
  settings monitor.extract uses) over them in a plain multiprocessing pool of the same number
  of processes, started and warmed before the timing;
- the ratio of the two (target: the pipeline at least 85% of the ceiling).

Then one more `monitor poll` under py-spy (installed in bench/.peers), summarised as where the
monitor process's own CPU goes, stage by stage and function by function.

Run: .venv/bin/python -m bench --only ingest
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.bench_poll import (
    RUNS,
    Measured,
    SiteServer,
    Steady,
    monitor_command,
    poll_summary,
    register_steady,
    run_measured,
    shared_site,
    workspace,
    write_config,
)
from bench.common import Row, spread, timed
from bench.report import Outcome

WORKERS = 2
FEEDS, QUICK_FEEDS = 200, 10
QUICK_ARTICLES = 5
TARGET = 0.85
PROFILE_RATE = 200  # py-spy samples per second
_NEW_ARTICLES = re.compile(r"new articles: (\d+)")


# -- the ceiling -------------------------------------------------------------------------------


def trafilatura_only(page: bytes) -> int:
    """trafilatura.extract with the settings monitor.extract uses; the text's length."""
    import trafilatura

    text = trafilatura.extract(
        page.decode("utf-8"), include_comments=False, favor_precision=True, include_tables=True
    )
    return len(text or "")


def fetch_pages(urls: list[str]) -> list[bytes]:
    """Every page, fetched 32 at a time with a plain httpx client."""
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(limits=limits, trust_env=False, timeout=60) as client:

        def get(url: str) -> bytes:
            response = client.get(url)
            response.raise_for_status()
            return response.content

        with ThreadPoolExecutor(32) as pool:
            return list(pool.map(get, urls))


def measure_ceiling(pages: list[bytes], runs: int) -> list[float]:
    """Pages per second of trafilatura alone in WORKERS processes, already started."""
    from bench import bench_ingest as this  # by its package name, so workers can import it

    context = multiprocessing.get_context("forkserver")
    with context.Pool(WORKERS) as pool:
        pool.map(this.trafilatura_only, pages[: WORKERS * 2], chunksize=1)  # start, warm
        return [
            len(pages) / timed(lambda: pool.map(this.trafilatura_only, pages, chunksize=4))
            for _ in range(runs)
        ]


# -- the pipeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestRun:
    """One cold `monitor poll`: what it stored and what it cost."""

    measured: Measured
    articles: int

    @property
    def rate(self) -> float:
        return self.articles / self.measured.wall


def ingest_once(folder: Path, site: SiteServer, expected: int) -> IngestRun:
    """`monitor poll` on a fresh database; every healthy page must be stored."""
    config = write_config(folder, site.info.feeds, concurrency=32, workers=WORKERS)
    measured = run_measured(monitor_command(config, "poll")).check("monitor poll")
    _, _, _, failed = poll_summary(measured.stdout)
    found = _NEW_ARTICLES.search(measured.stdout)
    articles = int(found[1]) if found else 0
    if failed or articles != expected:
        raise RuntimeError(
            f"cold ingest stored {articles} of {expected} articles, {failed} feeds failed"
        )
    return IngestRun(measured, articles)


def ingest_rows(
    runs: list[IngestRun], ceiling: list[float], feeds: int, server_cpu: float
) -> list[Row]:
    """The pipeline's rate and cost, the ceiling, and their ratio."""
    articles = runs[0].articles
    rates = [r.rate for r in runs]
    walls = spread([r.measured.wall for r in runs])
    main_ms = [r.measured.cpu_main / articles * 1000 for r in runs]
    worker_ms = [r.measured.cpu_children / articles * 1000 for r in runs]
    memory = [r.measured.rss_main for r in runs]
    worker_memory = [r.measured.rss_child for r in runs]
    low, high = min(rates) / max(ceiling), max(rates) / min(ceiling)
    ratio = spread(rates)[0] / spread(ceiling)[0]
    # the most this much CPU per article allows, every core busy with the pipeline alone
    cores = len(os.sched_getaffinity(0))
    bounds = [cores * 1000 / (m + w) for m, w in zip(main_ms, worker_ms, strict=True)]
    bound = spread(bounds)
    verdict = "meets" if ratio >= TARGET else "misses"
    size = f"{feeds} feeds, {articles:,} articles"
    return [
        Row(
            "ingest",
            "monitor poll, cold: throughput",
            *spread(rates),
            "articles/s",
            f"{size}; wall {walls[0]:.1f} s [{walls[1]:.1f} .. {walls[2]:.1f}], start-up included",
        ),
        Row(
            "ingest",
            "trafilatura alone, 2 processes (ceiling)",
            *spread(ceiling),
            "pages/s",
            "pages fetched first; pool started first",
        ),
        Row(
            "ingest",
            "pipeline / ceiling",
            ratio,
            low,
            high,
            "ratio",
            f"{verdict} the target of {TARGET:.0%}; min and max pair the extreme runs",
        ),
        Row(
            "ingest",
            "CPU per article: monitor process",
            *spread(main_ms),
            "ms",
            "fetch, parse, match, stories, SQLite, pool I/O, start-up",
        ),
        Row(
            "ingest",
            "CPU per article: extraction workers",
            *spread(worker_ms),
            "ms",
            f"sampled at 10 Hz; site server used {server_cpu * 1000 / articles:.2f} ms/article",
        ),
        Row(
            "ingest",
            f"most the CPU per article allows on {cores} cores",
            *bound,
            "articles/s",
            f"{bound[0] / spread(ceiling)[0]:.2f} of the ceiling: {cores} cores over the CPU per "
            "article of the monitor process and the workers, each run's own",
        ),
        Row("ingest", "peak memory: monitor process", *spread(memory), "MB", "resident"),
        Row("ingest", "peak memory: largest worker", *spread(worker_memory), "MB", "resident"),
    ]


# -- the profile -------------------------------------------------------------------------------

# Which stage a sample belongs to: its innermost frame in one of these monitor modules.
STAGES = {
    "fetch": "HTTP requests (fetch, guard, decode, httpx)",
    "guard": "HTTP requests (fetch, guard, decode, httpx)",
    "decode": "HTTP requests (fetch, guard, decode, httpx)",
    "urls": "URL checks and canonical URLs",
    "parse": "feed parsing (feedparser)",
    "match": "matching",
    "textindex": "matching",
    "evaluate": "matching",
    "snippet": "matching",
    "querytree": "matching",
    "stories": "story assignment",
    "storyindex": "story assignment",
    "store": "database (store, feedstore, SQLite)",
    "feedstore": "database (store, feedstore, SQLite)",
    "schema": "database (store, feedstore, SQLite)",
    "workers": "extraction pool (pipes, JSON, threads)",
    "pipeline": "event loop and dispatch",
}
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*):\d+\)$")
_LINE = re.compile(r'^(?P<procs>(?:process \d+:"[^"]*";?)*)(?P<stack>.*) (?P<count>\d+)$')


@dataclass(frozen=True)
class Profile:
    """py-spy samples of one run, by process kind, by stage, and by monitor function."""

    rate: int
    processes: Counter[str]
    stages: Counter[str]
    functions: Counter[str]
    leaves: Counter[str]


def read_profile(raw: str, rate: int) -> Profile:
    """Summarise py-spy's raw (collapsed-stack) output of a `monitor poll` run."""
    processes: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.splitlines():
        found = _LINE.match(line)
        if found is None:
            continue
        count = int(found["count"])
        depth = found["procs"].count("process ")
        frames = [f for f in found["stack"].split(";") if f and not f.startswith("thread ")]
        if depth > 1:
            processes["extraction workers and fork server"] += count
            continue
        processes["monitor process"] += count
        stage, function = _classify(frames)
        stages[stage] += count
        if function:
            functions[function] += count
        if frames:
            leaves[_short(frames[-1])] += count
    return Profile(rate, processes, stages, functions, leaves)


def _monitor_function(frame: str) -> str | None:
    """`module.function` when the frame is in a monitor module, else None."""
    found = _FRAME.match(frame)
    module = re.search(r"monitor/(\w+)\.py$", found["file"]) if found else None
    return f"{module[1]}.{found['func']}" if found and module else None


def _classify(frames: list[str]) -> tuple[str, str | None]:
    """The stage of one stack (innermost monitor frame first) and that monitor function."""
    if any(f.startswith("_find_and_load ") for f in frames):
        return "imports and start-up", None
    for frame in reversed(frames):
        function = _monitor_function(frame)
        if function:
            module = function.split(".", 1)[0]
            return STAGES.get(module, "other monitor code (cli, config, runtime, ...)"), function
    return "outside monitor code (threads, interpreter)", None


def _short(frame: str) -> str:
    found = _FRAME.match(frame)
    if found is None:
        return frame
    return f"{found['func']} ({Path(found['file']).name})"


def profile_notes(profile: Profile, what: str) -> list[str]:
    """The profile of `what` as report notes: seconds and share of the monitor process's."""
    rate, own = profile.rate, profile.processes["monitor process"] or 1

    def share(label: str, samples: int) -> str:
        return f"| {label} | {samples / rate:.2f} s | {samples / own:.0%} |"

    lines = [
        f"Where the time goes in {what}, under py-spy "
        f"({rate} Hz, --gil: the thread holding the GIL, which is the process's Python CPU "
        "time, plus time preempted while holding it on a busy machine): "
        + ", ".join(f"{k} {v / rate:.1f} s" for k, v in profile.processes.most_common())
        + ". Each sample goes to the innermost frame in a monitor module, so library time "
        "counts for the monitor function that called the library.",
        "",
        "| monitor process, by stage | GIL time | share |",
        "| --- | ---: | ---: |",
        *(share(k, v) for k, v in profile.stages.most_common()),
        "",
        "| monitor process, innermost monitor function (self and library calls) | GIL time "
        "| share |",
        "| --- | ---: | ---: |",
        *(share(k, v) for k, v in profile.functions.most_common(12)),
        "",
        "| monitor process, innermost frame (any code) | GIL time | share |",
        "| --- | ---: | ---: |",
        *(share(k, v) for k, v in profile.leaves.most_common(10)),
    ]
    return lines


def profile_command(command: list[str], out: Path) -> Profile | None:
    """Run command under py-spy (installed in bench/.peers if missing), with its
    subprocesses; None if py-spy cannot be had or cannot sample here."""
    from bench.bench_peers import ensure_tool

    py_spy = ensure_tool("py-spy")
    if py_spy is None:
        return None
    command = [
        str(py_spy),
        "record",
        "--subprocesses",
        "--gil",
        "--nonblocking",
        "--rate",
        str(PROFILE_RATE),
        "--format",
        "raw",
        "--output",
        str(out),
        "--",
        *command,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        return None
    return read_profile(out.read_text(encoding="utf-8", errors="replace"), PROFILE_RATE)


# -- the benchmark -----------------------------------------------------------------------------


def run(quick: bool = False, folder: Path | None = None) -> Outcome:
    """Every figure of this benchmark, and the profile as notes."""
    feeds, articles = (QUICK_FEEDS, QUICK_ARTICLES) if quick else (FEEDS, 20)
    notes = [
        f"Cold ingest: {feeds} feeds x {articles} articles, 50 ms latency, pages rendered "
        "before the site starts; config: 2 extraction workers, [fetch] concurrency 32 and "
        "per_host 32 (one host). Throughput counts whole processes, start-up included.",
    ]
    with workspace(folder, "ingest") as work:
        site = shared_site(feeds, articles)
        expected = len(site.info.page_urls)
        before = site.cpu()
        runs = [ingest_once(work / f"run{n}", site, expected) for n in range(RUNS)]
        server_cpu = (site.cpu() - before) / RUNS
        # the last run's database has stored everything: bench_poll and bench_peers reuse it
        register_steady(feeds, Steady(site, work / f"run{RUNS - 1}" / "config.toml", None))
        pages = fetch_pages(list(site.info.page_urls))
        ceiling = measure_ceiling(pages, RUNS)
        rows = ingest_rows(runs, ceiling, feeds, server_cpu)
        config = write_config(work / "profile", site.info.feeds, workers=WORKERS)
        profile = profile_command(monitor_command(config, "poll"), work / "profile.txt")
    if profile is None:
        notes.append("No profile: py-spy could not be installed or could not sample here.")
    else:
        notes += profile_notes(profile, f"one more cold ingest of {expected:,} articles")
    return Outcome(rows, notes)
