"""The digest and alert renderer: golden text, escaping, cleaning, links, charts, templates.

Golden files live in tests/golden/; regenerate them after a deliberate change with
MONITOR_UPDATE_GOLDEN=1 pytest tests/test_digest.py, then read the diff before committing.
"""

from __future__ import annotations

import os
import re
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.digest import (
    AlertData,
    DigestData,
    FeedHealth,
    StoryEntry,
    WatchlistSection,
    check_templates,
    count_per_day,
    group_stories,
    render_alert,
    render_digest,
    sample_alert,
    sample_digest,
)
from monitor.digest_view import (
    DayView,
    FeedView,
    OtherView,
    Part,
    SectionView,
    StoryView,
    alert_context,
    clean_text,
    digest_context,
    format_moment,
    safe_url,
    snippet_parts,
)
from monitor.models import Article, Hit, Snippet

GOLDEN = Path(__file__).parent / "golden"
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
INVISIBLE = "\u202e\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c\x00\x07\x1b\x7f\x85\ufeff"


# paragraphs of the fixture articles (/work/shared/fixtures is not shipped with the repository)
IOPC_PARAGRAPH = (
    "The IOPC said the messages were often defended as “banter”, which “became a cover for"
    " bullying and harassment”."
)
VINTEN_PARAGRAPH = (
    "A former Met Police officer has said she witnessed her male colleagues share “revenge porn”"
    " while at work. Alice Vinten, who spent 11 years in the Met, said she saw fellow officers"
    " share pictures that had been sent in confidence by their girlfriends, who were often also"
    " in the police force."
)
CASEY_PARAGRAPH = (
    "Female officers and staff routinely face sexism and misogyny. The Met has not protected its"
    " female employees or members of the public from police perpetrators of domestic abuse, nor"
    " those who abuse their position for sexual purposes.”"
)


def snippet_of(text: str, *words: str) -> Snippet:
    """A snippet with each word's first whole occurrence marked."""
    marks = []
    for word in words:
        m = re.search(rf"\b{re.escape(word)}\b", text)
        assert m, f"{word!r} not in {text!r}"
        marks.append(m.span())
    return Snippet(text, tuple(sorted(marks)))


def make_hit(
    n: int,
    *,
    title: str = "Met officers' messages defended as banter, IOPC finds",
    url: str | None = None,
    feed: str = "Wire",
    published: datetime | None = NOW - timedelta(hours=10),
    full_text: bool = True,
    story: int | None = None,
    snippet: Snippet | None = None,
    matched: tuple[str, ...] = ("IOPC",),
    watchlist: str = "Met Police",
    source: str = "",
    summary: str = "summary",
) -> Hit:
    article = Article(
        id=n,
        url=url if url is not None else f"https://news.example/uk/{n}",
        guid=None,
        feed=feed,
        title=title,
        summary=summary,
        text="text",
        full_text=full_text,
        published=published,
        first_seen=(published or NOW) + timedelta(minutes=5),
        story=story,
        source=source,
    )
    snip = snippet or Snippet("The IOPC said so.", ((4, 8),))
    return Hit(n, watchlist, article, matched, snip, article.first_seen)


def digest_of(*sections: WatchlistSection, **changes: object) -> DigestData:
    data = DigestData(
        generated_at=NOW,
        window_start=NOW - timedelta(days=1),
        window_end=NOW,
        timezone=LONDON,
        sections=sections,
        feed_health=(),
        failed_polls=0,
        not_extracted=0,
        recipient="desk@example.org",
    )
    return replace(data, **changes)  # type: ignore[arg-type]


