"""docs/hazards.md stays true: the tests it cites exist, its `run by` column agrees with their
slow markers, its counts agree with its tables and its figures with the tests' constants.

The doc holds one table per section of the hazard list, under the list's own headings, with
the columns case | behaviour shown | tests | run by. A case without a test says `none` in its
tests cell and why ("**No test**") in its behaviour; a case whose cited test is an expected
failure says "**Known gap**".
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.test_hazards_crash import QUICK_RUNS, SLOW_RUNS
from tests.test_hazards_soak import CHECKPOINT, CYCLES, FAULTY, FEEDS, RSS_SLACK

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "hazards.md"
# the sections of the hazard list, in its order and spelling
SECTIONS = (
    "Fetching (untrusted URLs)",
    "Parsing and extraction",
    "Watchlists and config",
    "Mail",
    "Process, storage and time",
)
HEADER = ["case", "behaviour shown", "tests", "run by"]
# `tests/test_x.py::name`, `tests/test_x.py::Class::name`, `tests/test_x.py::name[id]`
CITED = re.compile(r"^`(tests/[\w/]+\.py)::(\w+(?:::\w+)?)(?:\[[^\]`]*\])?`$")
TARGETS = {"`make test`": False, "`make hazards`": True}  # target -> runs the slow tests
NO_TEST = "**No test**"
KNOWN_GAP = "**Known gap**"
SOAK_LINE = f"soak RSS at cycle {CHECKPOINT} / {CYCLES}:"


@dataclass(frozen=True)
class Row:
    section: str
    case: str
    behaviour: str
    tests: str  # the cell as written
    run_by: str

    @property
    def cited(self) -> list[str]:
        return [] if self.tests == "none" else [t.strip() for t in self.tests.split("<br>")]

    def where(self) -> str:
        return f"{self.section}: row {self.case!r}"


@dataclass(frozen=True)
class Marked:
    slow: bool
    xfail: bool


def doc_sections() -> dict[str, str]:
    """Heading (without the `## `) -> the text under it, in the doc's order."""
    text = DOC.read_text(encoding="utf-8")
    sections = {}
    for chunk in text.split("\n## ")[1:]:
        heading, _, body = chunk.partition("\n")
        sections[heading.strip()] = body
    return sections


def table(body: str) -> list[list[str]]:
    """The cells of each row of the first table in body, header and rule left out."""
    lines = [line for line in body.splitlines() if line.startswith("|")]
    return [split_cells(line) for line in lines[2:]]


def split_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def hazard_rows() -> list[Row]:
    sections = doc_sections()
    rows = []
    for section in SECTIONS:
        for cells in table(sections.get(section, "")):
            assert len(cells) == len(HEADER), f"{section}: a row without 4 cells: {cells}"
            rows.append(Row(section, *cells))
    return rows


def figures() -> dict[str, str]:
    """Figure label -> value, from the Figures table."""
    return {label: value for label, value in table(doc_sections()["Figures"])}


def marks_of(decorators: list[ast.expr]) -> set[str]:
    """Names of the pytest marks among decorators (or a pytestmark value's items)."""
    found = set()
    for node in decorators:
        if isinstance(node, ast.Call):
            node = node.func
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "mark"
        ):
            found.add(node.attr)
    return found


def pytestmark_of(body: list[ast.stmt]) -> set[str]:
    """Marks set by a `pytestmark = ...` statement in a module or class body."""
    for node in body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            value = node.value
            items = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
            return marks_of(items)
    return set()


