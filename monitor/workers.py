"""Extraction in worker processes, each with a time limit and a memory limit.

trafilatura can run for minutes or exhaust memory on a pathological page, so pages are
extracted in child processes: a task past its time limit gets its worker killed (SIGKILL),
a worker past its memory limit fails its task, and a worker that dies for any reason is
replaced; each failure costs one page and is reported as ExtractError.

One parent thread drives each worker, taking tasks from a shared queue. Two one-way pipes
join them: pages go down as raw bytes, replies come back as JSON (the parent never
unpickles what a process parsing hostile pages sends). The next page waits in the pipe
while the worker runs the current one, so a worker never idles waiting for its thread.
Workers start on the first submit, by "forkserver" (or "spawn"), never "fork": the parent
runs threads. The parent never imports trafilatura.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from monitor.errors import ExtractError, MonitorError
from monitor.extract import extract_page
from monitor.models import Extracted, TextFeatures

log = logging.getLogger(__name__)

Target = Callable[[str, bytes, Mapping[str, str]], Extracted]

MAX_TASKS_PER_WORKER = 500  # recycle a worker after this many pages to bound memory growth
STARTUP_LIMIT = 60.0  # seconds for a new worker to report ready
STOP_LIMIT = 5.0  # seconds for a worker to exit when asked before it is killed
DEPTH = 2  # pages in a worker's pipe at once: the one it runs and the next
PIPE_BYTES = 1 << 20  # asked of the kernel for the page pipe (Linux allows 1 MiB unprivileged)
# Modules the fork server imports once, so each new worker starts with them loaded.
PRELOAD = ["monitor.extract", "trafilatura"]


@dataclass(frozen=True, slots=True)
class _Task:
    url: str
    content: bytes
    headers: dict[str, str]
    future: Future[Extracted]

    @property
    def size(self) -> int:
        """Bytes the task takes in the pipe, with room for its URL, headers and framing."""
        return len(self.content) + len(self.url) + 64 * len(self.headers) + 4096


class WorkerBug(Exception):
    """A bug in the target (an exception not a MonitorError), with the worker's traceback."""