def golden_data() -> DigestData:
    """A fixed digest built from the fixture articles: two watchlists, one syndicated story."""
    iopc, vinten, casey = IOPC_PARAGRAPH, VINTEN_PARAGRAPH, CASEY_PARAGRAPH
    banter = make_hit(
        1,
        title="Met officers' messages defended as 'banter', IOPC finds",
        feed="Press Association",
        story=7,
        snippet=snippet_of(iopc, "IOPC", "banter"),
        matched=("IOPC",),
    )
    copy = make_hit(
        2,
        title="Met officers joked about rape and called it banter",
        feed="Evening Paper",
        published=NOW - timedelta(hours=8),
        full_text=False,
        story=7,
    )
    vinten_hit = make_hit(
        3,
        title="Former officer says colleagues shared 'revenge porn' at work",
        feed="Regional Daily",
        published=None,
        story=8,
        snippet=snippet_of(vinten, "Met", "officers"),
        matched=("Met NEAR/12 (police OR officer*)",),
    )
    casey_hit = make_hit(
        4,
        title="The Met is just the tip of the iceberg",
        url="ftp://opinion.example/casey",
        feed="Opinion Weekly",
        published=datetime(2026, 11, 21, 23, 30, tzinfo=UTC),
        snippet=snippet_of(casey, "Met"),
        matched=('"Baroness Casey" OR "Louise Casey"',),
        watchlist="Casey review",
    )
    per_day = tuple(
        (date(2026, 11, 9) + timedelta(days=i), [0, 1, 3, 0, 2][i % 5]) for i in range(14)
    )
    met = WatchlistSection(
        "Met Police", group_stories([banter, copy, vinten_hit]), per_day, alerted=2
    )
    casey_section = WatchlistSection("Casey review", (StoryEntry(casey_hit),), per_day[:3])
    health = (
        FeedHealth(
            "Local Courier",
            "https://courier.example/rss",
            NOW - timedelta(days=3),
            "HTTP 503 from https://courier.example/rss",
            57,
        ),
        FeedHealth(
            "Fresh Fail", "https://fresh.example/rss", NOW - timedelta(hours=2), "timeout", 2
        ),
        FeedHealth(
            "Quiet Gazette", "https://gazette.example/feed", silent_since=NOW - timedelta(days=9)
        ),
    )
    return digest_of(met, casey_section, feed_health=health, failed_polls=4, not_extracted=1)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MONITOR_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with MONITOR_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def parse_html(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html)


# -- golden files ---------------------------------------------------------------------------------


def test_digest_text_matches_golden() -> None:
    check_golden("digest.txt", render_digest(golden_data()).text)


def test_alert_text_matches_golden() -> None:
    data = golden_data()
    alert = AlertData(NOW, LONDON, "Met Police", data.sections[0].stories, "desk@example.org")
    check_golden("alert.txt", render_alert(alert).text)


def test_empty_digest_matches_golden() -> None:
    rendered = render_digest(digest_of(window_start=None))
    assert rendered.subject == "monitor digest: Sunday 22 November 2026, no new hits"
    check_golden("digest-empty.txt", rendered.text)


# -- content ----------------------------------------------------------------------------------


def test_long_matched_queries_are_wrapped_in_the_text_part() -> None:
    # the shipped watchlist's queries run to 200 characters each, and a hit matches several
    queries = (
        '"metropolitan police"',
        "Met NEAR/12 (police OR policing OR officer* OR PC OR PCs OR PCSO* OR constable* OR"
        " sergeant* OR Sgt OR detective* OR DCI OR inspector* OR Insp)",
        "vetting NEAR/15 (police OR officer* OR constable* OR Met OR force)",
    )
    hit = make_hit(1, matched=queries)
    section = WatchlistSection("Met Police", (StoryEntry(hit),))
    digest = render_digest(digest_of(section)).text
    alert = render_alert(AlertData(NOW, LONDON, "Met Police", (StoryEntry(hit),), "d@e.org")).text
    for text in (digest, alert):
        block = text.split("  Matched: ", 1)[1].split("\n\n", 1)[0].splitlines()
        assert len(block) > 1 and all(len(line) <= 72 for line in block)
        assert all(line.startswith(" " * 11) for line in block[1:])
        assert " ".join(" · ".join(queries).split()) == " ".join(" ".join(block).split())


def test_pages_to_be_fetched_again_are_said_in_what_may_be_missing() -> None:
    section = WatchlistSection("Met Police", (StoryEntry(make_hit(1)),))
    later = render_digest(digest_of(section, not_extracted=3, to_fetch_again=2))
    never = render_digest(digest_of(section, not_extracted=3))
    said = "2 of them will be fetched again; a hit their text makes comes in a later digest."
    assert "Article pages that could not be read: 3." in later.text
    assert said in " ".join(later.text.split())
    assert said in parse_html(later.html).text_content()
    assert "fetched again" not in never.text and "fetched again" not in never.html


