"""The article body a page states in its JSON-LD, and when extraction prefers it."""

from __future__ import annotations

import html
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml.html import document_fromstring

from monitor.errors import ExtractError
from monitor.extract import MIN_WORDS, STATED_SHARE, extract_article
from monitor.jsonld import body_paragraphs, stated_bodies
from monitor.sitegen_pages import script_json
from tests.test_extract import ARTICLE, URL, article_page

BODY = [
    "Two Metropolitan Police officers will face gross misconduct hearings, the Independent"
    " Office for Police Conduct said on Monday.",
    "The watchdog found that messages shared in a group chat showed attitudes that had no place"
    " in policing, and asked the force to review its vetting of both officers.",
    "A hearing date has not been set.",
]


def ld_script(data: Any, kind: str = "application/ld+json") -> str:
    return f'<script type="{kind}">{script_json(data)}</script>'


def shell(*scripts: str) -> str:
    """A page built by scripts: navigation and an empty app container."""
    return (
        "<!DOCTYPE html><html><head><title>Met officers to face hearings | App News</title>"
        "<meta property='og:title' content='Met officers to face hearings'>"
        f"{''.join(scripts)}</head><body><nav><a href='/'>Home</a> <a href='/uk'>UK</a></nav>"
        "<div id='app'></div><script src='/app.js'></script></body></html>"
    )


def bodies_of(page: str) -> list[str]:
    return [body for _, body in stated_bodies(document_fromstring(page))]


def article(body: str, kind: str = "NewsArticle", headline: str | None = None) -> dict[str, Any]:
    data = {"@context": "https://schema.org", "@type": kind, "articleBody": body}
    return data if headline is None else {**data, "headline": headline}


# -- what a page states ------------------------------------------------------------------------


def test_bodies_are_found_in_lists_graphs_and_main_entities() -> None:
    page = shell(
        ld_script([article("first")]),
        ld_script({"@graph": [{"@type": "WebSite"}, article("second")]}),
        ld_script({"@type": "WebPage", "mainEntity": article("third")}),
        ld_script(article("fourth"), kind="Application/LD+JSON; charset=utf-8"),
        ld_script([["a string", 7, [article("fifth")]], None]),
    )
    assert bodies_of(page) == ["first", "second", "third", "fourth", "fifth"]


@pytest.mark.parametrize(
    "script",
    [
        '<script type="application/ld+json">{"articleBody": "unclosed</script>',
        '<script type="application/ld+json">' + "[" * 100_000 + "]" * 100_000 + "</script>",
        ld_script({"articleBody": 42}),
        ld_script({"articleBody": ["a list"]}),
        ld_script({"articleBody": "   "}),
        ld_script(article("not JSON-LD"), kind="application/json"),
        ld_script(article("javascript"), kind="text/javascript"),
    ],
)
def test_a_block_that_states_no_usable_body_gives_nothing(script: str) -> None:
    assert bodies_of(shell(script)) == []


def test_nesting_is_followed_only_so_deep() -> None:
    node: Any = article("deep")
    for _ in range(50):
        node = {"@graph": [node]}
    assert bodies_of(shell(ld_script(node))) == []
    assert bodies_of(shell(ld_script({"@graph": [{"@graph": [article("near")]}]}))) == ["near"]


