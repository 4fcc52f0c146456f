"""Whether a page's text is the article its feed entry announced, or a wall in front of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.stories import ANNOUNCED_SHARE, holds_announced, text_features

DATA = Path(__file__).resolve().parent / "data"
# every article of the test data: first line its title, then its text
ARTICLES = sorted(
    path
    for folder in ("relevant", "distractors", "stories")
    for path in (DATA / folder).glob("*.txt")
)
COOKIE_WALL = (
    "Before you continue. We use cookies and data to deliver and maintain our services, track"
    " outages and protect against spam, fraud and abuse, and measure audience engagement and site"
    " statistics to understand how our services are used and enhance the quality of those"
    " services. If you choose to Accept all, we will also use cookies and data to develop and"
    " improve new services, deliver and measure the effectiveness of ads, and show personalised"
    " content, depending on your settings. Select More options to see additional information,"
    " including details about managing your privacy settings. You can also visit our privacy"
    " centre at any time. Accept all. Reject all. More options."
)
TITLE = "Met officers sacked over racist WhatsApp messages, watchdog finds"
SUMMARY = "The IOPC said three Metropolitan Police constables shared offensive messages."


def test_there_are_enough_articles_to_tell() -> None:
    assert len(ARTICLES) >= 50


@pytest.mark.parametrize("path", ARTICLES, ids=lambda p: p.name)
def test_every_real_article_holds_what_its_entry_announced(path: Path) -> None:
    title, _, text = path.read_text(encoding="utf-8").partition("\n")
    lede = text.strip().split("\n")[0]  # what a feed's summary usually is
    assert holds_announced(text_features(text), title, lede)
    # with a summary that says nothing of it, the headline alone still lets it through
    assert holds_announced(text_features(text), title, "Read the latest from our newsroom today.")


def test_a_cookie_wall_is_not_the_article() -> None:
    assert not holds_announced(text_features(COOKIE_WALL), TITLE, SUMMARY)


def test_a_page_holding_a_fifth_of_the_headline_is_the_article() -> None:
    title = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"
    held = " ".join(title.split()[: int(10 * ANNOUNCED_SHARE)])
    short = " ".join(title.split()[: int(10 * ANNOUNCED_SHARE) - 1])
    summary = "kilo lima mike november oscar"
    assert holds_announced(text_features(f"{COOKIE_WALL} {held}"), title, summary)
    assert not holds_announced(text_features(f"{COOKIE_WALL} {short}"), title, summary)


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Met Gala", SUMMARY),  # a headline of two content words cannot tell
        (TITLE, ""),  # no summary: a headline alone never decides against a page
        (TITLE, "Watch the video."),
    ],
)
def test_too_few_words_to_tell_keep_the_page(title: str, summary: str) -> None:
    assert holds_announced(text_features(COOKIE_WALL), title, summary)
