"""Extraction: page bytes -> the article's title and text, and nothing else.

Golden pages in tests/data/pages wrap real articles (tests/data fixtures) and articles
written for the tests in the templates of different kinds of news site. Beside each page:
NAME.txt (the title, then every paragraph, one a line) and NAME.boilerplate.txt (text from
the page's navigation, sidebars, comments and asides that must not be extracted).
"""

from __future__ import annotations

import html
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import ExtractError
from monitor.extract import MIN_WORDS, decode_html, extract_article, extract_page

PAGES = Path(__file__).parent / "data" / "pages"
GOLDEN = sorted(p.stem for p in PAGES.glob("*.html") if (PAGES / f"{p.stem}.txt").exists())
URL = "https://news.example/2024/article"


def golden(name: str) -> tuple[str, list[str]]:
    lines = (PAGES / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return lines[0], lines[1:]


def test_there_are_enough_golden_pages() -> None:
    assert len(GOLDEN) >= 5


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_page_gives_the_article_and_nothing_else(name: str) -> None:
    title, paragraphs = golden(name)
    page = (PAGES / f"{name}.html").read_bytes()
    result = extract_page(URL, page, {"content-type": "text/html; charset=utf-8"})
    lines = result.text.splitlines()
    missing = [p for p in paragraphs if p not in lines]
    assert not missing, f"paragraphs lost: {missing}"
    boilerplate = (PAGES / f"{name}.boilerplate.txt").read_text(encoding="utf-8").splitlines()
    assert not [b for b in boilerplate if b and any(b in p for p in paragraphs)], "bad golden"
    leaked = [b for b in boilerplate if b and b in result.text]
    assert not leaked, f"boilerplate kept: {leaked}"
    assert lines == paragraphs
    assert result.title == title


@pytest.mark.parametrize("name", ["no-article-404", "no-article-index"])
def test_page_without_an_article_is_an_error(name: str) -> None:
    with pytest.raises(ExtractError, match="no article text"):
        extract_page(URL, (PAGES / f"{name}.html").read_bytes(), {})


@pytest.mark.parametrize(
    "content",
    [b"", b"   \n ", b"\x00\x01\x02\xff" * 100, b'{"json": true}', b"%PDF-1.7\n%\xe2\xe3\n"],
)
def test_non_pages_are_errors(content: bytes) -> None:
    with pytest.raises(ExtractError):
        extract_page(URL, content, {})


# --- asides between paragraphs ------------------------------------------------------------

ARTICLE = [
    "The Independent Office for Police Conduct said on Tuesday that it had found messages "
    "referring to rape that officers at Charing Cross police station had defended as banter.",
    "Of the 14 officers investigated, two were dismissed for gross misconduct and put on the "
    "barred list, preventing future employment with the police.",
    "The watchdog made 15 recommendations to the Metropolitan Police, including a review of "
    "how officers use social media and messaging apps while on duty.",
    "The Mayor of London said the conduct of the officers was totally unacceptable and would "
    "further damage public trust and confidence in the police.",
]


def article_page(insert: str) -> str:
    """A plain news page: navigation, the article with insert in its middle, a footer."""
    paragraphs = [f"<p>{html.escape(p)}</p>" for p in ARTICLE]
    paragraphs.insert(2, insert)
    headline = "Watchdog finds officers defended messages as banter"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>IOPC report | Site</title>"
        "<meta property='og:title' content='Watchdog finds officers defended messages as banter'>"
        "</head><body><nav><a href='/'>Home</a> <a href='/news'>News</a> <a href='/uk'>UK</a></nav>"
        f"<article><h1>{headline}</h1>{''.join(paragraphs)}"
        "</article><footer><a href='/privacy'>Privacy</a> © Example News</footer></body></html>"
    )


