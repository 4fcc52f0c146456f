"""Real `monitor` processes for the tests that kill, race or restart them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def start_monitor(config: Path, command: str, log: str) -> subprocess.Popen[bytes]:
    """`python -m monitor --config CONFIG COMMAND` in a new process group (so its extraction
    processes die with it, as under a service manager), its output appended to LOG beside
    the config. MONITOR_CONFIG is left out of its environment: --config alone names it."""
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    with open(config.parent / log, "ab") as out:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), command],
            cwd=config.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(condition: Callable[[], object], what: str, deadline: float) -> None:
    """Check a condition until it holds, failing after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)  # between checks of the condition
