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


def shipped_config(tmp_path: Path) -> Path:
    """config.toml as the project ships it (as committed), copied into tmp_path.

    The working copy is the user's: the quick start has them add [email] or allow a test site
    on loopback, and `make test` must not fail for that. Outside a git checkout (a source
    archive) the file is as shipped.
    """
    command = ["git", "-C", str(ROOT), "show", "HEAD:config.toml"]
    try:
        done = subprocess.run(command, capture_output=True, encoding="utf-8", check=True)
        text = done.stdout
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout
        text = (ROOT / "config.toml").read_text(encoding="utf-8")
    return write(tmp_path, text)


def test_shipped_config_loads(tmp_path: Path) -> None:
    settings = load_settings(shipped_config(tmp_path))
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


@pytest.mark.parametrize(("written", "size"), [("1KB", 1000), ("1KiB", 1024), ("1000B", 1000)])
def test_the_smallest_size_the_error_offers_is_accepted(
    tmp_path: Path, written: str, size: int
) -> None:
    # "use at least 1KB" once refused 1KB itself (1,000 bytes, below a floor of 1,024)
    settings = load_settings(write(tmp_path, f'[fetch]\nmax_bytes = "{written}"\n'))
    assert settings.fetch.max_bytes == size


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


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "[monitor]\npoll_interval = 15m\n",
            ":2:19: TOML syntax error: expected newline or end of document after a statement;"
            ' text needs quotes: "15m"',
        ),
        (
            "[digest]\nat = 7am   # before work\n",
            ":2:7: TOML syntax error: expected newline or end of document after a statement;"
            ' text needs quotes: "7am"',
        ),
        (
            "[monitor]\ntimezone = Europe/London\n",
            ':2:12: TOML syntax error: invalid value; text needs quotes: "Europe/London"',
        ),
        (
            '[fetch]\nallow_addresses = ["10.0.0.1", localhost]\n',
            ':2:32: TOML syntax error: invalid value; text needs quotes: "localhost"',
        ),
        (
            '[fetch]\nallow_addresses = [\n  "10.0.0.1",\n  my host,\n]\n',
            ':4:3: TOML syntax error: invalid value; text needs quotes: "my host"',
        ),
        # not a value missing its quotes: no hint
        ("[monitor]\ndatabase = \n", ":2:12: TOML syntax error: invalid value"),
        (
            '[monitor]\ndatabase = "a"b"\n',
            ":2:15: TOML syntax error: expected newline or end of document after a statement",
        ),
        (
            "[monitor]\ndatabase monitor.db\n",
            ":2:10: TOML syntax error: expected '=' after a key in a key/value pair",
        ),
    ],
)
def test_a_value_written_without_quotes_is_told_to_quote_it(
    tmp_path: Path, text: str, error: str
) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_settings(write(tmp_path, text))
    assert str(info.value).endswith(error)


