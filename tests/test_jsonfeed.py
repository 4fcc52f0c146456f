"""JSON Feed bodies read as feeds: each field by the rules RSS and Atom entries follow."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.jsonfeed import MAX_ITEMS, MAX_VALUES
from monitor.models import ParsedFeed
from monitor.parse import parse_feed

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FEED_URL = "https://news.example/feed.json"
VERSION = "https://jsonfeed.org/version/1.1"


def parse(feed: dict[str, Any] | str | bytes) -> ParsedFeed:
    body = json.dumps(feed) if isinstance(feed, dict) else feed
    content = body.encode() if isinstance(body, str) else body
    return parse_feed(content, {"content-type": "application/feed+json"}, FEED_URL, NOW)


def json_feed(*items: dict[str, Any], **about: Any) -> dict[str, Any]:
    return {"version": VERSION, "title": "Capital Courier", **about, "items": list(items)}


def test_items_give_address_guid_headline_summary_and_time() -> None:
    parsed = parse(
        json_feed(
            {
                "id": "https://news.example/2026/met-officer-sacked",
                "url": "https://news.example/2026/met-officer-sacked?utm_source=feed",
                "title": "Met officer sacked after misconduct hearing",
                "summary": "A panel found gross misconduct.",
                "content_html": "<p>A Metropolitan Police officer has been <b>sacked</b>.</p>"
                "<p>The IOPC said the hearing followed its investigation.</p>",
                "date_published": "2026-11-22T09:30:00+01:00",
            },
            home_page_url="https://news.example/",
        )
    )
    [item] = parsed.items
    assert (parsed.title, parsed.link) == ("Capital Courier", "https://news.example/")
    assert item.url == "https://news.example/2026/met-officer-sacked"  # tracking dropped
    assert item.guid == "https://news.example/2026/met-officer-sacked"
    assert item.title == "Met officer sacked after misconduct hearing"
    # the fuller text is the summary, as for RSS content:encoded beside a description
    assert item.summary == (
        "A Metropolitan Police officer has been sacked. "
        "The IOPC said the hearing followed its investigation."
    )
    assert item.published == datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    assert parsed.warnings == ()


def test_plain_text_fields_stay_text_and_markup_in_them_is_not_read() -> None:
    """title, summary and content_text are plain text: '<' and '&' in them are characters."""
    parsed = parse(
        json_feed(
            {
                "id": "1",
                "url": "https://news.example/a/1",
                "title": "Q&A: <Met> reforms & what's next",
                "content_text": "Officers said <script>alert(1)</script> & more was needed.",
            }
        )
    )
    [item] = parsed.items
    assert item.title == "Q&A: <Met> reforms & what's next"
    assert item.summary == "Officers said <script>alert(1)</script> & more was needed."


def test_link_posts_numeric_ids_relative_urls_and_missing_links() -> None:
    parsed = parse(
        json_feed(
            {"id": 42, "external_url": "https://other.example/story", "title": "Linked"},
            {"id": "7", "url": "/a/7", "title": "Relative"},
            {"id": "https://news.example/a/8", "title": "Id only"},
            {"id": "tag:news.example,2026:9", "title": "Neither link nor URL id"},
            {"title": "No id, no url"},
            "not an item",
        )
    )
    got = [(i.guid, i.url, i.title) for i in parsed.items]
    assert got == [
        ("42", "https://other.example/story", "Linked"),
        ("7", "https://news.example/a/7", "Relative"),
        ("https://news.example/a/8", "https://news.example/a/8", "Id only"),
        ("tag:news.example,2026:9", "", "Neither link nor URL id"),
    ]
    assert parsed.skipped == 1
    assert parsed.warnings == ("1 entry skipped: no link and no GUID",)


@pytest.mark.parametrize(
    ("published", "modified", "expected"),
    [
        ("2026-11-22T09:30:00Z", None, datetime(2026, 11, 22, 9, 30, tzinfo=UTC)),
        ("2026-11-22T09:30:00", None, datetime(2026, 11, 22, 9, 30, tzinfo=UTC)),
        (None, "2026-11-21T18:00:00-05:00", datetime(2026, 11, 21, 23, 0, tzinfo=UTC)),
        ("yesterday", None, None),
        (20261122, None, None),
        ("9999-12-31T23:59:59-14:00", None, None),  # past the last day a date can hold
        ("0001-01-01T00:00:00+14:00", None, None),
        ("2030-01-01T00:00:00Z", None, None),  # ahead of now: not believed
    ],
)
def test_dates(published: object, modified: object, expected: datetime | None) -> None:
    item: dict[str, Any] = {"id": "1", "url": "https://news.example/a/1"}
    item |= {"date_published": published} if published is not None else {}
    item |= {"date_modified": modified} if modified is not None else {}
    [parsed] = parse(json_feed(item)).items
    assert parsed.published == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"version": "https://jsonfeed.org/version/1.1", "items": [', "broken JSON Feed"),
        ('{"version": "https://jsonfeed.org/version/1", "items": {}}', "no list of items"),
        ('{"version": "https://jsonfeed.org/version/1", "title": "x"}', "no list of items"),
        ('{"error": "rate limited"}', "the server sent JSON, not RSS or Atom"),
        ('{"version": "2.0", "note": "jsonfeed.org/version/"}', "the server sent JSON"),
        ("[" * 100_000 + '"jsonfeed.org/version/"', "the server sent JSON"),
        ("{" + '"a":[' * 100_000 + '"jsonfeed.org/version/"', "broken JSON Feed"),
    ],
)
def test_what_is_not_a_readable_json_feed_is_a_parse_error(body: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(body)


def test_a_byte_order_mark_and_leading_space_are_allowed() -> None:
    body = b"\xef\xbb\xbf \n" + json.dumps(json_feed({"id": "1", "url": "/a/1"})).encode()
    assert [i.url for i in parse(body).items] == ["https://news.example/a/1"]


def test_an_empty_json_feed_is_an_empty_feed() -> None:
    parsed = parse(json_feed())
    assert (parsed.title, parsed.items, parsed.warnings) == ("Capital Courier", (), ())


def test_a_huge_feed_gives_its_newest_entries() -> None:
    items = [
        {"id": str(n), "url": f"/a/{n}", "date_published": f"2026-11-{1 + n % 20:02}T00:00:00Z"}
        for n in range(MAX_ITEMS + 5)
    ]
    parsed = parse(json_feed(*items))
    assert len(parsed.items) == 200
    assert {i.published for i in parsed.items} == {datetime(2026, 11, 20, tzinfo=UTC)}
    assert parsed.warnings[0] == f"read the first {MAX_ITEMS:,} of {MAX_ITEMS + 5:,} items"
    assert parsed.warnings[-1] == f"kept the 200 newest of {MAX_ITEMS} entries"


@pytest.mark.parametrize("value", ["{}", "[]", "1", '"ab"'])
def test_a_body_of_too_many_values_is_refused_before_it_is_built(value: str) -> None:
    """json.loads builds every value at once: a body of tiny ones would take many times its
    size in memory, so it is refused by count first; just under the count, memory stays
    bounded."""
    head = '{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1", "url": "/a/1"},'

    def body(count: int) -> bytes:
        return (head + f"[{','.join([value] * count)}]]}}").encode()

    with pytest.raises(ParseError, match=f"more than {MAX_VALUES:,} values"):
        parse(body(MAX_VALUES))
    tracemalloc.start()
    try:
        parsed = parse(body(MAX_VALUES // 2 - 100))  # a value and a comma each
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [i.url for i in parsed.items] == ["https://news.example/a/1"]
    assert peak < 80_000_000


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_FIELDS = st.sampled_from(
    ["id", "url", "external_url", "title", "summary", "content_html", "content_text",
     "date_published", "date_modified", "version", "items"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    about=st.dictionaries(_FIELDS, _JSON, max_size=4),
    items=st.lists(st.dictionaries(_FIELDS, _JSON | st.text(max_size=40), max_size=8)),
)
def test_any_values_in_any_field_give_items_or_a_parse_error(
    about: dict[str, Any], items: list[dict[str, Any]]
) -> None:
    """Strangers write the feed: a field of the wrong type is missing, never a crash."""
    feed = {"version": VERSION, **about}
    feed.setdefault("items", items)
    try:
        parsed = parse(feed)
    except ParseError:
        return
    assert all(isinstance(i.title, str) and isinstance(i.summary, str) for i in parsed.items)
    assert all(i.url == "" or i.url.startswith(("http://", "https://")) for i in parsed.items)