class ExtractorPool:
    """A pool of extraction processes; `submit` is thread-safe.

    workers=0 means one per core; timeout is seconds per page; max_memory is the data
    size limit of each worker in bytes (0: none). Use as a context manager, or call close().
    """

    def __init__(
        self,
        workers: int,
        timeout: float,
        max_memory: int,
        target: Target = extract_page,
        max_tasks: int = MAX_TASKS_PER_WORKER,
    ) -> None:
        pickle.dumps(target)  # fails here, not in a worker thread, if workers cannot get it
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self.max_memory = max_memory
        self.target = target
        self.max_tasks = max_tasks
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, url: str, content: bytes, headers: Mapping[str, str]) -> Future[Extracted]:
        """Queue one page; the future holds its Extracted or raises ExtractError."""
        future: Future[Extracted] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("submit() on a closed ExtractorPool")
            if not self._threads:
                for index in range(self.workers):
                    thread = threading.Thread(
                        target=_Driver(self).run, name=f"extract-{index}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
            self._tasks.put(_Task(url, content, dict(headers), future))
        return future

    def close(self, cancel_pending: bool = False) -> None:
        """Finish (or, with cancel_pending, cancel) queued pages, then stop every worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        while cancel_pending:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None and task.future.cancel():
                task.future.set_running_or_notify_cancel()  # so that wait() sees it done
        for _ in threads:
            self._tasks.put(None)
        for thread in threads:
            thread.join()

    def __enter__(self) -> ExtractorPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel_pending=exc is not None)


class _Driver:
    """One parent thread: keeps one worker process fed, and replaces it when needed.

    Up to DEPTH tasks are in flight; only the first runs, and its time limit counts from
    when it became first. A task goes in behind another only if both fit in the pipe's
    buffer, so writing never blocks this thread while it should be timing the first.
    """

    def __init__(self, pool: ExtractorPool) -> None:
        self.pool = pool
        self.worker: _Worker | None = None
        self.inflight: deque[_Task] = deque()
        self.waiting: deque[_Task] = deque()  # taken from the queue, not yet sent
        self.head_since = 0.0
        self.stopping = False

    def run(self) -> None:
        """Serve tasks until the pool's stop signal, then stop the worker."""
        try:
            while True:
                self._fill()
                if self.inflight:
                    self._settle_head()
                elif self.stopping and not self.waiting:
                    return
        except BaseException as err:  # a bug here must not leave futures waiting forever
            for task in (*self.inflight, *self.waiting):
                if not task.future.done():
                    task.future.set_exception(err)
            raise
        finally:
            if self.worker is not None:
                self.worker.stop()

    def _fill(self) -> None:
        while len(self.inflight) < DEPTH:
            task = self.waiting.popleft() if self.waiting else self._take()
            if task is None:
                return
            if self.inflight and not self._fits(task):
                self.waiting.appendleft(task)
                return
            self._send(task)

    def _take(self) -> _Task | None:
        """The next live task from the shared queue; None if there is none to take now."""
        worker = self.worker
        if self.stopping or (self.inflight and worker and worker.sent >= self.pool.max_tasks):
            return None  # a worker finishes its quota before it is recycled
        while True:
            try:
                task = self.pool._tasks.get(block=not self.inflight)
            except queue.Empty:
                return None
            if task is None:
                self.stopping = True
                return None
            if task.future.set_running_or_notify_cancel():
                return task

    def _fits(self, task: _Task) -> bool:
        capacity = self.worker.capacity if self.worker else 0
        return task.size + sum(t.size for t in self.inflight) <= capacity

    def _send(self, task: _Task) -> None:
        """Put task in the worker's pipe, starting a worker first if there is none usable."""
        pool, worker = self.pool, self.worker
        if worker is None or not worker.alive or worker.sent >= pool.max_tasks:
            if worker is not None:
                worker.stop()
            try:
                worker = self.worker = _Worker.start(pool.target, pool.max_memory)
            except OSError as err:  # out of processes or file descriptors: this page fails
                self.worker = None
                _settle_future(task, ExtractError(f"cannot start an extraction worker: {err}"))
                return
        if not self.inflight:
            self.head_since = time.monotonic()
        self.inflight.append(task)
        try:
            worker.send(task)
        except OSError:
            log.debug("worker pipe closed; the next read says why")

    def _settle_head(self) -> None:
        """Wait for the first task in flight and settle its future."""
        worker, head = self.worker, self.inflight[0]
        assert worker is not None
        remaining = self.head_since + self.pool.timeout - time.monotonic()
        try:
            reply = worker.receive(max(remaining, 0.0))
        except (EOFError, OSError):
            self._fail_head(ExtractError(f"extraction worker {worker.kill()}"))
            return
        if reply is None:
            worker.kill()
            self._fail_head(ExtractError(f"extraction took longer than {self.pool.timeout:g}s"))
            return
        self.inflight.popleft()
        self.head_since = time.monotonic()
        _settle_future(head, reply)
        if reply["kind"] == "memory":
            worker.stop()  # it exits after a MemoryError; its heap is not to be trusted
            self._requeue_rest()

    def _fail_head(self, error: ExtractError) -> None:
        _settle_future(self.inflight.popleft(), error)
        self._requeue_rest()

    def _requeue_rest(self) -> None:
        """Tasks behind a failed one never started: they go first to the next worker."""
        self.waiting.extendleft(reversed(self.inflight))
        self.inflight.clear()


def _settle_future(task: _Task, outcome: dict[str, Any] | ExtractError) -> None:
    """Set task's result or exception from a worker's reply or a failure of the worker."""
    try:
        task.future.set_result(_read_reply(outcome))
    except ExtractError as err:
        log.warning("extraction failed for %s: %s", task.url, err)
        task.future.set_exception(err)
    except Exception as err:  # the target's own bug, re-raised for the caller to see
        task.future.set_exception(err)


def _read_reply(outcome: dict[str, Any] | ExtractError) -> Extracted:
    if isinstance(outcome, ExtractError):
        raise outcome
    kind = outcome["kind"]
    if kind == "ok":
        story = None
        if "story" in outcome:
            terms, minhash, shingles = outcome["story"]
            story = TextFeatures(tuple(map(tuple, terms)), tuple(minhash), shingles)
        return Extracted(title=outcome["title"], text=outcome["text"], story=story)
    if kind == "memory":
        raise ExtractError(f"extraction ran out of memory ({outcome['message']})")
    if kind == "extract_error":
        raise ExtractError(outcome["message"])
    if kind == "monitor_error":
        raise MonitorError(outcome["message"])
    bug = WorkerBug(outcome["message"])
    bug.add_note("in the extraction worker:\n" + outcome["traceback"])
    raise bug


class _Worker:
    """One child process, the pipe its pages go down and the pipe its replies come up."""

    def __init__(self, process: Any, pages: Connection, replies: Connection) -> None:
        self.process, self.pages, self.replies = process, pages, replies
        self.capacity = _pipe_capacity(pages)
        self.sent = 0
        self.alive = True

    @classmethod
    def start(cls, target: Target, max_memory: int) -> _Worker:
        """Start a worker and wait until it is ready; a worker that fails is not alive."""
        context = _context()
        pages_in, pages_out = context.Pipe(duplex=False)
        replies_in, replies_out = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve, args=(pages_in, replies_out, target, max_memory), daemon=True
        )
        try:
            process.start()
        except BaseException:
            pages_out.close()
            replies_in.close()
            raise
        finally:
            pages_in.close()
            replies_out.close()
        worker = cls(process, pages_out, replies_in)
        try:
            ready = replies_in.poll(STARTUP_LIMIT) and replies_in.recv_bytes() == b"ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            log.error("extraction worker failed to start: %s", worker.kill())
        return worker

    def send(self, task: _Task) -> None:
        """Write one page to the pipe; OSError when the worker is gone."""
        self.sent += 1
        self.pages.send_bytes(json.dumps([task.url, task.headers]).encode())
        self.pages.send_bytes(task.content)

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next reply, or None after timeout seconds; EOFError when the worker died."""
        if not self.replies.poll(timeout):
            return None
        reply: dict[str, Any] = json.loads(self.replies.recv_bytes())
        return reply

    def kill(self) -> str:
        """SIGKILL the process (if still running); returns how it ended, for messages."""
        return self._end(0.5)  # a worker that just died is usually gone by then

    def stop(self) -> None:
        """Ask the process to exit (closing its pipes), killing it if it does not."""
        if self.alive:
            self._end(STOP_LIMIT)

    def _end(self, grace: float) -> str:
        self.alive = False
        self.pages.close()
        self.replies.close()
        self.process.join(grace)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
            return "was killed"
        return _describe_exit(self.process.exitcode)


def _pipe_capacity(conn: Connection) -> int:
    """Grow the pipe's kernel buffer where the system allows; the bytes it holds."""
    import fcntl

    try:
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        return fcntl.fcntl(conn.fileno(), fcntl.F_GETPIPE_SZ)
    except (AttributeError, OSError):
        return 16384  # the smallest default among the systems we run on: macOS


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name == "SIGKILL":
            return "was killed (SIGKILL; the system may have run out of memory)"
        return f"crashed ({name})"
    return f"exited with status {code}"