def test_subject_is_a_fixed_template_of_date_and_count() -> None:
    data = golden_data()
    rendered = render_digest(data)
    assert rendered.subject == "monitor digest: Sunday 22 November 2026, 4 new hits"
    one = render_digest(digest_of(WatchlistSection("Met Police", (StoryEntry(make_hit(1)),))))
    assert one.subject.endswith(", 1 new hit")


def test_subject_never_carries_web_text() -> None:
    hostile = make_hit(1, title="Breaking\r\nBcc: victim@example.org", feed="Evil\nFeed")
    rendered = render_digest(digest_of(WatchlistSection("Met", (StoryEntry(hostile),))))
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert "Bcc" not in rendered.subject and "Evil" not in rendered.subject


def test_html_shows_every_part_of_a_story() -> None:
    html = render_digest(golden_data()).html
    doc = parse_html(html)
    links = {a.text_content(): a.get("href") for a in doc.iter("a")}
    assert links["Met officers' messages defended as 'banter', IOPC finds"] == (
        "https://news.example/uk/1"
    )
    assert links["Evening Paper"] == "https://news.example/uk/2"  # the other outlet
    marks = [m.text_content() for m in doc.iter("mark")]
    assert marks == ["Met", "officers", "IOPC", "banter", "Met"]  # newest story first
    text = doc.text_content()
    assert "summary only" not in text.split("Met officers' messages")[1].split("Matched")[0]
    assert "Press Association · Sat 21 Nov 21:00" in text  # local time, Europe/London
    assert "Matched: IOPC" in text
    assert "Local Courier" in text and "57 failed polls" in text
    assert "Fresh Fail" not in text  # failing for two hours is not news yet
    assert "Quiet Gazette" in text and "no new items since" in text
    assert "Failed polls: 4." in text and "Article pages that could not be read: 1." in text


@pytest.mark.parametrize(("polls", "said"), [(0, "No feed was polled"), (12, "Nothing we know of")])
def test_a_window_without_polls_is_not_said_to_have_missed_nothing(polls: int, said: str) -> None:
    rendered = render_digest(digest_of(polls=polls))
    for text in (rendered.text, lxml.html.fromstring(rendered.html).text_content()):
        part = text.split("What this digest may have missed")[1]
        assert said in part
        assert ("every poll succeeded" in part) == (polls > 0)


def published_at(hit: Hit, published: datetime, first_seen: datetime = NOW) -> Hit:
    article = replace(hit.article, published=published, first_seen=first_seen)
    return replace(hit, article=article, first_seen=first_seen)


def test_a_stored_date_in_year_1_does_not_stop_the_digest() -> None:
    """Stored by a version that believed it: the reader's zone cannot hold it (it overflowed
    and no digest could be made), so it is shown in UTC, with its year."""
    hit = published_at(make_hit(1), datetime(1, 1, 1, tzinfo=UTC))
    rendered = render_digest(digest_of(WatchlistSection("Met Police", (StoryEntry(hit),))))
    assert "Wire, Mon 1 Jan 1 00:00" in rendered.text
    assert "Wire · Mon 1 Jan 1 00:00" in lxml.html.fromstring(rendered.html).text_content()


def test_an_article_published_long_before_it_came_shows_its_year() -> None:
    old = published_at(make_hit(1, title="Old"), NOW - timedelta(days=400))
    new = published_at(make_hit(2, title="New"), NOW - timedelta(days=3))
    text = render_digest(
        digest_of(WatchlistSection("Met Police", (StoryEntry(old), StoryEntry(new))))
    ).text
    old_line, new_line = (text.split(f"* {t}\n")[1].splitlines()[1] for t in ("Old", "New"))
    assert old_line == f"  Wire, {format_moment(NOW - timedelta(days=400), LONDON, year=True)}"
    assert f" {(NOW - timedelta(days=400)).year} " in old_line
    assert new_line == f"  Wire, {format_moment(NOW - timedelta(days=3), LONDON)}"  # no year


def test_lead_is_the_earliest_full_text_article_and_summary_only_is_flagged() -> None:
    early_summary = make_hit(1, published=NOW - timedelta(hours=9), full_text=False, story=3)
    late_full = make_hit(2, published=NOW - timedelta(hours=5), story=3, feed="Paper")
    alone = make_hit(3, published=NOW - timedelta(hours=1), full_text=False)
    stories = group_stories([early_summary, late_full, alone])
    assert [s.lead.id for s in stories] == [3, 2]  # newest story first
    assert [o.id for o in stories[1].others] == [1]
    text = render_digest(digest_of(WatchlistSection("Met", stories))).text
    first = text.split("* ")[1]
    assert "(summary only)" in first  # the lone story only had its feed summary


