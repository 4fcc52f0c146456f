"""The poller's dispatcher alone: limits overall and per host, pages before feeds, every
request started once. A stand-in pool records what is started instead of running it; a real
one shows pool threads going on from one feed to the next by themselves."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from monitor.pipeline import _Dispatcher


class RecordingPool:
    """Keeps what was submitted, in order; nothing runs."""

    def __init__(self) -> None:
        self.started: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], job: Callable[[], Any], future: Future[Any]) -> None:
        self.started.append(future)


class CountingQueues(dict[str, Any]):
    """The dispatcher's queues, counting the hosts a pump looks at."""

    visited = 0

    def items(self) -> Any:
        for pair in super().items():
            self.visited += 1
            yield pair


def dispatcher(total: int, per_host: int) -> tuple[_Dispatcher, RecordingPool]:
    pool = RecordingPool()
    return _Dispatcher(pool, total, per_host), pool  # type: ignore[arg-type]


def test_limits_overall_and_per_host_hold_and_every_request_starts_once() -> None:
    d, pool = dispatcher(total=5, per_host=2)
    hosts: dict[Future[Any], str] = {}
    for i in range(60):
        host = f"h{i % 12}.example" if i % 3 else "big.example"
        hosts[d.queue(f"https://{host}/feed{i}", lambda: None, page=False)] = host
    d.pump(0)
    running: list[Future[Any]] = list(pool.started)
    finished = 0
    while running:
        in_flight = Counter(hosts[f] for f in running)
        assert len(running) <= 5
        assert max(in_flight.values()) <= 2
        done = running.pop(0)  # the oldest request finishes
        d.release(done)
        finished += 1
        before = len(pool.started)
        d.pump(0)
        running += pool.started[before:]
    assert finished == 60
    assert len(set(map(id, pool.started))) == 60
    assert not d.queued  # every host's queue was emptied and dropped


def test_a_host_takes_its_pages_before_its_feeds_within_the_page_room() -> None:
    d, pool = dispatcher(total=10, per_host=3)
    feeds = [d.queue("https://a.example/feed", lambda: None, page=False) for _ in range(3)]
    pages = [d.queue(f"https://a.example/p{i}", lambda: None, page=True) for i in range(3)]
    assert d.pump(page_room=2) == 2
    assert pool.started == [pages[0], pages[1], feeds[0]]


def test_once_every_slot_is_taken_nothing_more_starts_and_no_host_is_visited() -> None:
    d, pool = dispatcher(total=2, per_host=4)
    futures = [d.queue(f"https://h{i}.example/feed", lambda: None, page=False) for i in range(500)]
    d.pump(0)
    assert pool.started == futures[:2]
    d.queues = queues = CountingQueues(d.queues)
    d.pump(0)
    assert pool.started == futures[:2]
    assert queues.visited <= 1  # a full dispatcher does not walk 498 waiting hosts
    d.release(futures[0])
    d.release(futures[0])  # a second release of the same future frees nothing more
    d.pump(0)
    assert pool.started == futures[:3]


def test_a_pool_thread_goes_on_to_the_next_feed_without_waiting_for_the_loop() -> None:
    """Pumped once, a slot works through every queued feed by itself, within the limits."""
    order: list[int] = []
    with ThreadPoolExecutor(2) as pool:
        d = _Dispatcher(pool, total=2, per_host=1)
        futures = [
            d.queue(f"https://{'ab'[i % 2]}.example/feed{i}", partial(order.append, i), page=False)
            for i in range(10)
        ]
        d.pump(0)  # the only pump: nothing else starts requests
        wait(futures, timeout=10)
    assert all(f.done() and f.exception() is None for f in futures)
    assert sorted(order) == list(range(10))
    assert not d.queued and not d.hosts and set(d.in_flight.values()) == {0}


def test_a_pool_thread_leaves_waiting_pages_to_the_loop_and_stops_when_told() -> None:
    """A page waiting anywhere means the loop chooses what starts next (pages first, within
    its room); once stopping, a finished request starts nothing more."""
    for stop in (False, True):
        with ThreadPoolExecutor(1) as pool:
            d = _Dispatcher(pool, total=1, per_host=1, stop=threading.Event())
            gate = threading.Event()
            first = d.queue("https://a.example/feed0", gate.wait, page=False)
            d.pump(0)
            feed = d.queue("https://a.example/feed1", lambda: None, page=False)
            if stop:
                d.stop.set()
            else:
                d.queue("https://a.example/page", lambda: None, page=True)
            gate.set()
            first.result(timeout=10)
            time.sleep(0.05)  # time enough to start the next feed, if it wrongly would
            assert not feed.done() and not d.hosts  # the slot is free, the feed still queued
            if not stop:
                assert d.pump(page_room=1) == 1  # the loop starts the page first
