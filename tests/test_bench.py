"""The benchmark harness keeps working: a smoke run of `python -m bench`, and its pure parts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import parse_args
from bench.bench_ingest import read_profile
from bench.common import Row
from bench.report import Outcome, Section, render_markdown, render_text

ROOT = Path(__file__).resolve().parent.parent


def figures(report: str, label: str) -> tuple[float, float, float]:
    """(median, min, max) of the report's row with this label."""
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == label:
            median, low, high = (float(c.replace(",", "")) for c in cells[1:4])
            return median, low, high
    raise AssertionError(f"no row {label!r} in the report:\n{report}")


def test_quick_poll_run_measures_whole_monitor_processes(tmp_path: Path) -> None:
    report = tmp_path / "REPORT.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "poll", "--report", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    assert re.search(r"^- CPU: \S", text, re.M) and re.search(r"^- cores: \d+$", text, re.M)
    assert re.search(r"^- Python: CPython 3\.\d+", text, re.M)
    for label in ("10 unchanged feeds: wall", "50 unchanged feeds, concurrency 64: wall"):
        median, low, high = figures(text, label)
        assert 0 < low <= median <= high < 60
    startup = figures(text, "start-up: monitor poll, no feeds")[0]
    assert figures(text, "50 unchanged feeds: wall")[0] > startup / 2
    assert 20 < figures(text, "50 unchanged feeds: peak memory")[0] < 500
    assert "50 unchanged feeds: wall" in done.stdout  # the table is printed too
    assert not (ROOT / "bench" / "REPORT.md.partial").exists()


def test_only_takes_known_names_and_partial_runs_leave_the_report_alone() -> None:
    args = parse_args(["--only", "poll,match", "--only", "peers"])
    assert args.names == ["poll", "peers", "match"]  # in the order they run
    assert args.report is None
    assert parse_args([]).report == ROOT / "bench" / "REPORT.md"
    with pytest.raises(SystemExit):
        parse_args(["--only", "nonsense"])


RAW = """\
process 10:"monitor poll";thread (0x1): MainThread;main (monitor/cli.py:130);run (monitor/pipeline.py:220);_commit (monitor/pipeline.py:380);record_items (monitor/feedstore.py:140);assign (monitor/storyindex.py:90);count_terms (monitor/stories.py:50) 30
process 10:"monitor poll";thread (0x1): MainThread;main (monitor/cli.py:130);run (monitor/pipeline.py:220);_commit (monitor/pipeline.py:380);match (monitor/match.py:60);_scan (re/__init__.py:10) 10
process 10:"monitor poll";thread (0x2): fetch_0;_worker (concurrent/futures/thread.py:83);fetch (monitor/fetch.py:80);read (httpcore/_sync/http11.py:200) 5
process 10:"monitor poll";_find_and_load (<frozen importlib._bootstrap>:1176);<module> (httpx/__init__.py:2) 4
process 10:"monitor poll";process 12:"python -c from multiprocessing.forkserver import main; main(1)";_serve (monitor/workers.py:380);extract (trafilatura/core.py:300) 50
"""  # noqa: E501


def test_profile_puts_each_sample_in_the_stage_of_its_innermost_monitor_frame() -> None:
    profile = read_profile(RAW, rate=100)
    assert profile.processes == {"monitor process": 49, "extraction workers and fork server": 50}
    assert profile.stages["story assignment"] == 30
    assert profile.stages["matching"] == 10  # the regex library call counts for match.py
    assert profile.stages["HTTP requests (fetch, guard, decode, httpx)"] == 5
    assert profile.stages["imports and start-up"] == 4
    assert profile.functions.most_common(1) == [("stories.count_terms", 30)]
    assert profile.leaves["_scan (__init__.py)"] == 10


def test_report_shows_every_figure_with_its_spread_and_failures() -> None:
    rows = [Row("poll", "1,000 unchanged feeds: wall", 1.234, 1.1, 1.5, "s", "all 304")]
    sections = [
        Section("poll", "2. Steady-state poll", Outcome(rows, ["a note"]), 12.0),
        Section("peers", "3. Peers", Outcome([]), 1.0, error="RuntimeError: no pip"),
    ]
    text = render_markdown(sections, {"CPU": "Test CPU", "cores": "2"}, "python -m bench", "Intro")
    assert "| 1,000 unchanged feeds: wall | 1.23 | 1.10 | 1.50 | s | all 304 |" in text
    assert "- CPU: Test CPU" in text and "a note" in text
    assert "Not measured: RuntimeError: no pip" in text
    terminal = render_text(sections)
    assert "1,000 unchanged feeds: wall" in terminal and "FAILED: RuntimeError: no pip" in terminal


def test_a_child_is_measured_alone_however_large_its_parent() -> None:
    from bench.bench_poll import run_measured

    ballast = bytearray(300_000_000)  # touched: the parent's resident memory grows by 300 MB
    measured = run_measured([sys.executable, "-c", "import time; time.sleep(0.3)"])
    assert len(ballast) and measured.returncode == 0
    assert 0 < measured.rss_main < 100
    assert 0.3 <= measured.wall < 30 and measured.cpu_main < 5