def test_an_article_a_feed_only_passes_on_is_shown_under_its_own_outlet() -> None:
    """A Google Alert names no outlet: the story is shown under the site it leads to, and the
    same story from the publisher's own feed under that feed's name."""
    alert = "Google Alert - Metropolitan Police"
    lead = make_hit(1, feed=alert, source="standard.co.uk", story=1)
    other = make_hit(2, feed=alert, source="The Guardian", story=1, published=NOW)
    own = make_hit(3, feed="Evening Paper", story=1, published=NOW - timedelta(hours=1))
    rendered = render_digest(digest_of(WatchlistSection("Met", group_stories([lead, other, own]))))
    text = parse_html(rendered.html).text_content()
    assert "standard.co.uk · " in text
    also = text.split("Also: ")[1].split("\n")[0]
    assert "The Guardian (" in also and "Evening Paper (" in also
    assert alert not in text and alert not in rendered.text
    assert "  standard.co.uk, " in rendered.text


def test_an_unread_page_whose_feed_gave_no_summary_is_flagged_headline_only() -> None:
    """A news sitemap gives headlines only: when such an article's page cannot be read, the
    digest says that only its headline was matched, not a summary there never was."""
    unread = make_hit(1, full_text=False, summary="")
    summarised = make_hit(2, full_text=False, published=NOW - timedelta(hours=2))
    rendered = render_digest(
        digest_of(WatchlistSection("Met", group_stories([unread, summarised])))
    )
    flags = [f.text_content() for f in parse_html(rendered.html).find_class("flag")]
    assert sorted(flags) == ["headline only", "summary only"]
    assert "(headline only)" in rendered.text and "(summary only)" in rendered.text


def test_publication_time_is_local_and_falls_back_to_first_seen() -> None:
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 July in London (BST)
    hit = make_hit(1, published=summer)
    unpublished = make_hit(2, published=None)
    section = WatchlistSection("Met", (StoryEntry(hit), StoryEntry(unpublished)))
    text = render_digest(digest_of(section)).text
    assert "Thu 2 Jul 00:30" in text
    first_seen = unpublished.article.first_seen.astimezone(LONDON)
    assert f"{first_seen:%H:%M}" in text.split("* ")[2]


def test_chart_has_one_column_per_day_and_bars_follow_counts() -> None:
    per_day = count_per_day([NOW - timedelta(days=d) for d in (0, 0, 0, 1, 3, 3, 20)], NOW, LONDON)
    assert len(per_day) == 14 and per_day[-1] == (date(2026, 11, 22), 3)
    assert sum(n for _, n in per_day) == 6  # the hit 20 days ago is outside the chart
    section = WatchlistSection("Met", (StoryEntry(make_hit(1)),), per_day)
    doc = parse_html(render_digest(digest_of(section)).html)
    chart = doc.find_class("chart")[0]
    columns = chart.find_class("col")
    assert len(columns) == 14
    heights = [
        int(c.find_class("bar")[0].get("height")) if c.find_class("bar") else 0 for c in columns
    ]
    counts = [n for _, n in per_day]
    assert heights.index(max(heights)) == counts.index(max(counts))
    assert all((h == 0) == (n == 0) for h, n in zip(heights, counts, strict=True))
    assert not doc.xpath("//img | //script | //svg")


def test_count_per_day_uses_local_days_across_a_clock_change() -> None:
    end = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # BST starts at 01:00 UTC that day
    late = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # still 28 March in London (GMT)
    after = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)  # 00:30 on 30 March (BST): outside
    counts = dict(count_per_day([late, after], end, LONDON, days=3))
    assert counts == {date(2026, 3, 27): 0, date(2026, 3, 28): 1, date(2026, 3, 29): 0}


def test_css_is_inlined_for_mail_clients() -> None:
    doc = parse_html(render_digest(golden_data()).html)
    assert not doc.xpath("//style | //link")
    mark = next(doc.iter("mark"))
    assert "background-color" in mark.get("style", "")
    page = doc.find_class("page")[0]
    assert page.get("width") == "600" and "max-width: 600px" in page.get("style", "")