def test_a_feed_url_without_its_scheme_says_what_to_write(tmp_path: Path) -> None:
    path = write(tmp_path, '[[feeds]]\nname = "BBC UK"\nurl = "feeds.bbci.co.uk/news/uk/rss.xml"\n')
    with pytest.raises(ConfigErrors) as info:
        load_settings(path)
    assert str(info.value).endswith(
        ":3: url: 'feeds.bbci.co.uk/news/uk/rss.xml' has no scheme;"
        " write it as 'https://feeds.bbci.co.uk/news/uk/rss.xml'"
    )


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
        "print(len(feeds), *(m for m in ('monitor.opml',)"
        " if m in sys.modules))\n"
    )

    def imported(config: Path) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, str(config)], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert imported(listed) == "1"
    assert imported(named) == "1 monitor.opml"


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[fetch]\nconcurrency = 0\n",
            "config.toml:2: concurrency: must be between 1 and 512, got 0",
        ),
        (
            "[fetch]\nper_host = true\n",
            "config.toml:2: per_host: expected an integer, got bool True",
        ),
        ('[fetch]\ntimeout = "0s"\n', "config.toml:2: timeout: must be longer than zero"),
        (
            '[fetch]\nmax_bytes = "100"\n',
            "config.toml:2: max_bytes: '100' is too small; use at least 1KB",
        ),
        (
            '[fetch]\nmax_bytes = "999B"\n',
            "config.toml:2: max_bytes: '999B' is too small; use at least 1KB",
        ),
        (
            '[fetch]\nallow_addresses = ["10.0.0.300"]\n',
            "config.toml:2: allow_addresses: '10.0.0.300' is not an IP address or network",
        ),
        (
            '[monitor]\ntimezone = "../etc/passwd"\n',
            "config.toml:2: timezone: unknown time zone '../etc/passwd';"
            " use a name like 'Europe/London'",
        ),
        (
            '[digest]\nat = "25:00"\n',
            "config.toml:2: at: '25:00' is not a time of day; write it as HH:MM, e.g. '07:00'",
        ),
        (
            '[email]\nfrom = "a@b.org"\nto = []\n',
            "config.toml:3: to: needs at least one address",
        ),
        (
            '[email]\nfrom = "a@b.org"\nto = ["d@b.org"]\npassword_env = "Hunter2-secret!"\n',
            "config.toml:4: password_env: is not an environment variable name (letters, digits"
            " and _); name the variable that holds the password, and never write the password"
            " in this file",
        ),
        ("fetch = 3\n", "config.toml:1: [fetch] must be a table"),
        ("feed = []\n", "config.toml:1: unknown section or key 'feed'; did you mean 'feeds'?"),
        ('feeds = "x"\n', "config.toml:1: feeds must be written as [[feeds]] tables"),
        # a feed that is not a table is said to be so, not also to lack a name and a URL
        ("feeds = [1]\n", "config.toml:1: [[feeds]] number 1 must be a table"),
    ],
)
def test_each_bad_value_is_one_line_at_its_place(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_settings(write(tmp_path, text))
    assert [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors] == [expected]


def opml_problems(tmp_path: Path, opml: str) -> list[str]:
    (tmp_path / "feeds.opml").write_text(opml, encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        load_settings(write(tmp_path, 'opml = "feeds.opml"\n[monitor]\npoll_interval = "1h"\n'))
    return [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors]


def test_an_opml_file_that_is_not_xml_is_shown_at_its_own_line_and_column(
    tmp_path: Path,
) -> None:
    text = '<?xml version="1.0"?>\n<opml version="2.0"><body>\n  <outline text="A" xmlUrl=/>\n'
    assert opml_problems(tmp_path, text) == [
        "feeds.opml:3:28: not valid OPML: not well-formed (invalid token)"
    ]


def test_every_bad_outline_of_an_opml_file_is_named(tmp_path: Path) -> None:
    text = """<?xml version="1.0"?><opml version="2.0"><body>
<outline text="Good" xmlUrl="https://good.example/rss"/>
<outline text="Ftp" xmlUrl="ftp://files.example/rss"/>
<outline title="Mail" xmlUrl="mailto:desk@example.org"/>
</body></opml>"""
    assert opml_problems(tmp_path, text) == [
        "feeds.opml:3: outline 'Ftp': 'ftp://files.example/rss' is not an http or https URL",
        "feeds.opml:4: outline 'Mail': 'mailto:desk@example.org' is not an http or https URL",
    ]


def test_a_name_used_twice_in_an_opml_file_is_shown_at_both_outlines(tmp_path: Path) -> None:
    text = """<?xml version="1.0"?><opml version="2.0"><body>
<outline text="News" xmlUrl="https://a.example/rss"/>

<outline text="News" xmlUrl="https://b.example/rss"/>
</body></opml>"""
    assert opml_problems(tmp_path, text) == [
        "feeds.opml:4: feed name 'News' is used twice (first at feeds.opml:2)"
    ]


def test_an_opml_name_taken_by_a_feeds_table_is_shown_at_the_outline(tmp_path: Path) -> None:
    (tmp_path / "feeds.opml").write_text(
        '<opml version="2.0"><body>\n<outline text="A" xmlUrl="https://b.example/rss"/>\n'
        "</body></opml>",
        encoding="utf-8",
    )
    config = 'opml = "feeds.opml"\n[[feeds]]\nname = "A"\nurl = "https://a.example/rss"\n'
    with pytest.raises(ConfigErrors) as info:
        load_settings(write(tmp_path, config))
    assert [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors] == [
        "feeds.opml:2: feed name 'A' is used twice (first at config.toml:3)"
    ]


def test_opml_outlines_with_blank_names_or_a_namespace_prefix_are_read(tmp_path: Path) -> None:
    """A blank title gives way to the text, a blank text to the URL; `o:outline` is an outline."""
    (tmp_path / "feeds.opml").write_text(
        """<?xml version="1.0"?>
<o:opml xmlns:o="http://opml.org/spec2" version="2.0"><o:body>
<o:outline title=" " text="Met" xmlUrl="https://a.example/met.xml"/>
<o:outline title="" text="  " xmlUrl=" https://b.example/rss "/>
</o:body></o:opml>""",
        encoding="utf-8",
    )
    settings = load_settings(write(tmp_path, 'opml = "feeds.opml"\n'))
    assert [(f.name, f.url) for f in settings.feeds] == [
        ("Met", "https://a.example/met.xml"),
        ("https://b.example/rss", "https://b.example/rss"),
    ]


def test_a_missing_opml_file_is_named_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_settings(write(tmp_path, 'opml = "nope.opml"\n'))
    [problem] = [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors]
    assert problem == "config.toml:1: opml: cannot read nope.opml: No such file or directory"


def test_a_feed_url_with_a_user_name_or_password_is_an_error_that_does_not_show_it(
    tmp_path: Path,
) -> None:
    """Every poll refused it ('URL carries a user name or password') while check said ok."""
    path = write(
        tmp_path, '[[feeds]]\nname = "Desk"\nurl = "https://desk:s3cret@news.example/rss"\n'
    )
    with pytest.raises(ConfigErrors) as info:
        load_settings(path)
    message = str(info.value)
    assert message.endswith(
        ":3: url: the URL carries a user name or password (user@host), which is never sent: a"
        " feed behind a login cannot be polled"
    )
    assert "s3cret" not in message
    load_settings(write(tmp_path, '[[feeds]]\nname = "A"\nurl = "https://news.example/a@b?x=@"\n'))
