"""`monitor demo`: the whole pipeline offline, against the bundled sample site."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli
from monitor.sitegen import load_demo_articles

ROOT = Path(__file__).resolve().parent.parent


def test_demo_matches_exactly_the_relevant_articles_and_leaves_a_digest(tmp_path: Path) -> None:
    # the shipped watchlist alone: the user's own files in watchlists/ (the quick start's
    # my-subject.toml) change what the demo matches, and must not fail the suite
    (tmp_path / "watchlists").mkdir()
    shutil.copy(ROOT / "watchlists" / "met-police.toml", tmp_path / "watchlists")
    config = tmp_path / "config.toml"
    config.write_text(
        '[monitor]\nwatchlists = "watchlists"\ndigests = "out"\ndatabase = "mine.db"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "demo"])
    assert result.exit_code == 0, result.output
    matched, missed = result.output.split("not matched")
    articles = [a for arts in load_demo_articles(datetime.now(UTC)).values() for a in arts]
    for article in articles:
        if article.met_police:
            assert article.title in matched, article.title
        else:
            assert article.title in missed and article.title not in matched, article.title
    digest = next((tmp_path / "out").glob("*_demo.html"))
    html = digest.read_text(encoding="utf-8")
    assert "8 new hits" in html and "Croydon sergeant" in html
    assert "Met Gala" not in html and "Amber warning" not in html
    assert (tmp_path / "out" / "index.html").exists()
    assert not (tmp_path / "mine.db").exists(), "the demo leaves the user's database alone"