# -- hostile input ----------------------------------------------------------------------------


HOSTILE_TITLE = '<script>alert(1)</script><img src=x onerror="alert(2)">Met "quote" & co'


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "https://www.bbc.co.uk@evil.example/",
        'https://news.example/"><script>alert(1)</script>',
        "//evil.example/no-scheme",
    ],
)
def test_hostile_story_never_reaches_the_html_live(url: str) -> None:
    lead = make_hit(1, title=HOSTILE_TITLE, url=url, feed='<b onmouseover="x()">Feed</b>')
    other = make_hit(2, title=HOSTILE_TITLE, url=url, feed="<svg onload=alert(3)>")
    hostile_snippet = Snippet(
        '<img src=x onerror=alert(4)> Met <a href="javascript:x">', ((29, 32),)
    )
    lead = replace(lead, snippet=hostile_snippet, matched=("<i onclick=y()>IOPC</i>",))
    section = WatchlistSection("<script>name</script>", (StoryEntry(lead, (other,)),))
    rendered = render_digest(digest_of(section))
    doc = parse_html(rendered.html)
    assert not doc.xpath("//script | //img | //svg | //iframe | //object")
    for element in doc.iter():
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            if name in ("href", "src", "action"):
                assert value.startswith(("https://", "http://", "#")), value
                assert "<" not in value and '"' not in value
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert url.strip() not in hrefs or url.startswith("https://news")
    assert HOSTILE_TITLE in doc.text_content()  # shown as text, exactly
    assert [m.text_content() for m in doc.iter("mark")] == ["Met"]


def test_the_other_articles_of_a_story_show_their_own_headlines() -> None:
    """Grouped under one story, an article with another headline says so: a wrong merge (two
    events on one story) must not hide the second event's headline. A copy under the same
    headline is not repeated."""
    lead = make_hit(1, title="Officer dismissed after misconduct hearing")
    other = make_hit(2, title="PC <Fennell> sacked for filming man in cell", feed="Echo")
    copy = make_hit(3, title="Officer dismissed after misconduct hearing", feed="Wire")
    section = WatchlistSection("Met", (StoryEntry(lead, (other, copy)),))
    rendered = render_digest(digest_of(section))
    assert "        PC <Fennell> sacked for filming man in cell\n" in rendered.text
    assert rendered.text.count("Officer dismissed after misconduct hearing") == 1
    also = parse_html(rendered.html).find_class("also")[0]
    assert [i.text_content() for i in also.iter("i")] == [
        "PC <Fennell> sacked for filming man in cell"
    ]


def test_unsafe_link_is_shown_as_text_in_both_parts() -> None:
    hit = make_hit(1, title="Watchdog report", url="javascript:alert(1)")
    rendered = render_digest(digest_of(WatchlistSection("Met", (StoryEntry(hit),))))
    assert "javascript:" not in rendered.text and "javascript:" not in rendered.html
    doc = parse_html(rendered.html)
    title = doc.find_class("title")[0]
    assert title.text_content() == "Watchdog report" and not title.xpath(".//a")


def test_bidi_and_control_characters_are_stripped_everywhere() -> None:
    title = "Met\u202e txet desrever\u202c officer\x1b[31m sacked\x00\u2066"
    text = "The \u202eIOPC\u202c said two\x07 officers\r\nwere sacked."
    # marks point at IOPC and officers in the raw text; cleaning must not shift them
    snippet = Snippet(text, ((5, 9), (21, 29)))
    hit = make_hit(1, title=title, feed="Feed\u200f", snippet=snippet)
    health = (
        FeedHealth(
            "Bad\u2067Feed", "https://f.example/", NOW - timedelta(days=2), "err\x1b\u202e", 3
        ),
    )
    rendered = render_digest(
        digest_of(WatchlistSection("Met\u202e", (StoryEntry(hit),)), feed_health=health)
    )
    for part in (rendered.text, rendered.html, rendered.subject):
        assert not set(INVISIBLE) & set(part), [hex(ord(c)) for c in set(INVISIBLE) & set(part)]
    doc = parse_html(rendered.html)
    assert [m.text_content() for m in doc.iter("mark")] == ["IOPC", "officers"]
    assert "The [IOPC] said two [officers] were sacked." in rendered.text
    assert "Met txet desrever officer[31m sacked" in rendered.text