ASIDES = [
    "<p><strong>Read more:</strong> <a href='/a'>Heathrow strike called off after pay deal</a></p>",
    "<p>READ MORE <a href='/a'>Heathrow strike called off after pay deal</a></p>",
    "<p>Related: Heathrow strike called off after pay deal</p>",
    "<p>Also read | <a href='/a'>Heathrow strike called off after pay deal</a></p>",
    "<p>Don't miss: <a href='/a'>Heathrow strike called off after pay deal</a></p>",
    "<p>See also – <a href='/a'>Heathrow strike called off after pay deal</a></p>",
    "<p>Watch: Heathrow strike called off after pay deal</p>",
    "<p><a href='/a'>Heathrow strike called off after pay deal, union says</a></p>",
    "<p><a href='/n'><strong>Sign up</strong> for the Heathrow briefing newsletter</a></p>",
    "<p>Sign up to our free Heathrow Weekly newsletter for the stories that matter.</p>",
    "<p>For more stories about Heathrow, visit <a href='/heathrow'>Heathrow Live</a>.</p>",
    "<p>Follow us on Facebook for the latest Heathrow news</p>",
    "<p>Download our app to get Heathrow alerts straight to your phone.</p>",
]


@pytest.mark.parametrize("aside", ASIDES)
def test_aside_between_paragraphs_is_dropped(aside: str) -> None:
    result = extract_article(article_page(aside), URL)
    assert result.text.splitlines() == ARTICLE
    assert "Heathrow" not in result.text


REAL_OPENINGS = [
    "Read more closely, the messages show that officers knew they were being watched by "
    "colleagues who did not dare to complain.",
    "Related concerns were raised in 2023 when the Casey review found the force had failed to "
    "remove officers who abused women.",
    "Also read into the record was a letter from a former officer describing years of bullying.",
    "Watch commanders at the station were told to review every complaint made since 2016.",
    "Sign-up to the force's new anonymous reporting line has doubled since the report.",
    "Join the dots between the cases and a pattern emerges of officers never vetted again.",
    "For more than a decade, visit after visit by inspectors found the same failings at the "
    "station, and nothing was done to visit them on the officers.",
    "Subscribe to the idea that this is banter and you excuse bullying, the director said.",
    "Follow-up checks found that two of the officers had been promoted during the inquiry.",
    "Listen to the recordings, the lawyer told the panel, and the tone is unmistakable.",
    "Related—and perhaps more troubling—was the finding that complaints were never logged.",
]


@pytest.mark.parametrize("paragraph", REAL_OPENINGS)
def test_paragraph_that_starts_like_an_aside_is_kept(paragraph: str) -> None:
    result = extract_article(article_page(f"<p>{html.escape(paragraph)}</p>"), URL)
    assert result.text.splitlines() == [*ARTICLE[:2], paragraph, *ARTICLE[2:]]


def test_title_comes_from_page_metadata_and_is_not_repeated_in_the_text() -> None:
    result = extract_article(article_page(""), URL)
    assert result.title == "Watchdog finds officers defended messages as banter"
    assert not result.text.startswith("Watchdog finds")


def test_reader_comments_are_not_extracted() -> None:
    comments = "".join(
        f"<div class='comment'><p>{c} The Met police are a disgrace and the IOPC is useless, "
        "sack every officer involved today.</p></div>"
        for c in ("First!", "Agreed.", "Rubbish.")
    )
    page = article_page("").replace(
        "</article>", f"</article><section id='comments'><h2>Comments</h2>{comments}</section>"
    )
    result = extract_article(page, URL)
    assert result.text.splitlines() == ARTICLE


def test_short_article_is_extracted_and_shorter_text_is_not() -> None:
    brief = " ".join(["word"] * (MIN_WORDS - 4)) + " said the police watchdog."
    page = f"<html><body><article><h1>Brief</h1><p>{brief}</p></article></body></html>"
    assert extract_article(page, URL).text == brief
    stub = " ".join(brief.split()[: MIN_WORDS - 1])
    with pytest.raises(ExtractError):
        extract_article(page.replace(brief, stub), URL)


