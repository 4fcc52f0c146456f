"""config.toml -> Settings: defaults, units, and FILE:LINE errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigErrors
from monitor.tomlpos import loads_toml

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_loads() -> None:
    settings = load_settings(ROOT / "config.toml")
    assert settings.feeds, "the shipped config lists feeds"
    assert settings.digest.at == time(7, 0)
    assert settings.fetch.max_bytes == 10_000_000
    assert settings.email is None


def test_empty_config_gets_defaults_relative_to_its_folder(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.monitor.database == tmp_path / "monitor.db"
    assert settings.monitor.poll_interval == 900
    assert settings.fetch.timeout == 20
    assert settings.fetch.allow_private_networks is False
    assert settings.feeds == ()


def test_units_and_feeds(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
[monitor]
poll_interval = "2h"
[fetch]
max_bytes = "512KiB"
timeout = "30s"
allow_addresses = ["10.1.2.3", "192.168.7.0/24"]
[[feeds]]
name = "A"
url = "https://a.example/rss"
interval = "1d"
[[feeds]]
name = "B"
url = "https://b.example/rss"
""",
        )
    )
    assert settings.fetch.max_bytes == 512 * 1024
    assert [str(n) for n in settings.fetch.allow_addresses] == ["10.1.2.3/32", "192.168.7.0/24"]
    assert [(f.name, f.interval) for f in settings.feeds] == [("A", 86400), ("B", 7200)]


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """[monitor]
databse = "x.db"
[fetch]
concurrency = "32"
[[feeds]]
name = "A"
url = "ftp://a"
""",
    )
    with pytest.raises(ConfigErrors) as info:
        load_settings(path)
    lines = str(info.value).splitlines()
    assert lines[0].endswith(
        "config.toml:2: unknown key 'databse' in [monitor]; did you mean 'database'?"
    )
    assert any(":4: concurrency: expected an integer" in line for line in lines)
    assert any(":7: url: 'ftp://a' is not an http or https URL" in line for line in lines)


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[monitor]\ndatabase = \n")
    with pytest.raises(ConfigErrors) as info:
        load_settings(path)
    assert ":2:12: TOML syntax error" in str(info.value)


def test_duplicate_feed_names_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[feeds]]\nname = "A"\nurl = "http://a"\n[[feeds]]\nname = "A"\nurl = "http://b"\n',
    )
    with pytest.raises(ConfigErrors, match=r":5: feed name 'A' is used twice \(first at .*:2\)"):
        load_settings(path)


def test_email_section_needs_sender_and_recipients(tmp_path: Path) -> None:
    path = write(tmp_path, '[email]\nsmtp_host = "mail"\n')
    with pytest.raises(ConfigErrors) as info:
        load_settings(path)
    assert "needs 'from'" in str(info.value)
    assert "needs 'to'" in str(info.value)


def test_opml_feeds(tmp_path: Path) -> None:
    (tmp_path / "feeds.opml").write_text(
        """<?xml version="1.0"?><opml version="2.0"><body>
<outline text="News"><outline text="Met" title="Met feed" xmlUrl="https://x.example/met.xml"/>
</outline></body></opml>""",
        encoding="utf-8",
    )
    settings = load_settings(write(tmp_path, 'opml = "feeds.opml"\n'))
    assert [(f.name, f.url) for f in settings.feeds] == [("Met feed", "https://x.example/met.xml")]


def test_the_opml_reader_is_imported_only_for_a_config_that_names_a_file(
    tmp_path: Path,
) -> None:
    """Every command reads the config; only one with `opml = ...` pays for the XML parser."""
    (tmp_path / "feeds.opml").write_text(
        '<opml version="2.0"><body><outline xmlUrl="https://x.example/a.xml"/></body></opml>',
        encoding="utf-8",
    )
    listed = write(tmp_path, '[[feeds]]\nname = "A"\nurl = "https://x.example/a.xml"\n')
    named = write(tmp_path, 'opml = "feeds.opml"\n', "named.toml")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from monitor.config import load_settings\n"
        "feeds = load_settings(Path(sys.argv[1])).feeds\n"
        "print(len(feeds), *(m for m in ('monitor.opml', 'xml.etree.ElementTree')"
        " if m in sys.modules))\n"
    )

    def imported(config: Path) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, str(config)], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert imported(listed) == "1"
    assert imported(named) == "1 monitor.opml xml.etree.ElementTree"


def test_a_file_is_lexed_for_positions_only_when_one_is_asked_for() -> None:
    """Finding where every key and value is costs as much as parsing the file, and a file with
    nothing wrong in it never needs it; the first question finds them all, correctly."""
    source = 'a = 1\n[t]\nb = "x\\u00e9y"\n[[f]]\nc = 2\n[[f]]\nc = 3\n'
    data, positions = loads_toml(source, "f.toml")
    assert data == {"a": 1, "t": {"b": "x\u00e9y"}, "f": [{"c": 2}, {"c": 3}]}
    assert "_found" not in vars(positions)
    assert str(positions.location(("f", 1, "c"))) == "f.toml:7"
    assert "_found" in vars(positions)
    assert str(positions.location(("t",), key=True)) == "f.toml:2"
    assert str(positions.location_in_string(("t", "b"), 2)) == "f.toml:3:13"  # after the escape
