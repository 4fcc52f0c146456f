"""Fetch model: httpx.AsyncClient, or a reused sync httpx.Client on a thread pool?

The server is a LoopbackSite in its own process, so its CPU is not counted, serving a 20 kB
page with 0 ms or 50 ms of latency per request. Each client model fetches REQUESTS pages with
20 or 50 requests in flight, after its connections are open. Figures, median of three runs:

- throughput in requests per second;
- CPU time of the client process per request, in ms (every thread: event loop, pool workers).

Models: httpx.AsyncClient with a semaphore; one httpx.Client shared by a ThreadPoolExecutor;
monitor.fetch.Fetcher on the same pool (guard, total deadline, our own decompression).
Every CPU millisecond spent fetching is one taken from extraction.

Run: .venv/bin/python -m bench.bench_fetch_model
"""

from __future__ import annotations

import asyncio
import ipaddress
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

import httpx

from bench.common import Row, spread
from monitor.config import FetchSettings
from monitor.fetch import Fetcher
from monitor.loopback import LoopbackSite

REQUESTS = 1000
RUNS = 3
PARAGRAPH = "<p>The Met said two officers were dismissed after a misconduct hearing.</p>"
PAGE = ("<!doctype html><html><body>" + PARAGRAPH * 300)[:20_000].encode()
LATENCIES = (0.0, 0.05)
IN_FLIGHT = (20, 50)

Measure = Callable[[str, int], tuple[float, float]]  # (url, in flight) -> (seconds, cpu seconds)


def serve(latency: float, conn: Connection) -> None:
    """Child process: a LoopbackSite with latency, until the parent says stop."""
    with LoopbackSite(latency=latency) as site:
        site.add("/page", PAGE)
        conn.send(site.url("/page"))
        conn.recv()


def async_model(url: str, in_flight: int) -> tuple[float, float]:
    """httpx.AsyncClient, `in_flight` tasks at a time."""

    async def main() -> tuple[float, float]:
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
            gate = asyncio.Semaphore(in_flight)

            async def get() -> int:
                async with gate:
                    response = await client.get(url)
                    return len(response.content)

            await asyncio.gather(*(get() for _ in range(in_flight)))  # open connections
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(get() for _ in range(REQUESTS)))
            return time.perf_counter() - wall, time.process_time() - cpu

    return asyncio.run(main())


def sync_model(url: str, in_flight: int) -> tuple[float, float]:
    """One httpx.Client shared by `in_flight` threads."""
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    with httpx.Client(limits=limits, trust_env=False) as client:
        return _on_threads(lambda: len(client.get(url).content), in_flight)


def fetcher_model(url: str, in_flight: int) -> tuple[float, float]:
    """monitor.fetch.Fetcher shared by `in_flight` threads."""
    settings = FetchSettings(
        concurrency=in_flight,
        per_host=in_flight,
        allow_addresses=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    with Fetcher(settings) as fetcher:
        return _on_threads(lambda: len(fetcher.fetch(url).content), in_flight)


def _on_threads(get: Callable[[], int], in_flight: int) -> tuple[float, float]:
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(lambda _: get(), range(in_flight)))  # start threads, open connections
        wall, cpu = time.perf_counter(), time.process_time()
        list(pool.map(lambda _: get(), range(REQUESTS)))
        return time.perf_counter() - wall, time.process_time() - cpu


MODELS: dict[str, Measure] = {
    "AsyncClient": async_model,
    "sync Client + threads": sync_model,
    "Fetcher + threads": fetcher_model,
}


def measure(latency: float) -> list[Row]:
    """Every model at every number in flight, against one server with this latency."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve, args=(latency, child), daemon=True)
    server.start()
    try:
        url = parent.recv()
        rows: list[Row] = []
        for in_flight in IN_FLIGHT:
            for name, model in MODELS.items():
                runs = [model(url, in_flight) for _ in range(RUNS)]
                rows += _rows(name, latency, in_flight, runs)
        return rows
    finally:
        parent.send("stop")
        server.join(10)


def _rows(name: str, latency: float, in_flight: int, runs: list[tuple[float, float]]) -> list[Row]:
    section = f"{latency * 1000:.0f} ms latency, {in_flight} in flight"
    rates = [REQUESTS / wall for wall, _ in runs]
    cpus = [cpu / REQUESTS * 1000 for _, cpu in runs]
    return [
        Row(section, f"{name}: throughput", *spread(rates), "req/s"),
        Row(section, f"{name}: CPU", *spread(cpus), "ms/req"),
    ]


def run() -> list[Row]:
    """Every figure of this benchmark."""
    return [row for latency in LATENCIES for row in measure(latency)]


if __name__ == "__main__":
    for r in run():
        print(
            f"{r.section:28s} {r.label:36s} {r.median:9.2f} {r.unit:7s} "
            f"[{r.low:.2f} .. {r.high:.2f}]"
        )
