"""Daemon memory: resident memory and open files over 100 poll cycles of 1,000 feeds.

The daemon's own code path in a process of its own: monitor.daemon.Daemon, built from a
config file like `monitor run` builds it, its poll job called once per cycle with an injected
clock that moves one poll interval (and a minute) forward after each cycle, so every feed is
due every cycle. The database starts as a copy of one that already stored every article of
the 1,000-feed site (bench_poll makes it), so each cycle is the daemon's usual hour: 1,000
conditional requests, every answer a 304, 1,000 feed rows and poll records written.

After each cycle the process reports its resident memory (VmRSS), its peak (VmHWM), Python's
allocated blocks, its open file descriptors and its threads. Figures: memory at cycles 10 and
100 and the growth between them (target: under 200 MB, flat from 10 to 100), descriptors at
10 and 100, and the time a cycle takes; median of three runs of 100 cycles, run at the same
time to fit the bench in its time. Beside them a fourth daemon, whose database connections
get SQLite's default 2 MB page cache instead of the configured 64 MB, tells how much of any
growth is that cache. [fetch] concurrency and per_host are 64 here (the site is one host).

Run: .venv/bin/python -m bench --only memory
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bench_poll import (
    RUNS,
    shared_steady,
    site_articles,
    sizes,
    workspace,
    write_config,
)
from bench.common import Row, spread
from bench.report import Outcome

CYCLES, QUICK_CYCLES = 100, 12
CHECKPOINT = 10  # the early cycle compared with the last
DIAGNOSTIC_CYCLES = 40  # the daemon with a small SQLite page cache: its growth has stopped by then
SMALL_CACHE_KIB = 2000  # SQLite's own default page cache
CHILD = [sys.executable, "-m", "bench.bench_memory", "--child"]
CONCURRENCY = 64
TARGET_MB = 200.0
MB = 1_000_000


# -- in the daemon's process -------------------------------------------------------------------


def _status(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024 / MB


class CycleLog(logging.Handler):
    """Keeps the fields of the daemon's "cycle done" log events."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.cycles: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "cycle done":
            self.cycles.append(dict(getattr(record, "fields", {})))


def limit_page_cache(kib: int) -> None:
    """Diagnostic: every database connection opened from now on caches at most `kib` KiB."""
    from monitor.store import Store

    open_store = Store.open

    def open_small(path: Path) -> Store:
        store = open_store(path)
        store.conn.execute(f"PRAGMA cache_size = -{kib}")
        return store

    Store.open = open_small  # type: ignore[method-assign]


def os_threads(settle: float = 0.2) -> int:
    """The threads the OS lists for this process. A thread Python has joined may still be
    listed for a moment (the poll's fetch threads all end together), so the count is read
    again until it agrees with Python's, for at most `settle` seconds."""
    deadline = time.monotonic() + settle
    while True:
        listed = len(os.listdir("/proc/self/task"))
        if listed <= threading.active_count() or time.monotonic() >= deadline:
            return listed
        time.sleep(0.005)


def child(config: Path, cycles: int, page_cache_kib: int = 0) -> None:
    """Run the daemon's poll job `cycles` times; print one JSON line per cycle."""
    from monitor.config import load_settings
    from monitor.daemon import Daemon
    from monitor.logs import LOGGER_NAME

    if page_cache_kib:
        limit_page_cache(page_cache_kib)
    settings = load_settings(config)
    step = timedelta(seconds=settings.monitor.poll_interval + 60)
    now = [datetime.now(UTC) + step]  # the database's feeds were all polled just now
    daemon = Daemon(settings, clock=lambda: now[0])
    log = CycleLog()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(log)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        for cycle in range(1, cycles + 1):
            start = time.perf_counter()
            daemon.poll_job()
            seconds = time.perf_counter() - start
            done = log.cycles.pop() if log.cycles else {}
            log.cycles.clear()
            now[0] += step
            report = {
                "cycle": cycle,
                "seconds": seconds,
                "feeds": done.get("feeds", 0),
                "failed": done.get("failed", 0),
                "rss": _status("VmRSS"),
                "blocks": sys.getallocatedblocks(),  # Python's own objects
                "hwm": _status("VmHWM"),
                "fds": len(os.listdir("/proc/self/fd")),
                "threads": os_threads(),
                "python_threads": threading.active_count(),
            }
            print(json.dumps(report), flush=True)
    finally:
        daemon.stop()


# -- in the bench ------------------------------------------------------------------------------


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file (WAL included), with SQLite's backup."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@dataclass(frozen=True)
class Job:
    """One daemon to run: its config, its cycles, and its page cache (0: as configured)."""

    config: Path
    cycles: int
    page_cache_kib: int = 0


