"""The sample news sites: pages, feeds, serving, the demo's articles and benchmark sites."""

from __future__ import annotations

import html
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from urllib.parse import quote

import feedparser
import httpx
import lxml.etree
import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.loopback import LoopbackSite
from monitor.sitegen import (
    DEMO_OUTLETS,
    SiteArticle,
    add_outlet,
    generate_site,
    load_demo_articles,
    parse_demo_article,
    render_atom,
    render_page,
    render_rdf,
    render_rss,
    start_demo_site,
)
from monitor.sitegen_bench import FAULT_KINDS
from monitor.sitegen_pages import _COMMENTS, layout_count
from monitor.sitegen_text import build_model, generate_paragraphs

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
LAYOUTS = range(layout_count())
RENDERERS = {"rss": render_rss, "atom": render_atom, "rdf": render_rdf}
VERSIONS = {"rss": "rss20", "atom": "atom10", "rdf": "rss10"}


def make_article(slug: str, hours: float = 1.0, paragraphs: int = 7) -> SiteArticle:
    rng = random.Random(slug)
    words = [
        "the",
        "council",
        "said",
        "on",
        "Tuesday",
        "that",
        "residents",
        "would",
        "be",
        "consulted",
        "again",
    ]
    body = tuple(
        f"Paragraph {i} of {slug}: " + " ".join(rng.choice(words) for _ in range(20)) + "."
        for i in range(paragraphs)
    )
    return SiteArticle(slug, f"Headline of {slug}", body, NOW - timedelta(hours=hours), "A. Writer")


ARTICLE = make_article("main-story")
RELATED = [make_article(f"other-{i}", hours=i + 2) for i in range(4)]
HOSTILE = SiteArticle(
    "hostile",
    'Title </script><script>alert("t")</script> & <b>bold</b> "quoted"',
    (
        "First <img src=x onerror=alert(1)> paragraph & more",
        "Second </p></div></article><script>alert(2)</script> paragraph",
        "Third paragraph with ]]> and <!-- a comment --> inside",
    ),
    NOW,
    author='<a href="javascript:alert(3)">Evil</a>',
)


def norm(text: str) -> str:
    return " ".join(text.split())


def page_tree(
    article: SiteArticle, layout: int, related: list[SiteArticle]
) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(render_page(article, "The Example Post", related, layout))


# --- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_page_parses_and_holds_every_paragraph_and_the_headline(layout: int) -> None:
    tree = page_tree(ARTICLE, layout, RELATED)
    text = norm(tree.text_content())
    for paragraph in ARTICLE.paragraphs:
        assert norm(paragraph) in text
    assert [norm(h.text_content()) for h in tree.iter("h1")] == [ARTICLE.title]
    assert "A. Writer" in text
    assert "22 November 2026" in text or "Sunday 22" in text


@pytest.mark.parametrize("layout", LAYOUTS)
def test_page_carries_the_boilerplate_extraction_must_drop(layout: int) -> None:
    page = render_page(ARTICLE, "The Example Post", RELATED, layout)
    tree = lxml.html.fromstring(page)
    text = norm(tree.text_content())
    hrefs = [a.get("href") for a in tree.iter("a")]
    for label in ("Most read", "Read more:", "Privacy", "Facebook", "Home"):
        assert label in text, label
    assert any(
        f.get("action", "").endswith(("newsletter", "subscribe.php")) for f in tree.iter("form")
    )
    assert sum(1 for h in hrefs if h and h.startswith("/")) >= 10, "navigation and footer links"
    assert all(other.slug in hrefs for other in RELATED[:2])
    comments = [c for _, c in _COMMENTS if norm(c) in text]
    assert len(comments) == 3, "reader comments"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_read_more_links_sit_between_paragraphs(layout: int) -> None:
    page = render_page(ARTICLE, "The Example Post", RELATED, layout)
    spots = [m.start() for m in re.finditer("Read more:", page)]
    starts = [page.index(html.escape(p)) for p in ARTICLE.paragraphs]
    assert len(spots) == 2  # after the 2nd and the 5th of 7 paragraphs
    assert starts[1] < spots[0] < starts[2]
    assert starts[4] < spots[1] < starts[5]
    assert RELATED[0].title in page and RELATED[1].title in page


