"""Logging: readable lines on a terminal, one JSON object a line with --log-format json.

Events carry fields (feed=, status=, new_articles=, duration=) passed as `extra={"fields":
{...}}`; the text format appends them as key=value, the JSON format as keys. Nothing secret is
ever put in a field or a message: passwords are read from the environment at send time only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "monitor"


def get_logger(name: str = "") -> logging.Logger:
    """The project's logger, or a child of it."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def event(log: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log one event with structured fields."""
    log.log(level, message, extra={"fields": fields})


class TextFormatter(logging.Formatter):
    """`2026-11-22 07:00:01 +0000 INFO  feed polled  feed="BBC UK" status=ok new_articles=3`.

    The time is the machine's local time with its offset from UTC: without it, the hour that
    repeats when the clocks go back could not be told apart, nor a server's UTC from the
    config's time zone.
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
        fields = getattr(record, "fields", {})
        tail = " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        if tail:
            line += f"  {tail}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _text_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to sys.stderr as it is when a record comes, not as it was at set-up: a progress
    display that redirects stderr then prints log lines above itself instead of through it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always sys.stderr


def _not_a_skipped_tick(record: logging.LogRecord) -> bool:
    """False for APScheduler's warning that a job's tick was skipped because its last run is
    still going. The daemon's poll job ticks every few seconds and one run may take longer
    (a slow site answers within [fetch] timeout, a mail server within its deadline): skipping
    the tick is the design, and the warning, naming the scheduler's internals, read to an
    operator as a fault every few seconds of every long poll."""
    return "maximum number of running instances reached" not in str(record.msg)


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Send the project's log to stderr in the chosen format."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # APScheduler logs each job run at INFO; keep its warnings and errors only
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").handlers[:] = [handler]
    scheduler = logging.getLogger("apscheduler.scheduler")
    scheduler.addFilter(_not_a_skipped_tick)
