"""Extraction targets that misbehave, for the worker pool tests; they run in worker processes.

Each has the signature of monitor.extract.extract_page: (url, content, headers) -> Extracted.
The content tells some of them what to do, so one pool can be driven through several cases.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Mapping

from monitor.errors import ExtractError
from monitor.extract import extract_page
from monitor.models import Extracted


def echo(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Returns the URL as title and the content, decoded, as text."""
    return Extracted(title=url, text=content.decode("utf-8"))


def report_pid(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Returns the worker's process id as text."""
    return Extracted(title=url, text=str(os.getpid()))


def report_transport(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Returns the size of the content received and the headers, to check the transport."""
    return Extracted(title=url, text=f"{len(content)} {sorted(headers.items())}")


def hang(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Never returns (blocks without using CPU)."""
    threading.Event().wait()
    raise AssertionError("unreachable")


def spin(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Never returns (busy loop, as a pathological regular expression or parse would)."""
    count = 0
    while True:
        count += 1


def allocate_at_once(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Asks for twice the memory the content names (in bytes) in one allocation."""
    block = bytearray(2 * int(content))
    return Extracted(title=url, text=str(len(block)))


def allocate_gradually(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Grows a list of 10 MB blocks up to twice the bytes the content names."""
    blocks = []
    for _ in range(2 * int(content) // 10_000_000):
        blocks.append(bytearray(10_000_000))
    return Extracted(title=url, text=str(len(blocks)))


def exit_abruptly(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Leaves the process at once with status 3, as a crashing C extension might."""
    os._exit(3)


def segfault(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Reads address 0: the process dies of SIGSEGV."""
    ctypes.string_at(0)
    raise AssertionError("unreachable")


def kill_self(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """SIGKILLs its own process, as the kernel's out-of-memory killer would."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def fail_to_extract(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Raises ExtractError as extraction of an empty page does."""
    raise ExtractError(f"no article text found at {url}")


def raise_bug(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Raises an ordinary exception, as a bug would."""
    raise KeyError(url)


def work_then_echo(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Works (sleeps) for the seconds the content names, then returns them as text."""
    time.sleep(float(content))
    return Extracted(title=url, text=content.decode("ascii"))


def by_command(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Dispatches on the URL's last path segment: hang, exit, segfault, memory, or echo."""
    command = url.rsplit("/", 1)[-1]
    actions = {
        "hang": hang,
        "exit": exit_abruptly,
        "segfault": segfault,
        "memory": allocate_gradually,
        "extract": extract_page,
        "size": report_transport,
    }
    return actions.get(command, echo)(url, content, headers)


def extract_and_report_peak(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Extracts the page, then returns the worker's peak resident memory in kB as the title."""
    extract_page(url, content, headers)
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    return Extracted(title=peak.split()[1], text=str(os.getpid()))