# -- a stated body as paragraphs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "paragraphs"),
    [
        ("One line.\n\nTwo  lines\twith   spaces.\r\n", ["One line.", "Two lines with spaces."]),
        ("<p>One &amp; two.</p><p>Three <em>four</em>.</p>", ["One & two.", "Three four."]),
        (
            "&lt;p&gt;Escaped markup.&lt;/p&gt;&lt;p&gt;Second.&lt;/p&gt;",
            ["Escaped markup.", "Second."],
        ),
        ("Line one<br>line two<br/>line three", ["Line one", "line two", "line three"]),
        (
            "<div><h2>Head</h2><ul><li>a</li><li>b</li></ul></div><script>alert(1)</script>",
            ["Head", "a", "b"],
        ),
        ("<p>Kept</p><!-- a comment --><style>p {}</style>", ["Kept"]),
        ("5 < 6 and 7 > 3, said the report.", ["5 < 6 and 7 > 3, said the report."]),
        # what JSON's escapes can spell and no database could store: dropped or replaced
        ("Con\x00trol\x07 <b>and</b> lone\ud800 surrogate", ["Control and lone\ufffd surrogate"]),
        ("Plain\x1f text \udfff", ["Plain text \ufffd"]),
        # what a terminal printing a snippet would run: ESC, the 8-bit CSI, DEL, other C1s
        (
            "Charing\x1b[2J Cross\u009b31m police\x7f station\x85 officers",
            ["Charing[2J Cross31m police station officers"],
        ),
        ("<div>" * 50_000 + "nested without end", []),
    ],
)
def test_a_body_becomes_plain_paragraphs(body: str, paragraphs: list[str]) -> None:
    assert body_paragraphs(body) == paragraphs


_AWKWARD = st.sampled_from(list("ab <>/p&;#x\n\x00\ud800"))  # markup, entities, what JSON spells


@given(st.text(alphabet=_AWKWARD | st.characters(), max_size=200))
def test_any_body_gives_plain_one_line_paragraphs(body: str) -> None:
    for paragraph in body_paragraphs(body):
        assert paragraph and "\n" not in paragraph and paragraph == " ".join(paragraph.split())
        paragraph.encode("utf-8")  # storable: no lone surrogate
        assert "<p>" not in paragraph.lower() and "<br" not in paragraph.lower()


# -- when extraction uses it -----------------------------------------------------------------


def test_a_page_built_by_scripts_gives_its_stated_body() -> None:
    page = shell(ld_script(article("\n\n".join(BODY))))
    assert extract_article(page, URL).text == "\n".join(BODY)


def test_a_teaser_gives_way_to_a_stated_body_with_far_more_words() -> None:
    teaser = ARTICLE[:1]  # what the paywall shows
    full = [*ARTICLE, *BODY]
    page = article_page("").replace("".join(f"<p>{html.escape(p)}</p>" for p in ARTICLE[1:]), "")
    page = page.replace("</head>", ld_script(article("\n".join(full))) + "</head>")
    assert len(" ".join(full).split()) >= STATED_SHARE * len(" ".join(teaser).split())
    assert extract_article(page, URL).text == "\n".join(full)


def test_the_html_text_stays_when_the_stated_body_is_not_far_longer() -> None:
    stated = "\n".join([*ARTICLE, "A paragraph only the stated body has."])
    page = article_page("").replace("</head>", ld_script(article(stated)) + "</head>")
    text = extract_article(page, URL).text
    assert text.splitlines() == ARTICLE


def test_a_short_stated_body_is_no_article() -> None:
    brief = " ".join(["word"] * (MIN_WORDS - 1))
    with pytest.raises(ExtractError, match="no article text"):
        extract_article(shell(ld_script(article(brief))), URL)


def test_of_several_stated_bodies_the_one_headed_by_the_page_title_is_used() -> None:
    other = " ".join(["Another story about the Met Office forecast for the weekend."] * 10)
    page = shell(
        ld_script(article(other, headline="Weekend forecast")),
        ld_script(article("\n".join(BODY), headline="Met officers to face hearings")),
    )
    assert stated_bodies(document_fromstring(page))[1][0] == "Met officers to face hearings"
    assert extract_article(page, URL).text == "\n".join(BODY)


def test_several_stated_bodies_none_headed_by_the_title_lend_none() -> None:
    other = " ".join(["Another story about the Met Office forecast for the weekend."] * 10)
    page = shell(
        ld_script(article(other, headline="Weekend forecast")),
        ld_script(article("\n".join(BODY))),  # no headline: cannot be told apart
    )
    with pytest.raises(ExtractError, match="no article text"):
        extract_article(page, URL)