def run_daemons(jobs: list[Job], feeds: int) -> list[list[dict[str, Any]]]:
    """Every job in a fresh process, all at once; the per-cycle reports of each."""
    processes = [
        subprocess.Popen(
            [*CHILD, str(job.config), str(job.cycles), str(job.page_cache_kib)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for job in jobs
    ]
    outputs = [process.communicate() for process in processes]
    runs = []
    for job, process, (stdout, stderr) in zip(jobs, processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"daemon run exited {process.returncode}: {stderr[-2000:]}")
        reports = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        bad = [r["cycle"] for r in reports if r["feeds"] != feeds or r["failed"]]
        if len(reports) != job.cycles or bad:
            raise RuntimeError(f"cycles that did not poll all {feeds} feeds cleanly: {bad[:10]}")
        runs.append(reports)
    return runs


def memory_rows(runs: list[list[dict[str, Any]]], feeds: int) -> list[Row]:
    """Memory, descriptors, threads and cycle time, median over the runs."""
    last = len(runs[0])
    early = min(CHECKPOINT, last)

    def at(cycle: int, key: str) -> tuple[float, float, float]:
        return spread([run[cycle - 1][key] for run in runs])

    growth = spread([run[last - 1]["rss"] - run[early - 1]["rss"] for run in runs])
    half = last // 2
    slope = spread(
        [(run[last - 1]["rss"] - run[half - 1]["rss"]) * 1000 / (last - half) for run in runs]
    )
    blocks = spread(
        [run[last - 1]["blocks"] / run[early - 1]["blocks"] * 100 - 100 for run in runs]
    )
    peak = spread([max(r["hwm"] for r in run) for run in runs])
    cycle_time = spread([statistics.median(r["seconds"] for r in run[1:]) for run in runs])
    high = at(last, "rss")[0]
    verdict = "meets" if high < TARGET_MB and growth[0] < 0.05 * high else "misses"
    what = f"{feeds:,} feeds a cycle, every answer 304"
    return [
        Row("memory", f"resident memory after cycle {early}", *at(early, "rss"), "MB", what),
        Row(
            "memory",
            f"resident memory after cycle {last}",
            *at(last, "rss"),
            "MB",
            f"{verdict} the target: under {TARGET_MB:g} MB and flat",
        ),
        Row("memory", f"growth, cycle {early} to {last}", *growth, "MB"),
        Row("memory", f"growth a cycle, cycle {half} to {last}", *slope, "kB", "resident memory"),
        Row(
            "memory",
            f"Python heap growth, cycle {early} to {last}",
            *blocks,
            "%",
            "allocated blocks (sys.getallocatedblocks): Python objects that pile up",
        ),
        Row("memory", "peak resident memory (VmHWM)", *peak, "MB", "the daemon process"),
        Row("memory", f"open file descriptors after cycle {early}", *at(early, "fds"), "fds"),
        Row("memory", f"open file descriptors after cycle {last}", *at(last, "fds"), "fds"),
        Row("memory", f"threads after cycle {last}", *at(last, "threads"), "threads", "OS"),
        Row(
            "memory",
            "poll cycle time, four daemons at once",
            *cycle_time,
            "s",
            f"median of cycles 2 to {last}; not a speed figure (see the steady-state poll)",
        ),
    ]


def diagnostic_note(runs: list[list[dict[str, Any]]], small: list[dict[str, Any]]) -> str:
    """What the small-page-cache daemon says about the others' growth."""
    last, early = len(small), min(CHECKPOINT, len(small))
    theirs = statistics.median(run[last - 1]["rss"] - run[early - 1]["rss"] for run in runs)
    mine = small[last - 1]["rss"] - small[early - 1]["rss"]
    verdict = (
        "so there is too little growth to explain"
        if theirs < 1.0
        else "so the growth is mostly SQLite's page cache filling (each connection is opened with "
        "cache_size = -65536, 64 MiB, and every cycle writes new pages: the feed rows and a row "
        "a feed in the polls table); it stops when the cache is full"
        if mine < 0.25 * theirs
        else "so SQLite's page cache does not explain the growth"
    )
    return (
        f"Diagnostic: a fourth daemon ran beside them for {last} cycles with every database "
        f"connection's page cache limited to {SMALL_CACHE_KIB} KiB (PRAGMA cache_size, set by "
        f"the bench): it grew {mine:.1f} MB from cycle {early} to {last}, the others "
        f"{theirs:.1f} MB (median), {verdict}."
    )


def run(quick: bool = False, folder: Path | None = None) -> Outcome:
    """Every figure of this benchmark."""
    feeds = sizes(quick)[-1]
    cycles = QUICK_CYCLES if quick else CYCLES
    with workspace(folder, "memory") as work:
        steady = shared_steady(work, feeds, site_articles(feeds, quick))
        source = steady.config.parent / "monitor.db"
        jobs = []
        for n in range(RUNS + 1):
            config = write_config(work / f"run{n}", steady.site.info.feeds, concurrency=CONCURRENCY)
            copy_database(source, config.parent / "monitor.db")
            jobs.append(Job(config, cycles))
        small = min(DIAGNOSTIC_CYCLES, cycles)
        jobs[-1] = Job(jobs[-1].config, small, SMALL_CACHE_KIB)
        *runs, diagnostic = run_daemons(jobs, feeds)
    first = spread([run[0]["rss"] for run in runs])
    notes = [
        f"{RUNS} runs of {cycles} cycles, run at the same time (a cycle of 1,000 feeds takes "
        "over a second of CPU, and memory does not depend on speed), each in a fresh process "
        "started from its own copy of a database holding every item of the "
        f"{feeds:,}-feed site; resident memory after the first cycle was {first[0]:.1f} MB "
        "(median). No extraction worker starts in a steady state (nothing new to extract), so "
        "the daemon process is the whole daemon.",
        diagnostic_note(runs, diagnostic),
    ]
    return Outcome(memory_rows(runs, feeds), notes)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        from bench.__main__ import main

        main(["--only", "memory", *sys.argv[1:]])
