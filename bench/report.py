"""The benchmark report: the table on the terminal, and bench/REPORT.md with the machine.

A benchmark's run() returns rows (bench.common.Row), or an Outcome when it also has notes:
how it measured, what it could not measure, and profiles.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Row


@dataclass(frozen=True)
class Outcome:
    """What one benchmark measured: its rows, and notes for the report."""

    rows: list[Row]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    """One benchmark's part of the report."""

    name: str
    title: str
    outcome: Outcome
    seconds: float
    error: str | None = None


def machine() -> dict[str, str]:
    """CPU model, cores, memory, Python, system and date."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            names = [line.split(":", 1)[1] for line in cpuinfo if line.startswith("model name")]
            model = names[0].strip() if names else model
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            kb = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
            memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "CPU": model,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load average at the start (1, 5, 15 min)": load_average(),
    }


def load_average() -> str:
    """The system's load averages: other work on the machine skews every figure."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _number(value: float) -> str:
    """Three significant figures, without exponents."""
    magnitude = abs(value)
    if float(value).is_integer() and magnitude < 1e9:
        return f"{int(value):,}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.3g}"


def render_text(sections: Sequence[Section]) -> str:
    """The table for the terminal."""
    lines = []
    for section in sections:
        lines.append(f"== {section.title} ({section.seconds:.0f} s)")
        if section.error:
            lines.append(f"   FAILED: {section.error}")
        width = max((len(r.label) for r in section.outcome.rows), default=0)
        for r in section.outcome.rows:
            spread = f"[{_number(r.low)} .. {_number(r.high)}]"
            lines.append(
                f"   {r.label:<{width}}  {_number(r.median):>9} {r.unit:<11} {spread:<20} {r.note}"
            )
    return "\n".join(lines)


def render_markdown(
    sections: Sequence[Section], about: dict[str, str], command: str, intro: str
) -> str:
    """bench/REPORT.md: the machine, the table, the notes."""
    out = ["# Benchmark report", "", intro, "", f"Command: `{command}`", "", "## Machine", ""]
    out += [f"- {key}: {value}" for key, value in about.items()]
    out += ["", "## Figures", ""]
    out += ["Median of the runs, with min and max.", ""]
    for section in sections:
        out += [f"### {section.title}", ""]
        if section.error:
            out += [f"Not measured: {section.error}", ""]
        if section.outcome.rows:
            out += ["| figure | median | min | max | unit | note |"]
            out += ["| --- | ---: | ---: | ---: | --- | --- |"]
            for r in section.outcome.rows:
                cells = [_number(r.median), _number(r.low), _number(r.high)]
                label = r.label if r.section == section.name else f"{r.section}: {r.label}"
                out.append(f"| {label} | {' | '.join(cells)} | {r.unit} | {r.note} |")
            out.append("")
        if section.outcome.notes:
            out += ["Notes:", "", *section.outcome.notes, ""]
        out += [f"_Took {section.seconds:.0f} s._", ""]
    return "\n".join(out)


def write_report(path: Path, text: str) -> None:
    """Write the report atomically, so a failed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def command_line() -> str:
    """How this run was started, for the report."""
    args = " ".join(sys.argv[1:])
    return f"python -m bench {args}".strip()