@cache
def functions_of(path: str) -> dict[str, Marked]:
    """`name` or `Class::name` -> its marks, for every test function of a test module."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found: dict[str, Marked] = {}

    def collect(body: list[ast.stmt], prefix: str, inherited: set[str]) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                collect(node.body, f"{prefix}{node.name}::", inherited | pytestmark_of(node.body))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                marks = inherited | marks_of(node.decorator_list)
                if node.name.startswith("test"):
                    found[prefix + node.name] = Marked("slow" in marks, "xfail" in marks)

    collect(tree.body, "", pytestmark_of(tree.body))
    return found


def cited_test(reference: str) -> tuple[str, str]:
    """(path, name) of a `tests/x.py::name` reference, or an AssertionError saying why not."""
    m = CITED.match(reference)
    if not m:
        raise AssertionError(f"not a `tests/file.py::test_name` reference: {reference}")
    path, name = m[1], m[2]
    if not (ROOT / path).is_file():
        raise AssertionError(f"{path} does not exist")
    if name not in functions_of(path):
        raise AssertionError(f"{path} has no test function {name}")
    return path, name


def cited_marks(row: Row) -> list[Marked]:
    """The marks of each test a row cites; an AssertionError naming the row if one is stale."""
    try:
        return [functions_of(path)[name] for path, name in map(cited_test, row.cited)]
    except AssertionError as why:
        raise AssertionError(f"{row.where()}: {why}") from None


def number(value: str) -> float:
    """A figure as written: `1,000`, `5%`, `20 MiB`."""
    value = value.replace(",", "").strip()
    if value.endswith("%"):
        return float(value[:-1]) / 100
    if value.endswith(" MiB"):
        return float(value[: -len(" MiB")]) * 1024 * 1024
    return float(value)


# -- the tables -------------------------------------------------------------------------------


def test_every_section_of_the_hazard_list_has_its_table() -> None:
    sections = doc_sections()
    headings = [h for h in sections if h in SECTIONS]
    assert headings == list(SECTIONS), f"sections missing or out of order: {headings}"
    for section in SECTIONS:
        lines = [line for line in sections[section].splitlines() if line.startswith("|")]
        assert lines, f"{section}: no table"
        assert split_cells(lines[0]) == HEADER, f"{section}: columns are not {HEADER}"
        assert table(sections[section]), f"{section}: the table has no row"
    rows = hazard_rows()
    cases = [(r.section, r.case) for r in rows]
    assert len(cases) == len(set(cases)), "a case appears twice in one section"


def test_every_cited_test_exists() -> None:
    stale = []
    for row in hazard_rows():
        for reference in row.cited:
            try:
                cited_test(reference)
            except AssertionError as why:
                stale.append(f"{row.where()}: {why}")
    assert stale == [], "\n".join(stale)


def test_run_by_agrees_with_the_slow_markers() -> None:
    wrong = []
    for row in hazard_rows():
        if not row.cited:
            continue
        written = [t.strip() for t in row.run_by.split("<br>")]
        unknown = [t for t in written if t not in TARGETS]
        assert unknown == [], f"{row.where()}: unknown `run by` {unknown}"
        slow = {marked.slow for marked in cited_marks(row)}
        expected = [target for target, runs_slow in TARGETS.items() if runs_slow in slow]
        if written != expected:
            wrong.append(f"{row.where()}: run by {written}, its tests say {expected}")
    assert wrong == [], "\n".join(wrong)


def test_a_case_without_a_test_says_so_and_why() -> None:
    for row in hazard_rows():
        if row.tests == "none":
            assert NO_TEST in row.behaviour, f"{row.where()}: `none` without '{NO_TEST}: why'"
            assert row.run_by == "—", f"{row.where()}: no test, yet run by {row.run_by}"
        else:
            assert row.cited, f"{row.where()}: an empty tests cell; write `none`"
            assert NO_TEST not in row.behaviour, f"{row.where()}: says '{NO_TEST}' but cites"


def test_known_gaps_are_exactly_the_rows_citing_an_expected_failure() -> None:
    for row in hazard_rows():
        if any(marked.xfail for marked in cited_marks(row)):
            assert KNOWN_GAP in row.behaviour, f"{row.where()}: cites an xfail test"
        else:
            assert KNOWN_GAP not in row.behaviour, f"{row.where()}: no xfail test cited"


# -- the figures ------------------------------------------------------------------------------


def test_case_counts_are_the_rows_of_the_tables() -> None:
    rows = hazard_rows()
    stated = figures()
    tested = [r for r in rows if r.cited]
    gaps = [r for r in rows if KNOWN_GAP in r.behaviour]
    assert number(stated["cases"]) == len(rows), f"figure 'cases': the tables have {len(rows)}"
    assert number(stated["cases with a test"]) == len(tested), (
        f"figure 'cases with a test': {len(tested)} rows cite tests"
    )
    label = "cases whose test is an expected failure (known gaps)"
    assert number(stated[label]) == len(gaps), f"figure '{label}': {len(gaps)} rows"


def test_crash_and_soak_figures_are_the_tests_constants() -> None:
    constants: dict[str, float] = {
        "QUICK_RUNS": QUICK_RUNS,
        "SLOW_RUNS": SLOW_RUNS,
        "FEEDS": FEEDS,
        "FAULTY": FAULTY,
        "CYCLES": CYCLES,
        "CHECKPOINT": CHECKPOINT,
        "RSS_SLACK": RSS_SLACK,
    }
    stated = {}
    for label, value in figures().items():
        m = re.search(r"\(`(\w+)`\)", label)
        if m:
            stated[m[1]] = (label, value)
    assert set(stated) == set(constants), f"figures name {sorted(stated)}"
    for name, actual in constants.items():
        label, value = stated[name]
        assert abs(number(value) - actual) < 1e-9, (
            f"figure {label!r} says {value}, {name} is {actual}"
        )


def test_the_soak_result_has_its_line() -> None:
    # the figures come from a run, filled in by hand: only the line itself is checked
    lines = doc_sections()["Figures"].splitlines()
    assert any(line.startswith(SOAK_LINE) for line in lines), f"no line '{SOAK_LINE} ...'"