def test_huge_title_and_snippet_are_clipped() -> None:
    hit = make_hit(1, title="Met " * 10_000, snippet=Snippet("word " * 50_000, ((0, 4),)))
    rendered = render_digest(digest_of(WatchlistSection("Met", (StoryEntry(hit),))))
    assert len(rendered.text) < 5_000 and len(rendered.html) < 20_000


def test_marked_words_apart_by_spaces_or_hyphens_are_one_highlight() -> None:
    text = "The Independent Office for Police Conduct (IOPC) said stop-and-search by Met, officers"
    words = ["Independent", "Office", "for", "Police", "Conduct", "IOPC", "stop", "and", "search"]
    words += ["Met", "officers"]
    marks = tuple((m.start(), m.end()) for m in re.finditer("|".join(words), text))
    hit = make_hit(1, snippet=Snippet(text, marks))
    rendered = render_digest(digest_of(WatchlistSection("Met", (StoryEntry(hit),))))
    doc = parse_html(rendered.html)
    assert [m.text_content() for m in doc.iter("mark")] == [
        "Independent Office for Police Conduct",
        "IOPC",
        "stop-and-search",
        "Met",  # a comma between: two highlights
        "officers",
    ]
    assert "[Independent Office for Police Conduct] ([IOPC]) said [stop-and-search]" in " ".join(
        rendered.text.split()
    )


def test_marks_that_overlap_or_fall_outside_the_text_are_left_out() -> None:
    snippet = Snippet("Met police said", ((0, 3), (1, 5), (4, 10), (9, 99), (12, 12)))
    assert snippet.joined_marks() == [(0, 10)]
    assert snippet.marked() == "[Met police] said"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=80), cuts=st.lists(st.integers(0, 80), max_size=6))
def test_snippet_marks_survive_cleaning(text: str, cuts: list[int]) -> None:
    points = sorted({c for c in cuts if c <= len(text)})
    marks = tuple(zip(points[::2], points[1::2], strict=False))
    snippet = Snippet(text, marks)
    parts = snippet_parts(snippet)
    assert not set(INVISIBLE) & {c for p in parts for c in p.text}
    joined = snippet.joined_marks()
    # every mark lies in one run, and runs are apart by more than spaces and hyphens
    assert all(
        any(a <= start and end <= b for a, b in joined) for start, end in marks if end > start
    )
    gaps = [text[end:start] for (_, end), (start, _) in pairwise(joined)]
    assert not any(re.fullmatch(r"[\s\-\u2010\u2011]*", gap) for gap in gaps)
    expected = [clean_text(text[a:b], 10_000) for a, b in joined]
    got = [p.text.strip() for p in parts if p.marked]
    assert [e for e in expected if e] == [g for g in got if g]


@settings(max_examples=100, deadline=None)
@given(url=st.text(max_size=40))
def test_safe_url_only_passes_http_and_https(url: str) -> None:
    out = safe_url(url)
    if out is not None:
        assert out.lower().startswith(("http://", "https://"))
        assert not any(c.isspace() or ord(c) < 32 for c in out)


# -- templates ------------------------------------------------------------------------------------


def test_user_template_overrides_builtin_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text(
        "<html><body><h1>Desk edition</h1>{% for s in sections %}<p>{{ s.name }}</p>"
        "{% endfor %}<p>{{ hits }}</p></body></html>",
        encoding="utf-8",
    )
    section = WatchlistSection("<Met>", (StoryEntry(make_hit(1)),))
    rendered = render_digest(digest_of(section), templates=tmp_path)
    doc = parse_html(rendered.html)
    assert doc.xpath("//h1")[0].text_content() == "Desk edition"
    assert "&lt;Met&gt;" in rendered.html  # a user template is escaped too
    assert rendered.text == render_digest(digest_of(section)).text  # text part: built-in