READ_MORE = re.compile(r'Read more:</\w+>\s*<a href="([^"]+)"')


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_page_without_related_articles_still_has_links_between_paragraphs(layout: int) -> None:
    page = render_page(ARTICLE, "The Example Post", [ARTICLE], layout)
    links = READ_MORE.findall(page)
    assert len(links) == 2 and ARTICLE.slug not in links
    assert READ_MORE.findall(render_page(ARTICLE, "The Example Post", RELATED, layout)) == [
        RELATED[0].slug,
        RELATED[1].slug,
    ]


def test_layouts_differ_in_markup() -> None:
    trees = [page_tree(ARTICLE, layout, RELATED) for layout in LAYOUTS]
    semantic = {"article", "main", "nav", "aside", "header", "footer"}
    tags = [{el.tag for el in tree.iter() if isinstance(el.tag, str)} for tree in trees]
    classes = [{c for el in tree.iter() for c in (el.get("class") or "").split()} for tree in trees]
    assert "article" in tags[0]
    assert not tags[1] & semantic, "the div-soup layout has no semantic elements"
    assert (
        not classes[0] & classes[1] and not classes[1] & classes[2] and not classes[0] & classes[2]
    )
    ld = trees[2].xpath('//script[@type="application/ld+json"]')
    data = json.loads(ld[0].text)
    assert data["@type"] == "NewsArticle" and data["headline"] == ARTICLE.title
    assert data["datePublished"] == "2026-11-22T08:30:00Z"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hostile_text_is_escaped(layout: int) -> None:
    page = render_page(HOSTILE, "Bad <Outlet>", [HOSTILE, *RELATED], layout, page_url='x"y')
    tree = lxml.html.fromstring(page)
    for script in tree.iter("script"):
        if script.get("type") == "application/ld+json":
            assert not set(script.text) & set("<>&"), "JSON-LD escaped for a script element"
        else:
            assert "alert" not in (script.text or "")
    assert not [el for el in tree.iter() if el.get("onerror")]
    assert not [a for a in tree.iter("a") if a.get("href", "").startswith("javascript")]
    assert [norm(h.text_content()) for h in tree.iter("h1")] == [HOSTILE.title]
    text = norm(tree.text_content())
    for paragraph in HOSTILE.paragraphs:
        assert norm(paragraph) in text
    for ld in tree.xpath('//script[@type="application/ld+json"]'):
        assert json.loads(ld.text)["headline"] == HOSTILE.title


TEXT = st.text(
    st.characters(whitelist_categories=("L", "N", "P", "S", "Zs"), blacklist_characters="\x00"),
    min_size=1,
    max_size=80,
).filter(lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None)
@given(
    title=TEXT, paragraphs=st.lists(TEXT, min_size=1, max_size=5), layout=st.sampled_from(LAYOUTS)
)
def test_any_text_survives_a_page_round_trip(
    title: str, paragraphs: list[str], layout: int
) -> None:
    article = SiteArticle("any", title, tuple(paragraphs), NOW)
    tree = lxml.html.fromstring(render_page(article, "Outlet", RELATED, layout))
    assert [norm(h.text_content()) for h in tree.iter("h1")] == [norm(title)]
    text = norm(tree.text_content())
    assert all(norm(p) in text for p in paragraphs)


def test_slugs_that_would_escape_the_prefix_are_refused() -> None:
    for slug in ("../etc", "a/b", "Upper", "", "a?b"):
        with pytest.raises(ValueError):
            SiteArticle(slug, "t", ("p",), NOW)
    with pytest.raises(ValueError):
        SiteArticle("naive", "t", ("p",), datetime(2026, 1, 1))


# --- feeds ---------------------------------------------------------------------------------

ITEMS = [(a, f"http://127.0.0.1:9/news/{a.slug}") for a in [ARTICLE, *RELATED]]


