"""Extraction in worker processes, each with a time limit and a memory limit.

trafilatura can run for minutes or exhaust memory on a pathological page, so pages are
extracted in child processes: a task past its time limit gets its worker killed (SIGKILL),
a worker past its memory limit fails its task, and a worker that dies for any reason is
replaced; each failure costs one page and is reported as ExtractError.

One parent thread drives each worker over a pipe, taking tasks from a shared queue, so
every worker stays busy while any task waits. Page bytes go down the pipe as they are,
without pickling. Workers start on the first submit, by "forkserver" (or "spawn"), never
"fork": the parent runs threads. The parent never imports trafilatura.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from monitor.errors import ExtractError, MonitorError
from monitor.extract import extract_page
from monitor.models import Extracted

log = logging.getLogger(__name__)

Target = Callable[[str, bytes, Mapping[str, str]], Extracted]

MAX_TASKS_PER_WORKER = 500  # recycle a worker after this many pages to bound memory growth
STARTUP_LIMIT = 60.0  # seconds for a new worker to report ready
STOP_LIMIT = 5.0  # seconds for a worker to exit when asked before it is killed
# Modules the fork server imports once, so each new worker starts with them loaded.
PRELOAD = ["monitor.extract", "trafilatura"]


@dataclass(frozen=True, slots=True)
class _Task:
    url: str
    content: bytes
    headers: dict[str, str]
    future: Future[Extracted]


class WorkerBug(Exception):
    """An exception other than MonitorError raised by the target in a worker: a bug.

    Its message names the original type; its note holds the worker's traceback.
    """


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
                self._start_threads()
            self._tasks.put(_Task(url, content, dict(headers), future))
        return future

    def close(self, cancel_pending: bool = False) -> None:
        """Finish (or, with cancel_pending, cancel) queued pages, then stop every worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        if cancel_pending:
            self._cancel_queued()
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

    def _start_threads(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._drive_worker, name=f"extract-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _cancel_queued(self) -> None:
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            if task is not None and task.future.cancel():
                # moves it to "cancelled and notified", so that wait() sees it done
                task.future.set_running_or_notify_cancel()

    def _drive_worker(self) -> None:
        """One parent thread: feed tasks to one worker process, replacing it when needed."""
        worker: _Worker | None = None
        try:
            while (task := self._tasks.get()) is not None:
                if not task.future.set_running_or_notify_cancel():
                    continue
                if worker is None or not worker.usable(self.max_tasks):
                    if worker is not None:
                        worker.stop()
                    worker = _Worker.start(self.target, self.max_memory)
                _run_task(worker, task, self.timeout)
        finally:
            if worker is not None:
                worker.stop()


def _run_task(worker: _Worker, task: _Task, timeout: float) -> None:
    """Run one task on worker and settle its future, whatever happens to the worker."""
    try:
        if not worker.alive:
            raise ExtractError("extraction worker could not start")
        task.future.set_result(worker.run(task, timeout))
    except ExtractError as err:
        log.warning("extraction failed for %s: %s", task.url, err)
        task.future.set_exception(err)
    except BaseException as err:  # the target's own bug, re-raised for the caller to see
        task.future.set_exception(err)


class _Worker:
    """One child process and the parent's end of its pipe."""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.tasks = 0
        self.alive = True

    @classmethod
    def start(cls, target: Target, max_memory: int) -> _Worker:
        """Start a worker and wait until it is ready; a worker that fails is not alive."""
        context = _context()
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_serve, args=(child_end, target, max_memory), name="monitor-extract"
        )
        process.daemon = True
        process.start()
        child_end.close()
        worker = cls(process, parent_end)
        try:
            ready = parent_end.poll(STARTUP_LIMIT) and parent_end.recv_bytes() == b"ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            log.error("extraction worker failed to start: %s", worker.kill())
        return worker

    def usable(self, max_tasks: int) -> bool:
        """True while the worker is alive and has not served its quota of tasks."""
        return self.alive and self.tasks < max_tasks

    def run(self, task: _Task, timeout: float) -> Extracted:
        """Send one page, wait at most timeout seconds for the answer."""
        self.tasks += 1
        try:
            self.conn.send_bytes(json.dumps([task.url, task.headers]).encode())
            self.conn.send_bytes(task.content)
            answered = self.conn.poll(timeout)
        except OSError:
            raise ExtractError(f"extraction worker {self.kill()}") from None
        if not answered:
            self.kill()
            raise ExtractError(f"extraction took longer than {timeout:g}s")
        try:
            reply = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            raise ExtractError(f"extraction worker {self.kill()}") from None
        return self._settle(reply)

    def _settle(self, reply: dict[str, Any]) -> Extracted:
        kind = reply["kind"]
        if kind == "ok":
            return Extracted(title=reply["title"], text=reply["text"])
        if kind == "memory":
            self.stop()  # the child exits after a MemoryError; its heap is not to be trusted
            raise ExtractError(f"extraction ran out of memory ({reply['message']})")
        if kind == "extract_error":
            raise ExtractError(reply["message"])
        if kind == "monitor_error":
            raise MonitorError(reply["message"])
        bug = WorkerBug(reply["message"])
        bug.add_note("in the extraction worker:\n" + reply["traceback"])
        raise bug

    def kill(self) -> str:
        """SIGKILL the process (if still running); returns how it ended, for messages."""
        self.alive = False
        self.conn.close()
        if self.process.exitcode is None:
            self.process.join(0.5)  # a worker that just died is usually already gone
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
            return "was killed"
        return _describe_exit(self.process.exitcode)

    def stop(self) -> None:
        """Ask the process to exit (closing its pipe), killing it if it does not."""
        if not self.alive:
            return
        self.alive = False
        self.conn.close()
        self.process.join(STOP_LIMIT)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()


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


def _serve(conn: Connection, target: Target, max_memory: int) -> None:
    """Worker main loop: receive a page, run target, send back the outcome."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(max_memory)
    conn.send_bytes(b"ready")
    while True:
        try:
            url, headers = json.loads(conn.recv_bytes())
            content = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent closed the pipe or is gone
        reply = _call_target(target, url, content, headers, max_memory)
        del content
        conn.send_bytes(json.dumps(reply).encode())
        if reply["kind"] == "memory":
            return


def _limit_memory(max_memory: int) -> None:
    """Cap the process's data segment (heap and anonymous mappings: Python and libxml2)."""
    if max_memory <= 0:
        return
    import resource

    # RLIMIT_DATA, measured against RLIMIT_AS: both turn lxml's and Python's overruns into
    # MemoryError, but DATA lets the worker use the whole budget for data, where AS also
    # counts the 50 MB of mapped libraries.
    resource.setrlimit(resource.RLIMIT_DATA, (max_memory, max_memory))


def _call_target(
    target: Target, url: str, content: bytes, headers: dict[str, str], max_memory: int
) -> dict[str, Any]:
    """Run target; the outcome as plain JSON data (the parent unpickles nothing from here)."""
    try:
        result = target(url, content, headers)
        return {"kind": "ok", "title": result.title, "text": result.text}
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
