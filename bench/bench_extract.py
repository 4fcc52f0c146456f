"""Extraction speed: trafilatura alone against ExtractorPool, and what a worker costs.

Pages: the golden article pages of tests/data/pages (real and written articles of 100 to 1,050
words in seven site templates), repeated to PAGES_PER_RUN. Figures:

- trafilatura.extract alone with the same settings, in one process and in two (a plain
  multiprocessing pool, already started), in pages per second;
- extract_page in one process (adds charset decoding, title and aside filtering);
- ExtractorPool with two workers, already started, in pages per second, timed in turn with
  the two-process figures (the machine may be shared: load hits all three alike);
- the pool's own cost per task, with a target that does nothing;
- a worker's peak resident memory after extracting every page.

Run: .venv/bin/python -m bench.bench_extract
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import Row, repeat, spread, timed
from monitor.extract import extract_page
from monitor.models import Extracted
from monitor.workers import ExtractorPool

PAGES = Path(__file__).resolve().parent.parent / "tests" / "data" / "pages"
PAGES_PER_RUN = 280
HEADERS = {"content-type": "text/html; charset=utf-8"}
MEMORY = 1_000_000_000  # the config's default max_memory
RUNS = 5
LONG_PAGE = "broadsheet-iopc"  # the longest article: 1,049 words


def load_pages() -> list[bytes]:
    """The golden article pages, repeated to PAGES_PER_RUN."""
    pages = [
        p.read_bytes() for p in sorted(PAGES.glob("*.html")) if not p.stem.startswith("no-article")
    ]
    return [pages[n % len(pages)] for n in range(PAGES_PER_RUN)]


def mean_words(pages: list[bytes]) -> float:
    """Mean article length in words, from the golden text files."""
    texts = [p.read_text(encoding="utf-8") for p in PAGES.glob("*.txt") if "." not in p.stem]
    return sum(len(t.split()) for t in texts) / len(texts)


def trafilatura_only(page: bytes) -> int:
    """trafilatura.extract with the settings extract_article uses; the text's length."""
    import trafilatura

    text = trafilatura.extract(
        page.decode("utf-8"), include_comments=False, favor_precision=True, include_tables=True
    )
    return len(text or "")


def do_nothing(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """A target with no work, to measure the pool's own cost per task."""
    return Extracted(title=None, text="")


def extract_and_report_peak(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """extract_page, then the worker's peak resident memory in kB as the title."""
    extract_page(url, content, headers)
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    return Extracted(title=peak.split()[1], text=str(os.getpid()))


def rate(seconds: float, count: int = PAGES_PER_RUN) -> float:
    """Pages per second."""
    return count / seconds


def row(label: str, values: tuple[float, float, float], unit: str, note: str = "") -> Row:
    """One figure of the "extract" section."""
    median, low, high = values
    return Row("extract", label, median, low, high, unit, note)


def measure_in_process(pages: list[bytes]) -> list[Row]:
    """trafilatura alone and extract_page, one process."""
    trafilatura_only(pages[0])  # import and warm caches outside the timing
    alone = repeat(lambda: rate(timed(lambda: [trafilatura_only(p) for p in pages])))
    ours = repeat(
        lambda: rate(timed(lambda: [extract_page("https://b.example/", p, HEADERS) for p in pages]))
    )
    long_page = [(PAGES / f"{LONG_PAGE}.html").read_bytes()] * 100
    long_alone = repeat(lambda: rate(timed(lambda: [trafilatura_only(p) for p in long_page]), 100))
    return [
        row("trafilatura alone, 1 process", alone, "pages/s"),
        row("extract_page, 1 process", ours, "pages/s", "decode + trafilatura + asides"),
        row("trafilatura alone, 1 process, long page", long_alone, "pages/s", "1,049 words"),
    ]


def measure_two_processes(pages: list[bytes], this: Any) -> list[Row]:
    """Two processes: trafilatura and extract_page in a plain multiprocessing pool, and
    ExtractorPool, timed in turn within each run so that load from elsewhere hits all three."""
    args = [("https://b.example/", p, HEADERS) for p in pages]
    context = multiprocessing.get_context("forkserver")
    with context.Pool(2) as plain, ExtractorPool(workers=2, timeout=30, max_memory=MEMORY) as pool:
        plain.map(this.trafilatura_only, pages[:4])  # start and warm every process
        _submit_all(pool, pages[:4])
        runs: dict[str, list[float]] = {"alone": [], "plain": [], "pool": []}
        for _ in range(RUNS):
            alone = timed(lambda: plain.map(this.trafilatura_only, pages, chunksize=4))
            ours = timed(lambda: plain.starmap(extract_page, args, chunksize=4))
            pooled = timed(lambda: _submit_all(pool, pages))
            for key, seconds in (("alone", alone), ("plain", ours), ("pool", pooled)):
                runs[key].append(rate(seconds))
    figures = {key: spread(v) for key, v in runs.items()}
    return [
        row("trafilatura alone, 2 processes", figures["alone"], "pages/s", "multiprocessing.Pool"),
        row("extract_page, 2 processes", figures["plain"], "pages/s", "multiprocessing.Pool"),
        row("ExtractorPool, 2 workers", figures["pool"], "pages/s", "started, then timed"),
    ]


def measure_pool_costs(pages: list[bytes], this: Any) -> list[Row]:
    """The pool's own cost per task, and a worker's peak memory."""
    with ExtractorPool(workers=1, timeout=30, max_memory=MEMORY, target=this.do_nothing) as pool:
        pool.submit("https://b.example/", b"", {}).result()
        cost = repeat(lambda: 1e6 / rate(timed(lambda: _submit_all(pool, pages))))
    peak_target = this.extract_and_report_peak
    with ExtractorPool(workers=1, timeout=30, max_memory=MEMORY, target=peak_target) as pool:
        peaks = [int(r.title or 0) / 1024 for r in _submit_all(pool, pages)]
    return [
        row("pool cost per task, 1 worker", cost, "us/page", "target does nothing"),
        row("worker peak memory (VmHWM)", (max(peaks), min(peaks), max(peaks)), "MB"),
    ]


def _submit_all(pool: ExtractorPool, pages: list[bytes]) -> list[Extracted]:
    futures = [pool.submit(f"https://b.example/{n}", p, HEADERS) for n, p in enumerate(pages)]
    return [future.result() for future in futures]


def run() -> list[Row]:
    """Every figure of this benchmark."""
    from bench import bench_extract as this  # by its package name, so workers can import it

    pages = load_pages()
    rows = measure_in_process(pages)
    two = measure_two_processes(pages, this)
    rows += two + measure_pool_costs(pages, this)
    alone, plain, pooled = (r.median for r in two)
    words = f"{mean_words(pages):.0f} words a page"
    for label, base in (("trafilatura alone", alone), ("extract_page", plain)):
        overhead = (base / pooled - 1) * 100
        rows.append(row(f"pool overhead vs {label}, 2 processes", (overhead,) * 3, "%", words))
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r.label:44s} {r.median:10.1f} {r.unit:8s} [{r.low:.1f} .. {r.high:.1f}] {r.note}")