def test_broken_user_template_falls_back_with_a_notice(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("line one\n{{ no_such_variable }}\n", encoding="utf-8")
    rendered = render_digest(
        digest_of(WatchlistSection("Met", (StoryEntry(make_hit(1)),))), templates=tmp_path
    )
    assert "Matched: IOPC" in rendered.text  # the built-in template carried the hits
    # the readers are told which template failed, not where the server keeps it
    notice = "NOTE: digest.txt.j2:2: 'no_such_variable' is undefined; the"
    assert notice in " ".join(rendered.text.split()) and str(tmp_path) not in rendered.text
    assert "no_such_variable" in parse_html(rendered.html).text_content()


def test_check_templates_reports_syntax_errors_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text(
        "<html>\n<body>\n{% for s in sections %}\n<p>{{ s.name }}</p>\n{% endfro %}\n</body>\n",
        encoding="utf-8",
    )
    errors = check_templates(tmp_path)
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"{tmp_path / 'digest.html.j2'}:5: ")
    assert "endfro" in str(errors[0])


def test_check_templates_reports_undefined_variables_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "alert.txt.j2").write_text(
        "{{ subject }}\n{% for story in stories %}\n{{ story.headline }}\n{% endfor %}\n",
        encoding="utf-8",
    )
    (tmp_path / "digest.txt").write_text("misnamed", encoding="utf-8")
    errors = [str(e) for e in check_templates(tmp_path)]
    assert (
        f"{tmp_path / 'alert.txt.j2'}:3: 'StoryView object' has no attribute 'headline'" in errors
    )
    assert any(e.startswith(str(tmp_path / "digest.txt")) and "digest.txt.j2" in e for e in errors)


@pytest.mark.parametrize(
    "body",
    [
        "{% for i in range(10**9) %}{{ i }}{% endfor %}",  # filled memory, never finished
        '{{ cycler.__init__.__globals__.os.popen("id").read() }}',  # ran a shell command
    ],
    ids=["huge range", "python internals"],
)
def test_a_user_template_runs_sandboxed(tmp_path: Path, body: str) -> None:
    """The template folder is the user's, yet a template must not hang the daemon or reach
    Python: the sandbox refuses both, and the built-in template carries the digest."""
    (tmp_path / "digest.txt.j2").write_text(body, encoding="utf-8")
    [error] = check_templates(tmp_path)
    assert str(error).startswith(f"{tmp_path / 'digest.txt.j2'}:1: ")
    assert "sandbox" in str(error) or "unsafe" in str(error), error
    rendered = render_digest(
        digest_of(WatchlistSection("Met", (StoryEntry(make_hit(1)),))), templates=tmp_path
    )
    assert "Matched: IOPC" in rendered.text and "uid=" not in rendered.text
    assert "the built-in digest.txt.j2 was used instead" in " ".join(rendered.text.split())
    # the operator gets the file's full path; the readers only its name
    [logged] = rendered.template_errors
    assert logged.startswith(f"{tmp_path / 'digest.txt.j2'}:1: ")
    assert str(tmp_path) not in rendered.text


def test_check_templates_reports_what_it_cannot_read(tmp_path: Path) -> None:
    """A template not in UTF-8, a folder or a dangling link named like one: errors with the
    file named, where check stopped with a traceback."""
    (tmp_path / "digest.txt.j2").write_bytes(b"caf\xe9 {{ subject }}")
    (tmp_path / "extra.j2").mkdir()
    (tmp_path / "gone.j2").symlink_to(tmp_path / "nowhere.j2")
    errors = sorted(str(e) for e in check_templates(tmp_path))
    assert errors == [
        f"{tmp_path / 'digest.txt.j2'}: cannot read the template: not valid UTF-8",
        f"{tmp_path / 'extra.j2'}: cannot read the template: not a file",
        f"{tmp_path / 'gone.j2'}: cannot read the template: not a file",
    ]


def test_check_templates_accepts_the_builtin_templates_copied(tmp_path: Path) -> None:
    builtin = Path(__file__).resolve().parent.parent / "monitor" / "templates"
    for path in builtin.glob("*.j2"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert check_templates(tmp_path) == []
    assert [str(e) for e in check_templates(tmp_path / "missing")] == [
        f"{tmp_path / 'missing'}: templates folder not found"
    ]


def test_docs_list_every_template_variable() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "templates.md").read_text("utf-8")
    names = set(digest_context(sample_digest())) | set(alert_context(sample_alert()))
    for view in (SectionView, DayView, StoryView, Part, OtherView, FeedView):
        names |= {f.name for f in fields(view)}
    missing = sorted(n for n in names if f"| `{n}` |" not in docs)
    assert missing == [], f"docs/templates.md does not describe {missing}"
