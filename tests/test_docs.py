"""The README's config reference and the code's config schema list the same keys."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.config import FEED_KEYS, SCHEMA, TOP_LEVEL

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| `(\[\[?\w+\]\]?) (\w+)` \| (.+?) \| (.+?) \|$")


def readme_keys() -> dict[str, str]:
    """`[section] key` -> default column, from the README's configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    keys = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            keys[f"{m[1]} {m[2]}"] = m[3]
        elif line.startswith("| `") and not line.startswith("| `[") and "|" in line[2:]:
            keys[line.split("`")[1]] = line.split("|")[2].strip()
    return keys


def code_keys() -> set[str]:
    keys = {f"[{section}] {k.name}" for section, ks in SCHEMA.items() for k in ks}
    keys |= {f"[[feeds]] {k.name}" for k in FEED_KEYS}
    keys |= {k for k in TOP_LEVEL if k not in SCHEMA and k != "feeds"}
    return keys


def test_every_config_key_is_in_the_readme_and_nothing_else() -> None:
    documented, code = set(readme_keys()), code_keys()
    assert code - documented == set(), "keys missing from README.md's configuration reference"
    assert documented - code == set(), "README.md documents keys the code does not know"


def test_readme_defaults_match_the_code() -> None:
    documented = readme_keys()
    for section, keys in SCHEMA.items():
        for key in keys:
            shown = documented[f"[{section}] {key.name}"]
            if key.default is None:
                assert shown == "(required)", key.name
            elif isinstance(key.default, bool):
                assert shown == f"`{str(key.default).lower()}`", key.name
            elif isinstance(key.default, str):
                assert shown == f'`"{key.default}"`', key.name
            elif isinstance(key.default, list):
                assert shown == "`[]`", key.name
            else:
                assert shown == f"`{key.default}`", key.name


def test_shipped_config_uses_the_documented_defaults_or_says_why(tmp_path: Path) -> None:
    # the shipped config.toml is the user's starting point: every key it sets must be known
    from monitor.config import load_settings
    from tests.test_config import shipped_config

    settings = load_settings(shipped_config(tmp_path))
    assert settings.fetch.allow_private_networks is False


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:400]
    assert "make run" in head and "make test" in head


def test_make_run_takes_monitor_config_and_config(tmp_path: Path) -> None:
    """`make run` uses MONITOR_CONFIG as every command does, and CONFIG=... over it."""
    import os
    import subprocess

    def command(*args: str, **env: str) -> str:
        outer = ("MONITOR_CONFIG", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")  # make test's own
        environ = {k: v for k, v in os.environ.items() if k not in outer} | env
        done = subprocess.run(
            ["make", "-n", "--no-print-directory", "-C", str(ROOT), "run", *args],
            capture_output=True,
            text=True,
            env=environ,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    assert command().endswith("monitor --config config.toml run")
    assert command(MONITOR_CONFIG="/srv/m.toml").endswith("monitor --config /srv/m.toml run")
    assert command("CONFIG=b.toml", MONITOR_CONFIG="/srv/m.toml").endswith("--config b.toml run")