def test_control_characters_in_a_page_do_not_stop_extraction() -> None:
    page = article_page("").replace("Charing Cross", "Charing\x00 Cross\x0b")
    result = extract_article(page, URL)
    assert "Charing Cross" in result.text
    assert "\x00" not in result.text


def test_no_control_character_reaches_the_text_that_a_terminal_would_run() -> None:
    """`monitor hits` and `monitor test` print snippets of the text to a terminal: ESC, the
    8-bit CSI (U+009B) and the other C0 and C1 controls, DEL among them, never reach it."""
    hostile = "Charing\x1b[2J Cross\x9b31m police\x7f station\x85 officers"
    page = article_page("").replace("Charing Cross", hostile)
    text = extract_article(page, URL).text
    assert "Charing[2J Cross31m police station officers" in text
    assert not [c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"]


def test_deeply_nested_page_is_survived() -> None:
    depth = 5000
    page = article_page("<div>" * depth + "<p>deep</p>" + "</div>" * depth)
    try:
        result = extract_article(page, URL)
    except ExtractError:
        return  # refusing the page is acceptable; crashing or hanging is not
    assert ARTICLE[0] in result.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=3000))
def test_any_text_gives_an_article_or_extract_error(text: str) -> None:
    try:
        result = extract_article(text, URL)
    except ExtractError:
        return
    assert len(result.text.split()) >= MIN_WORDS


# --- charsets -----------------------------------------------------------------------------

SAMPLE = "The Met’s “vetting” review cost £2m – café, résumé, naïve"


def ct(charset: str) -> dict[str, str]:
    return {"Content-Type": f"text/html; charset={charset}"}


@pytest.mark.parametrize(
    ("text", "encoding", "headers"),
    [
        (SAMPLE, "utf-8", ct("utf-8")),
        (SAMPLE, "windows-1252", ct("windows-1252")),
        ("Prix : 5 €, œuvre, café", "iso-8859-15", ct("ISO-8859-15")),
        ("garçon, déjà vu, Straße", "iso-8859-1", ct("iso-8859-1")),
        ("Полиция Лондона: офицеры уволены", "koi8-r", ct("KOI8-R")),
        ("ロンドン警視庁は調査を発表した", "shift_jis", ct("Shift_JIS")),
        (SAMPLE, "windows-1252", {"content-type": "text/html; charset=utf-8"}),  # wrong header
        (SAMPLE, "utf-8", ct("iso-8859-1")),  # wrong header the other way
        (SAMPLE, "windows-1252", ct("no-such-charset")),
        (SAMPLE, "windows-1252", ct("utf-7")),  # never honoured
    ],
)
def test_charset_from_header(text: str, encoding: str, headers: dict[str, str]) -> None:
    page = f"<html><body><p>{text}</p></body></html>"
    assert decode_html(page.encode(encoding), headers) == page


@pytest.mark.parametrize(
    ("declaration", "text", "encoding"),
    [
        ('<meta charset="windows-1252">', SAMPLE, "windows-1252"),
        ("<meta charset=iso-8859-15>", "5 € œuvre", "iso-8859-15"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">',
            "Полиция Лондона",
            "koi8-r",
        ),
        ('<?xml version="1.0" encoding="windows-1251"?>', "Полиция Лондона", "windows-1251"),
        ('<meta charset="shift_jis">', "ロンドン警視庁", "shift_jis"),
    ],
)
def test_charset_from_the_page(declaration: str, text: str, encoding: str) -> None:
    page = f"{declaration}<html><head><title>t</title></head><body><p>{text}</p></body></html>"
    assert decode_html(page.encode(encoding), {"content-type": "text/html"}) == page


