"""`make bench`: every benchmark in one run, side by side, and bench/REPORT.md.

    python -m bench                      everything, then bench/REPORT.md
    python -m bench --only poll,peers    some of them (repeat --only or separate by commas)
    python -m bench --quick              small sizes: a smoke run that checks the harness
    python -m bench --report PATH        write the report there

A full run writes bench/REPORT.md; a run with --only or --quick writes a report only when
given --report, so a partial run never replaces the full one. The whole-process benchmarks
(ingest, poll, peers, memory) share their loopback sites and steady-state databases within a
run, and run first, while nothing else does; the CPU-only ones follow. Exit status 1 when any
benchmark failed (its error is in the table and the report).
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import inspect
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.report import (
    Outcome,
    Section,
    command_line,
    load_average,
    machine,
    render_markdown,
    render_text,
    write_report,
)

HERE = Path(__file__).resolve().parent

# name: (module, title, in a full run); in the order they run
BENCHMARKS: dict[str, tuple[str, str, bool]] = {
    "ingest": ("bench.bench_ingest", "1. Cold ingest against trafilatura alone", True),
    "poll": ("bench.bench_poll", "2. Steady-state poll", True),
    "peers": ("bench.bench_peers", "3. Steady-state poll side by side with peers", True),
    "memory": ("bench.bench_memory", "5. Daemon memory over 100 poll cycles", True),
    "match": ("bench.bench_match", "4a. Matching", True),
    "stories": ("bench.bench_stories", "4b. Story assignment", True),
    "extract": ("bench.bench_extract", "4c. Extraction pool overhead", True),
    "fetch_model": ("bench.bench_fetch_model", "4d. Fetch model", False),
}

INTRO = (
    "Written by `make bench` (`.venv/bin/python -m bench`). Every figure is the median of at "
    "least three runs with their min and max; ratios compare figures of the same run. "
    "Everything runs on this machine: sites are served on 127.0.0.1 from a separate process "
    "that shares the same cores."
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)}); repeat or separate by commas",
    )
    parser.add_argument("--report", type=Path, help="where to write the report")
    args = parser.parse_args(argv)
    names = [n.strip() for value in args.only for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.names = [n for n in BENCHMARKS if n in names] or [
        n for n, (_, _, full) in BENCHMARKS.items() if full
    ]
    if args.report is None and not (names or args.quick):
        args.report = HERE / "REPORT.md"
    return args


def run_one(name: str, quick: bool, folder: Path) -> Section:
    """Import and run one benchmark; its failure is its section's error, not the run's end."""
    module_name, title, _ = BENCHMARKS[name]
    start = time.perf_counter()
    print(f"-- {name}: {title}", file=sys.stderr, flush=True)
    try:
        module = importlib.import_module(module_name)
        accepts = inspect.signature(module.run).parameters
        kwargs = {k: v for k, v in (("quick", quick), ("folder", folder)) if k in accepts}
        result = module.run(**kwargs)
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
        return Section(name, title, Outcome([]), time.perf_counter() - start, error)
    outcome = result if isinstance(result, Outcome) else Outcome(list(result))
    return Section(name, title, outcome, time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from bench.bench_poll import close_shared

    # the timed commands start as an installed program does, from compiled bytecode (a
    # PYTHONDONTWRITEBYTECODE environment would otherwise recompile monitor at every start)
    compileall.compile_dir(HERE.parent / "monitor", quiet=1)

    about = machine()
    sections = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        try:
            for name in args.names:
                if name in ("match", "stories", "extract", "fetch_model"):
                    close_shared()  # no idle site servers beside the CPU-only benchmarks
                sections.append(run_one(name, args.quick, Path(tmp)))
                print(render_text(sections[-1:]), flush=True)
        finally:
            close_shared()
    about["load average at the end (1, 5, 15 min)"] = load_average()
    if args.report is not None:
        command = command_line()
        write_report(args.report, render_markdown(sections, about, command, INTRO))
        print(f"report: {args.report}")
    if any(s.error for s in sections):
        sys.exit(1)


if __name__ == "__main__":
    main()
