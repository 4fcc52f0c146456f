"""ExtractorPool: extraction in worker processes that are killed and replaced on overrun."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import types
from concurrent.futures import Future, wait
from pathlib import Path

import pytest

from monitor.errors import ExtractError
from monitor.models import Extracted
from monitor.workers import ExtractorPool, Target, WorkerBug
from tests import workerfuncs

PAGES = Path(__file__).parent / "data" / "pages"
HTML = {"content-type": "text/html; charset=utf-8"}
MEMORY = 400_000_000  # per worker in these tests: far above what extraction needs


def test_extracts_pages_through_the_pool() -> None:
    names = ["broadsheet-iopc", "local-vinten", "wordpress-casey"]
    with ExtractorPool(workers=2, timeout=60, max_memory=MEMORY) as pool:
        futures = {
            name: pool.submit(
                f"https://news.example/{name}", (PAGES / f"{name}.html").read_bytes(), HTML
            )
            for name in names
        }
        results = {name: future.result() for name, future in futures.items()}
    for name, result in results.items():
        golden = (PAGES / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        assert result.title == golden[0]
        assert result.text.splitlines() == golden[1:]


def test_story_features_of_the_text_cross_from_the_worker() -> None:
    from monitor.extract import extract_with_features
    from monitor.stories import text_features

    page = (PAGES / "broadsheet-iopc.html").read_bytes()
    with ExtractorPool(1, 60, MEMORY, extract_with_features) as pool:
        result = pool.submit("https://news.example/a", page, HTML).result()
    assert result.story is not None and result.story.shingles > 50
    assert result.story == text_features(result.text)


def test_pool_reports_extract_errors_of_the_target() -> None:
    page = (PAGES / "no-article-404.html").read_bytes()
    pool = ExtractorPool(workers=1, timeout=60, max_memory=MEMORY)
    with pool, pytest.raises(ExtractError, match="no article text"):
        pool.submit("https://news.example/missing", page, HTML).result()


def test_importing_the_pool_does_not_import_trafilatura() -> None:
    code = (
        "import sys, monitor.workers\n"
        "assert 'trafilatura' not in sys.modules, 'imported at import time'\n"
        "from tests import workerfuncs\n"
        "with monitor.workers.ExtractorPool(1, 60, 0, workerfuncs.echo) as pool:\n"
        "    assert pool.submit('u', b'text', {}).result().text == 'text'\n"
        "assert 'trafilatura' not in sys.modules, 'imported by running the pool'\n"
        "print('clean')\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"


def test_workers_start_on_first_submit_and_results_cross_intact() -> None:
    pool = ExtractorPool(
        workers=2, timeout=30, max_memory=MEMORY, target=workerfuncs.report_transport
    )
    assert pool._threads == []  # nothing runs before there is work
    content = bytes(range(256)) * 40_000  # 10 MB, every byte value
    headers = {"content-type": "text/html", "x-note": "ünïcode"}
    with pool:
        result = pool.submit("https://news.example/a", content, headers).result()
        assert len(pool._threads) == 2
    assert result == Extracted(
        "https://news.example/a", f"{len(content)} {sorted(headers.items())}"
    )


def test_submit_is_thread_safe_and_uses_every_worker() -> None:
    futures: list[Future[Extracted]] = []
    lock = threading.Lock()
    with ExtractorPool(
        workers=2, timeout=30, max_memory=MEMORY, target=workerfuncs.report_pid
    ) as pool:

        def submit_many(start: int) -> None:
            for n in range(start, start + 25):
                future = pool.submit(f"https://news.example/{n}", b"", {})
                with lock:
                    futures.append(future)

        threads = [threading.Thread(target=submit_many, args=(k * 25,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results = [future.result() for future in futures]
    assert sorted(r.title for r in results) == sorted(
        f"https://news.example/{n}" for n in range(100)
    )
    assert len({r.text for r in results}) == 2  # both workers took tasks


def test_hanging_task_is_killed_at_the_timeout_and_the_pool_goes_on() -> None:
    with ExtractorPool(
        workers=1, timeout=1.5, max_memory=MEMORY, target=workerfuncs.by_command
    ) as pool:
        before = pool.submit("https://news.example/echo", b"first", {}).result()
        hung = pool.submit("https://news.example/hang", b"", {})
        after = pool.submit("https://news.example/echo", b"second", {})
        with pytest.raises(ExtractError, match=r"took longer than 1\.5s"):
            hung.result()
        assert after.result().text == "second"
        assert before.text == "first"


def test_time_limit_counts_from_when_a_task_starts_not_when_it_was_queued() -> None:
    with ExtractorPool(
        workers=1, timeout=2, max_memory=MEMORY, target=workerfuncs.work_then_echo
    ) as pool:
        futures = [pool.submit(f"https://news.example/{n}", b"1.2", {}) for n in range(3)]
        assert [f.result().text for f in futures] == ["1.2"] * 3  # 3.6 s in all, 1.2 s each


def test_big_pages_queued_behind_a_hanging_one_neither_block_nor_fail() -> None:
    big = b"x" * 5_000_000  # larger than the pipe's buffer
    with ExtractorPool(
        workers=1, timeout=1.5, max_memory=MEMORY, target=workerfuncs.by_command
    ) as pool:
        hung = pool.submit("https://news.example/hang", b"", {})
        pages = [pool.submit(f"https://news.example/{n}/size", big, {}) for n in range(3)]
        with pytest.raises(ExtractError, match="took longer"):
            hung.result()
        assert [f.result().text for f in pages] == [f"{len(big)} []"] * 3


def test_busy_loop_is_killed_at_the_timeout() -> None:
    pool = ExtractorPool(workers=1, timeout=1, max_memory=MEMORY, target=workerfuncs.spin)
    with pool, pytest.raises(ExtractError, match="took longer than 1s"):
        pool.submit("https://news.example/spin", b"", {}).result()


@pytest.mark.parametrize("target", [workerfuncs.allocate_at_once, workerfuncs.allocate_gradually])
def test_task_past_the_memory_limit_fails_and_the_pool_goes_on(target: Target) -> None:
    limit = 300_000_000
    with ExtractorPool(workers=1, timeout=60, max_memory=limit, target=target) as pool:
        too_big = pool.submit("https://news.example/big", str(limit).encode(), {})
        small = pool.submit("https://news.example/small", str(limit // 10).encode(), {})
        with pytest.raises(ExtractError, match="out of memory"):
            too_big.result()
        assert int(small.result().text) > 0


@pytest.mark.parametrize(
    ("command", "cause"),
    [("exit", "exited with status 3"), ("segfault", r"crashed \(SIGSEGV\)")],
)
def test_dead_worker_fails_its_task_and_is_replaced(command: str, cause: str) -> None:
    with ExtractorPool(
        workers=1, timeout=30, max_memory=MEMORY, target=workerfuncs.by_command
    ) as pool:
        died = pool.submit(f"https://news.example/{command}", b"", {})
        after = pool.submit("https://news.example/echo", b"still serving", {})
        with pytest.raises(ExtractError, match=cause):
            died.result()
        assert after.result().text == "still serving"


def test_worker_that_cannot_start_fails_its_tasks_and_the_pool_keeps_trying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A module only this process has: workers cannot import the target, so they die at start.
    module = types.ModuleType("parent_only_targets")
    echo = types.FunctionType(workerfuncs.echo.__code__, {}, "echo")
    echo.__module__, echo.__qualname__ = "parent_only_targets", "echo"
    module.echo = echo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "parent_only_targets", module)
    with ExtractorPool(workers=1, timeout=30, max_memory=MEMORY, target=echo) as pool:
        futures = [pool.submit(f"https://news.example/{n}", b"", {}) for n in range(2)]
        for future in futures:
            with pytest.raises(ExtractError, match="exited with status 1"):
                future.result()


def test_target_workers_cannot_import_is_refused_at_once() -> None:
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        ExtractorPool(1, 30, MEMORY, lambda url, content, headers: workerfuncs.echo(url, b"", {}))


def test_killed_worker_is_reported_as_killed() -> None:
    with (
        ExtractorPool(
            workers=1, timeout=30, max_memory=MEMORY, target=workerfuncs.kill_self
        ) as pool,
        pytest.raises(ExtractError, match="SIGKILL"),
    ):
        pool.submit("https://news.example/k", b"", {}).result()


def test_bug_in_the_target_propagates_with_the_worker_traceback() -> None:
    with (
        ExtractorPool(
            workers=1, timeout=30, max_memory=MEMORY, target=workerfuncs.raise_bug
        ) as pool,
        pytest.raises(WorkerBug, match="KeyError") as caught,
    ):
        pool.submit("https://news.example/bug", b"", {}).result()
    assert any("raise_bug" in note for note in getattr(caught.value, "__notes__", []))


def test_worker_is_recycled_after_max_tasks() -> None:
    with ExtractorPool(
        workers=1, timeout=30, max_memory=MEMORY, target=workerfuncs.report_pid, max_tasks=3
    ) as pool:
        pids = [pool.submit(f"https://news.example/{n}", b"", {}).result().text for n in range(7)]
    assert pids[0] == pids[1] == pids[2] != pids[3]
    assert pids[3] == pids[4] == pids[5] != pids[6]


def test_close_cancels_pending_tasks_when_asked() -> None:
    pool = ExtractorPool(workers=1, timeout=1, max_memory=MEMORY, target=workerfuncs.by_command)
    running = pool.submit("https://news.example/hang", b"", {})
    queued = [pool.submit(f"https://news.example/{n}", b"", {}) for n in range(5)]
    pool.close(cancel_pending=True)
    wait([running, *queued])
    assert all(f.cancelled() for f in queued[1:])
    with pytest.raises(RuntimeError):
        pool.submit("https://news.example/late", b"", {})


def test_worker_peak_memory_stays_bounded() -> None:
    pages = sorted(PAGES.glob("*.html"))
    pages = [p for p in pages if not p.name.startswith("no-article")]
    with ExtractorPool(
        workers=1, timeout=60, max_memory=MEMORY, target=workerfuncs.extract_and_report_peak
    ) as pool:
        results = [
            pool.submit(f"https://news.example/{p.stem}", p.read_bytes(), HTML).result()
            for p in pages * 5
        ]
    peaks_kb = [int(r.title or 0) for r in results]
    assert len({r.text for r in results}) == 1  # one worker did all of them
    assert 0 < max(peaks_kb) < 200_000, peaks_kb  # under 200 MB for ordinary article pages
