"""Daemon memory: resident memory and open files over 100 poll cycles of 1,000 feeds.

The daemon's own code path in a process of its own: monitor.daemon.Daemon, built from a
config file like `monitor run` builds it, its poll job called once per cycle with an injected
clock that moves one poll interval (and a minute) forward after each cycle, so every feed is
due every cycle. The database starts as a copy of one that already stored every article of
the 1,000-feed site (bench_poll makes it), so each cycle is the daemon's usual hour: 1,000
conditional requests, every answer a 304, 1,000 feed rows and poll records written.

After each cycle the process reports its resident memory (VmRSS), its peak (VmHWM), its open
file descriptors and its threads. Figures: memory at cycles 10 and 100 and the growth between
them (target: under 200 MB, flat from 10 to 100), descriptors at 10 and 100, and the time a
cycle takes; median of three runs of 100 cycles, run at the same time to fit the bench in its
time. [fetch] concurrency and per_host are 64 here (the site is one host).

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bench_poll import (
    RUNS,
    shared_steady,
    site_articles,
    sizes,
    spread,
    workspace,
    write_config,
)
from bench.common import Row
from bench.report import Outcome

CYCLES, QUICK_CYCLES = 100, 12
CHECKPOINT = 10  # the early cycle compared with the last
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


def child(config: Path, cycles: int) -> None:
    """Run the daemon's poll job `cycles` times; print one JSON line per cycle."""
    from monitor.config import load_settings
    from monitor.daemon import Daemon
    from monitor.logs import LOGGER_NAME

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
                "hwm": _status("VmHWM"),
                "fds": len(os.listdir("/proc/self/fd")),
                "threads": len(os.listdir("/proc/self/task")),
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


def run_daemons(configs: list[Path], cycles: int, feeds: int) -> list[list[dict[str, Any]]]:
    """One run of `cycles` cycles per config, each in a fresh process, all at once; the
    per-cycle reports of each."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.bench_memory", "--child", str(config), str(cycles)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for config in configs
    ]
    outputs = [process.communicate() for process in processes]
    runs = []
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"daemon run exited {process.returncode}: {stderr[-2000:]}")
        reports = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        bad = [r["cycle"] for r in reports if r["feeds"] != feeds or r["failed"]]
        if len(reports) != cycles or bad:
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
        Row("memory", "peak resident memory (VmHWM)", *peak, "MB", "the daemon process"),
        Row("memory", f"open file descriptors after cycle {early}", *at(early, "fds"), "fds"),
        Row("memory", f"open file descriptors after cycle {last}", *at(last, "fds"), "fds"),
        Row("memory", f"threads after cycle {last}", *at(last, "threads"), "threads", "OS"),
        Row(
            "memory",
            "poll cycle time, three daemons at once",
            *cycle_time,
            "s",
            f"median of cycles 2 to {last}; not a speed figure (see the steady-state poll)",
        ),
    ]


def run(quick: bool = False, folder: Path | None = None) -> Outcome:
    """Every figure of this benchmark."""
    feeds = sizes(quick)[-1]
    cycles = QUICK_CYCLES if quick else CYCLES
    with workspace(folder, "memory") as work:
        steady = shared_steady(work, feeds, site_articles(feeds, quick))
        source = steady.config.parent / "monitor.db"
        configs = []
        for n in range(RUNS):
            config = write_config(work / f"run{n}", steady.site.info.feeds, concurrency=CONCURRENCY)
            copy_database(source, config.parent / "monitor.db")
            configs.append(config)
        runs = run_daemons(configs, cycles, feeds)
    first = spread([run[0]["rss"] for run in runs])
    notes = [
        f"{RUNS} runs of {cycles} cycles, run at the same time (a cycle of 1,000 feeds takes "
        "over a second of CPU, and memory does not depend on speed), each in a fresh process "
        "started from its own copy of a database holding every item of the "
        f"{feeds:,}-feed site; resident memory after the first cycle was {first[0]:.1f} MB "
        "(median). No extraction worker starts in a steady state (nothing new to extract), so "
        "the daemon process is the whole daemon.",
    ]
    return Outcome(memory_rows(runs, feeds), notes)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        from bench.__main__ import main

        main(["--only", "memory", *sys.argv[1:]])