@pytest.mark.parametrize("fmt", RENDERERS)
def test_feeds_parse_and_list_the_right_links(fmt: str) -> None:
    parsed = feedparser.parse(RENDERERS[fmt]("The Example Post", "http://127.0.0.1:9/news/", ITEMS))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == VERSIONS[fmt]
    assert parsed.feed.title == "The Example Post"
    assert [e.link for e in parsed.entries] == [url for _, url in ITEMS]
    assert [e.title for e in parsed.entries] == [a.title for a, _ in ITEMS]
    ids = [e.id for e in parsed.entries]
    assert len(set(ids)) == len(ids) and all(ids)
    for entry, (article, _) in zip(parsed.entries, ITEMS, strict=True):
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        assert datetime(*when[:6], tzinfo=UTC) == article.published.replace(microsecond=0)
        assert article.paragraphs[0] in entry.summary
        assert entry.author == article.author


def test_a_summary_replaces_the_first_paragraph_in_feeds() -> None:
    article = SiteArticle("s", "T", ("First paragraph.",), NOW, summary="A standfirst.")
    for render in RENDERERS.values():
        entry = feedparser.parse(
            render("O", "http://127.0.0.1:9/", [(article, "http://x/s")])
        ).entries[0]
        assert "A standfirst." in entry.summary and "First paragraph" not in entry.summary


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(title=XML_TEXT, fmt=st.sampled_from(sorted(RENDERERS)))
def test_feeds_are_well_formed_xml_for_any_text(title: str, fmt: str) -> None:
    article = SiteArticle("x", title, (title,), NOW, author=title)
    body = RENDERERS[fmt](title, "http://127.0.0.1:9/", [(article, "http://127.0.0.1:9/x?a=1&b=2")])
    root = lxml.etree.fromstring(body)  # strict: raises on anything malformed
    titles = [el.text or "" for el in root.iter() if str(el.tag).rpartition("}")[2] == "title"]
    # XML drops the characters it forbids and reads any line break as "\n".
    allowed = re.sub("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "", title)
    assert allowed.replace("\r\n", "\n").replace("\r", "\n") in titles


# --- serving -------------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


@pytest.mark.parametrize("fmt", RENDERERS)
def test_an_outlet_is_served_and_answers_conditional_requests(
    fmt: str, client: httpx.Client
) -> None:
    with LoopbackSite() as site:
        url = add_outlet(
            site,
            "The Example Post",
            [*RELATED, ARTICLE],
            prefix="/post/",
            feed_format=fmt,
            layout=1,
        )
        first = client.get(url)
        assert first.status_code == 200 and first.headers["etag"]
        parsed = feedparser.parse(first.content)
        assert not parsed.bozo
        assert [e.link for e in parsed.entries] == [
            site.url(f"/post/{a.slug}") for a in [ARTICLE, *RELATED]
        ]
        page = client.get(parsed.entries[0].link)
        assert page.status_code == 200 and ARTICLE.paragraphs[-1] in page.text
        assert client.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        since = {"If-Modified-Since": first.headers["last-modified"]}
        assert client.get(url, headers=since).status_code == 304
        index = lxml.html.fromstring(client.get(site.url("/post/")).text)
        assert index.xpath('//link[@rel="alternate"]/@href') == [url]


# --- the demo ------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text)


def near(ws: list[str], a: object, b: object, n: int) -> bool:
    xs = [i for i, w in enumerate(ws) if a(w)]  # type: ignore[operator]
    ys = [i for i, w in enumerate(ws) if b(w)]  # type: ignore[operator]
    return any(abs(x - y) <= n for x in xs for y in ys)


def phrase(ws: list[str], *parts: str) -> bool:
    return any(tuple(ws[i : i + len(parts)]) == parts for i in range(len(ws)))


def police(w: str) -> bool:
    return w.lower() in ("police", "commissioner") or w.lower().startswith("officer")


def spec_watchlist_matches(text: str, *, ignore: bool = True) -> bool:
    """SPEC.md's example Met Police watchlist, by hand: its match queries and ignore phrases."""
    ws = words(text)
    if ignore:
        for i in range(len(ws) - 1):
            if ws[i] == "Met" and ws[i + 1] in ("Office", "Gala"):
                ws[i] = ws[i + 1] = ""
    return (
        phrase(ws, "Metropolitan", "Police")
        or "IOPC" in ws
        or near(ws, lambda w: w == "Met", police, 12)
        or phrase(ws, "Baroness", "Casey")
        or phrase(ws, "Louise", "Casey")
        or near(
            ws,
            lambda w: w.lower() == "vetting",
            lambda w: w.lower() == "police" or w.lower().startswith("officer"),
            15,
        )
    )


def all_demo() -> list[tuple[str, SiteArticle]]:
    return [(o, a) for o, arts in load_demo_articles(NOW).items() for a in arts]


def test_demo_articles_load_with_dates_relative_to_now() -> None:
    demo = all_demo()
    assert len(demo) >= 12
    assert {o for o, _ in demo} == set(DEMO_OUTLETS)
    for _, article in demo:
        assert NOW - timedelta(hours=48) <= article.published < NOW
        size = len(words(article.title + " " + " ".join(article.paragraphs)))
        assert 250 <= size <= 600, (article.slug, size)
    later = load_demo_articles(NOW + timedelta(hours=5))
    assert [a.published for a in later["Fleet Wire"]] == [
        a.published + timedelta(hours=5) for a in load_demo_articles(NOW)["Fleet Wire"]
    ]


def test_demo_labels_agree_with_the_spec_watchlist() -> None:
    demo = all_demo()
    labels = {a.met_police for _, a in demo}
    assert labels == {True, False}
    for _, article in demo:
        text = article.title + "\n" + "\n".join(article.paragraphs)
        assert spec_watchlist_matches(text) is article.met_police, article.slug


def test_demo_distractors_carry_their_traps() -> None:
    distractors = "\n".join(
        a.title + "\n" + "\n".join(a.paragraphs) for _, a in all_demo() if not a.met_police
    )
    for trap in (
        "Met Office",
        "Met Gala",
        "Metropolitan Opera",
        "met with",
        "Casey Affleck",
        "security vetting",
    ):
        assert trap in distractors, trap
    weather = next(
        a
        for _, a in all_demo()
        if "Met Office" in a.title + "".join(a.paragraphs) and not a.met_police
    )
    assert spec_watchlist_matches("\n".join(weather.paragraphs), ignore=False), (
        "only ignore saves it"
    )


def test_demo_stories_pair_up_across_outlets() -> None:
    stories: dict[str, list[tuple[str, SiteArticle]]] = {}
    for outlet, article in all_demo():
        if article.story:
            stories.setdefault(article.story, []).append((outlet, article))
    pairs = {k: v for k, v in stories.items() if len(v) > 1}
    assert len(pairs) >= 2
    ratios = []
    for members in pairs.values():
        (o1, a1), (o2, a2) = members
        assert o1 != o2 and a1.met_police and a2.met_police
        ratios.append(
            SequenceMatcher(None, " ".join(a1.paragraphs), " ".join(a2.paragraphs)).ratio()
        )
    assert max(ratios) > 0.9, "a syndicated copy"
    assert min(ratios) < 0.6, "the same story in different words"
    hearings = [k for k in stories if k.startswith("hearing-")]
    assert len(hearings) >= 2, "two separate misconduct cases"


def test_a_demo_header_must_say_whether_the_met_is_the_subject() -> None:
    with pytest.raises(ValueError):
        parse_demo_article("outlet: X | hours_ago: 2\nHeadline\nBody", "x", NOW)
    outlet, article = parse_demo_article(
        "outlet: X | hours_ago: 2 | met_police: no\nH\nBody\n\nMore", "x", NOW
    )
    assert (outlet, article.met_police, article.paragraphs) == ("X", False, ("Body", "More"))


def test_the_demo_site_serves_every_outlet(client: httpx.Client) -> None:
    site, feeds = start_demo_site(NOW)
    try:
        assert [f.name for f in feeds] == list(DEMO_OUTLETS)
        demo = load_demo_articles(NOW)
        for feed in feeds:
            parsed = feedparser.parse(client.get(feed.url).content)
            assert not parsed.bozo
            assert [e.title for e in parsed.entries] == [a.title for a in demo[feed.name]]
            for entry in parsed.entries:
                page = client.get(entry.link)
                assert page.status_code == 200 and entry.title in html.unescape(page.text)
    finally:
        site.stop()


# --- benchmark sites -----------------------------------------------------------------------


def fetch_all(client: httpx.Client, base: str, urls: list[str]) -> list[bytes]:
    # Pages name their own address; compare them with the port taken out.
    bases = (base.encode(), quote(base, safe="").encode())
    pages = [client.get(u).content for u in urls]
    return [p.replace(bases[0], b"BASE").replace(bases[1], b"BASE") for p in pages]


def test_generate_site_is_deterministic_for_a_seed(client: httpx.Client) -> None:
    with generate_site(3, 4, seed=7) as one, generate_site(3, 4, seed=7) as two:
        assert [f.name for f in one.feeds] == [f.name for f in two.feeds]
        urls_one = [f.url for f in one.feeds] + one.page_urls
        urls_two = [f.url for f in two.feeds] + two.page_urls
        assert fetch_all(client, one.site.base, urls_one) == fetch_all(
            client, two.site.base, urls_two
        )
    with generate_site(3, 4, seed=8) as other:
        titles_8 = [other.article(u).title for u in other.page_urls]
    with generate_site(3, 4, seed=7) as again:
        titles_7 = [again.article(u).title for u in again.page_urls]
    assert titles_7 != titles_8


def test_generated_pages_are_long_varied_and_listed_by_their_feeds(client: httpx.Client) -> None:
    with generate_site(6, 5, seed=2) as gen:
        assert len(gen.page_urls) == 30 and not gen.faulty_feeds
        listed: list[str] = []
        versions = set()
        for feed in gen.feeds:
            parsed = feedparser.parse(client.get(feed.url).content)
            assert not parsed.bozo and len(parsed.entries) == 5
            versions.add(parsed.version)
            listed += [e.link for e in parsed.entries]
        assert sorted(listed) == sorted(gen.page_urls)
        assert versions == {"rss20", "atom10", "rss10"}
        articles = [gen.article(u) for u in gen.page_urls]
        for article in articles:
            assert 600 <= sum(len(p.split()) for p in article.paragraphs) <= 1200
        assert {a.met_police for a in articles} == {True, False}
        page = client.get(gen.page_urls[0])
        assert articles[0].paragraphs[-1] in html.unescape(page.text)
        assert (
            client.get(
                gen.page_urls[0], headers={"If-None-Match": page.headers["etag"]}
            ).status_code
            == 304
        )
        with pytest.raises(KeyError):
            gen.article(gen.site.url("/s0000/story-099-000000"))


def test_faulty_feeds_fail_as_described(client: httpx.Client) -> None:
    with generate_site(len(FAULT_KINDS), 2, faulty=1.0, slow=5.0) as gen:
        assert set(gen.faults.values()) == set(FAULT_KINDS)
        assert gen.faulty_feeds == {f.name for f in gen.feeds} and gen.page_urls == []
        for feed in gen.feeds:
            kind = gen.faults[feed.name]
            if kind in ("slow", "trickle"):
                with pytest.raises(httpx.ReadTimeout):
                    client.get(feed.url, timeout=httpx.Timeout(10, read=0.3))
                continue
            response = client.get(feed.url)
            parsed = feedparser.parse(response.content)
            if kind in ("500", "404"):
                assert response.status_code == int(kind)
            elif kind == "not-a-feed":
                assert response.status_code == 200 and not parsed.entries
                assert response.headers["content-type"].startswith("text/html")
            else:
                assert response.status_code == 200 and parsed.bozo
                with pytest.raises(lxml.etree.XMLSyntaxError):
                    lxml.etree.fromstring(response.content)


def test_the_faulty_share_is_a_fraction_chosen_by_the_seed() -> None:
    def faults(seed: int) -> dict[str, str]:
        with generate_site(40, 1, seed=seed, faulty=0.25) as gen:
            assert len(gen.page_urls) == 30
            return gen.faults

    first = faults(1)
    assert len(first) == 10 and faults(1) == first and faults(2) != first


def test_paragraph_generation_stays_within_its_bounds() -> None:
    model = build_model(["One two three. Four five six seven. Eight nine ten eleven twelve."] * 3)
    for seed in range(30):
        paragraphs = generate_paragraphs(model, random.Random(seed), 600, 1200)
        assert 600 <= sum(len(p.split()) for p in paragraphs) <= 1200
    with pytest.raises(ValueError):
        generate_paragraphs(model, random.Random(0), 600, 650)