# --- in the worker process ----------------------------------------------------------------


def _serve(pages: Connection, replies: Connection, target: Target, max_memory: int) -> None:
    """Worker main loop: receive a page, run target, send back the outcome."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if max_memory > 0:
        import resource

        # RLIMIT_DATA (heap and anonymous mappings, Python's and libxml2's), measured against
        # RLIMIT_AS: both turn overruns into MemoryError, but AS also counts ~50 MB of mapped
        # libraries, so the worker would get less than max_memory for its data.
        resource.setrlimit(resource.RLIMIT_DATA, (max_memory, max_memory))
    replies.send_bytes(b"ready")
    while True:
        try:
            url, headers = json.loads(pages.recv_bytes())
            content = pages.recv_bytes()
        except (EOFError, OSError):
            return  # the parent closed the pipe or is gone
        reply = _call_target(target, url, content, headers, max_memory)
        del content
        replies.send_bytes(json.dumps(reply).encode())
        if reply["kind"] == "memory":
            return


def _call_target(
    target: Target, url: str, content: bytes, headers: dict[str, str], max_memory: int
) -> dict[str, Any]:
    """Run target; the outcome as plain JSON data."""
    try:
        result = target(url, content, headers)
        reply: dict[str, Any] = {"kind": "ok", "title": result.title, "text": result.text}
        if result.story is not None:
            story = result.story
            reply["story"] = [story.terms, story.minhash, story.shingles]
        return reply
    except MemoryError:
        return {"kind": "memory", "message": f"limit {max_memory / 1e6:g} MB"}
    except ExtractError as err:
        return {"kind": "extract_error", "message": str(err)}
    except MonitorError as err:
        return {"kind": "monitor_error", "message": str(err)}
    except Exception as err:
        return {
            "kind": "bug",
            "message": f"{type(err).__name__}: {err}",
            "traceback": "".join(traceback.format_exception(err)),
        }