def test_bom_wins() -> None:
    page = f"<p>{SAMPLE}</p>"
    assert decode_html(b"\xef\xbb\xbf" + page.encode(), ct("windows-1252")) == page
    assert decode_html("\ufeff".encode("utf-16-le") + page.encode("utf-16-le"), {}) == page


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (SAMPLE, "windows-1252"),
        ("Полиция Лондона заявила, что расследование продолжается уже третий месяц.", "koi8-r"),
        ("Полиция Лондона заявила, что расследование продолжается уже третий месяц.", "cp1251"),
    ],
)
def test_charset_detected_without_declaration(text: str, encoding: str) -> None:
    page = f"<html><body><p>{text}</p><p>{text}</p></body></html>"
    assert decode_html(page.encode(encoding), {}) == page


def test_utf8_page_with_stray_legacy_bytes_keeps_its_utf8() -> None:
    content = f"<p>{SAMPLE}</p>".encode() + b"<p>\x93quoted\x94</p>"
    assert decode_html(content, ct("utf-8")) == f"<p>{SAMPLE}</p><p>“quoted”</p>"


def test_broken_utf8_keeps_its_valid_text_and_marks_undecodable_bytes() -> None:
    text = decode_html(b"<p>caf\xc3\xa9 \xe9t\xe9 \x81\x8d</p>", ct("utf-8"))
    assert text == "<p>café été \ufffd\ufffd</p>"


def test_golden_page_in_a_legacy_charset_with_a_wrong_header() -> None:
    title, paragraphs = golden("broadsheet-iopc")
    page = (PAGES / "broadsheet-iopc.html").read_text(encoding="utf-8")
    content = page.replace('charset="utf-8"', 'charset="windows-1252"').encode("windows-1252")
    result = extract_page(URL, content, {"content-type": "text/html; charset=utf-8"})
    assert result.title == title
    assert result.text.splitlines() == paragraphs


@given(st.binary(max_size=2000), st.text(max_size=60))
def test_decode_never_raises(content: bytes, content_type: str) -> None:
    assert isinstance(decode_html(content, {"content-type": content_type}), str)


# -- reader comments in markup trafilatura does not know -----------------------------------------


def _demo_pages() -> list[tuple[str, int, object]]:
    from datetime import UTC, datetime

    from monitor.sitegen import load_demo_articles

    articles = load_demo_articles(datetime(2026, 11, 22, 12, tzinfo=UTC))
    return [
        (outlet, layout, a)
        for outlet, items in articles.items()
        for a in items[:2]
        for layout in (0, 1, 2)
    ]


@pytest.mark.parametrize(("outlet", "layout", "article"), _demo_pages())
def test_sample_site_pages_give_exactly_the_article(outlet: str, layout: int, article: Any) -> None:
    from monitor.sitegen import render_page

    html = render_page(article, outlet, (), layout=layout)
    lines = extract_article(html, f"https://news.example/{article.slug}").text.splitlines()
    assert lines == list(article.paragraphs)


def test_comment_section_named_by_heading_or_class_is_dropped() -> None:
    paragraphs = [
        f"Paragraph {n} of the report on the Met, with enough words to be real text "
        "that any extractor keeps as the body of the article."
        for n in range(6)
    ]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    html = (
        f"<html><body><main><article><h1>Title</h1>{body}</article>"
        '<section class="c-talk"><h2>Join the conversation</h2>'
        "<div><p>First! This comment must never be mistaken for the article.</p></div>"
        '</section><div id="disqus_thread"><p>Another reader remark that is not news.</p>'
        "</div></main></body></html>"
    )
    text = extract_article(html, "https://news.example/a").text
    assert "First!" not in text and "reader remark" not in text
    assert text.splitlines() == paragraphs


def test_article_inside_a_comment_named_container_is_kept() -> None:
    paragraphs = [
        f"Paragraph {n}: the IOPC said officers at Charing Cross shared messages "
        "that were defended as banter by several of those involved."
        for n in range(6)
    ]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    html = f'<html><body><div class="story has-comments"><h1>Title</h1>{body}</div></body></html>'
    assert extract_article(html, "https://news.example/b").text.splitlines() == paragraphs
