"""URL rules: what is fetched at all, and the canonical spelling that identifies an article."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monitor.errors import BadURL
from monitor.urls import (
    MAX_URL_LENGTH,
    canonical_url,
    check_url,
    is_tracking_parameter,
    lacks_scheme,
    unwrap_redirect,
)

GUARDIAN = "https://www.theguardian.com/uk-news/2023/mar/21/met-police-casey-review"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://WWW.TheGuardian.COM/uk-news/x", "https://www.theguardian.com/uk-news/x"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        ("http://example.org:443/a", "http://example.org:443/a"),
        ("https://example.org", "https://example.org/"),
        ("https://example.org/a#comments", "https://example.org/a"),
        ("https://example.org./a", "https://example.org/a"),
        ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
        ("https://example.org/a/./b/../c", "https://example.org/a/c"),
        ("https://example.org/a/b/..", "https://example.org/a/"),
        ("https://example.org/café", "https://example.org/caf%C3%A9"),
        ("https://example.org/caf%c3%a9", "https://example.org/caf%C3%A9"),
        ("https://example.org/a b", "https://example.org/a%20b"),
        ("  https://example.org/a\n", "https://example.org/a"),
        ("http://[::FFFF:7F00:1]:8080/", "http://[::ffff:7f00:1]:8080/"),
        ("https://example.org/?", "https://example.org/"),
    ],
)
def test_canonical_url_normalises_spelling(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected


@pytest.mark.parametrize(
    "query",
    [
        "utm_source=twitter&utm_medium=social&utm_campaign=x&UTM_Content=y",
        "fbclid=IwAR0abc",
        "gclid=1&dclid=2&msclkid=3&yclid=4",
        "mc_cid=1&mc_eid=2&igshid=3&_ga=2.1.2.3",
        "CMP=Share_iOSApp_Other",
        "at_medium=RSS&at_campaign=KARANGA",
    ],
)
def test_canonical_url_drops_tracking_parameters(query: str) -> None:
    assert canonical_url(f"{GUARDIAN}?{query}") == GUARDIAN


def test_canonical_url_keeps_other_parameters_in_order() -> None:
    url = "https://example.org/story?id=42&utm_source=rss&page=2&fbclid=x&lang=en"
    assert canonical_url(url) == "https://example.org/story?id=42&page=2&lang=en"


def test_canonical_url_resolves_against_base() -> None:
    base = "https://news.example/uk/feed.xml"
    assert (
        canonical_url("../met/story-1?utm_source=rss", base) == "https://news.example/met/story-1"
    )
    assert canonical_url("/a", base) == "https://news.example/a"
    assert canonical_url("//other.example/b", base) == "https://other.example/b"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/", "javascript:alert(1)", "mailto:desk@example.org", "/relative/only"],
)
def test_canonical_url_refuses_what_is_not_http(url: str) -> None:
    with pytest.raises(BadURL):
        canonical_url(url)


@pytest.mark.parametrize(("url", "base"), [("http://[::1/", "http://x/"), ("a", "http://[x/")])
def test_canonical_url_raises_only_bad_url_for_malformed_input(url: str, base: str) -> None:
    with pytest.raises(BadURL, match="malformed"):
        canonical_url(url, base)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a",
        "http://example.org:8080/a?b=c#d",
        "https://bücher.example/",
        "http://[2001:db8::1]/",
    ],
)
def test_check_url_accepts_http_and_https(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.org/", "only http and https"),
        ("example.org/a", "without a scheme"),
        ("http://user@example.org/", "user name"),
        ("http://user:pw@example.org/", "user name"),
        ("http://a@b/", "user name"),
        ("http://example.org\\@evil.example/", "user name"),
        ("http://exa mple.org/", "space"),
        ("http://example.org/a b", "space"),
        ("http://example.org/a\r\nHost: evil", "control"),
        ("http://example.org/\x00", "control"),
        ("http://example.org/\u202eevil", "control"),
        ("http:///path", "no host"),
        ("http://:80/", "no host"),
        ("http://example.org:99999/", "malformed"),
        ("http://example.org:0/", "port 0"),
        ("http://[::1/", "malformed"),
    ],
)
def test_check_url_refuses(url: str, why: str) -> None:
    with pytest.raises(BadURL, match=why):
        check_url(url)


def test_check_url_caps_length() -> None:
    base = "https://example.org/"
    assert check_url(base + "a" * (MAX_URL_LENGTH - len(base)))
    with pytest.raises(BadURL, match="longer than"):
        check_url(base + "a" * MAX_URL_LENGTH)


def test_is_tracking_parameter_is_exact_for_named_parameters() -> None:
    assert is_tracking_parameter("utm_term")
    assert is_tracking_parameter("FBCLID")
    assert not is_tracking_parameter("id")
    assert not is_tracking_parameter("fbclid_page")  # only the exact names, not look-alikes


_segment = st.text(alphabet="abcé-_.~% ", min_size=0, max_size=8)
_param = st.sampled_from(["id", "page", "utm_source", "fbclid", "q", "_ga", "gclid"])


@st.composite
def _urls(draw: st.DrawFn) -> str:
    host = draw(st.sampled_from(["Example.ORG", "news.example", "bücher.example", "[::1]"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = "/".join(draw(st.lists(_segment, max_size=4)))
    pairs = draw(st.lists(st.tuples(_param, _segment), max_size=4))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    fragment = draw(st.sampled_from(["", "#top", "#"]))
    scheme = draw(st.sampled_from(["http", "HTTPS"]))
    return f"{scheme}://{host}{port}/{path}" + (f"?{query}" if query else "") + fragment


@given(_urls())
def test_canonical_url_is_idempotent_and_fetchable(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert check_url(once) == once


@given(_urls())
def test_canonical_url_never_keeps_tracking_or_fragment(url: str) -> None:
    parts = urlsplit(canonical_url(url))
    assert parts.fragment == ""
    assert not any(is_tracking_parameter(k) for k, _ in parse_qsl(parts.query, True))
    assert parts.scheme == parts.scheme.lower()
    assert parts.netloc == parts.netloc.lower()


_any_text = st.one_of(
    st.text(max_size=60), st.builds(lambda rest: "http://" + rest, st.text(max_size=60))
)


@given(_any_text, st.sampled_from([None, "https://news.example/uk/feed.xml"]))
@example("HTTP://\u2024", None)  # a host IDNA maps to a lone dot
@example("http://ex\u2024ample\u2024org\u2024/a", None)
def test_canonical_url_of_any_text_is_fetchable_or_bad_url(url: str, base: str | None) -> None:
    try:
        out = canonical_url(url, base)
    except BadURL:
        return
    assert check_url(out) == out
    assert canonical_url(out) == out


# -- redirect links: Google Alerts, Google News, Bing News --------------------------------------

# the link of a Google Alerts feed entry, as the feed gives it
ALERT = (
    "https://www.google.com/url?rct=j&sa=t&url={}&ct=ga&cd=CAIyGTg5YTNjMzkxMTU0YjUw&usg=AOvVaw2e"
)
STANDARD = "https://www.standard.co.uk/news/crime/met-police-officer-sacked-vetting-b1234567.html"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (ALERT.format(STANDARD), STANDARD),
        (ALERT.format(quote(GUARDIAN, safe="")), GUARDIAN),
        (
            "https://www.google.co.uk/url?q=https%3A%2F%2Fnews.example%2Fstory%3Fid%3D5%26p%3D2&sa=D",
            "https://news.example/story?id=5&p=2",
        ),
        ("https://google.de/url?sa=t&url=http://news.example/a", "http://news.example/a"),
        ("HTTPS://WWW.GOOGLE.COM.AU/url?url=https://news.example/a", "https://news.example/a"),
        (
            "https://news.google.com/news/url?sa=t&fd=R&usg=AFQjCNGk&url=http://www.reuters.com/article/x",
            "http://www.reuters.com/article/x",
        ),
        (
            "https://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=7&url=https%3a%2f%2fwww.bbc"
            ".co.uk%2fnews%2fuk-england-london-1&c=5&mkt=en-gb",
            "https://www.bbc.co.uk/news/uk-england-london-1",
        ),
        (ALERT.format("https://news.example/met+police"), "https://news.example/met+police"),
        (ALERT.format("https://news.example/met police"), "https://news.example/met%20police"),
        (ALERT.format(quote(ALERT.format(STANDARD), safe="")), STANDARD),  # one inside another
    ],
)
def test_a_redirect_link_gives_the_address_it_carries(link: str, expected: str) -> None:
    assert unwrap_redirect(link) == expected


@pytest.mark.parametrize(
    "link",
    [
        STANDARD,
        "https://www.google.com/search?q=https://news.example/a",  # a search, not a redirect
        "https://evilgoogle.com/url?url=https://news.example/a",
        "https://google.com.evil.example/url?url=https://news.example/a",
        "https://news.example/url?url=https://news.example/a",
        "https://www.bing.com/search?url=https://news.example/a",
        "https://www.google.com/url?rct=j&sa=t&ct=ga",  # carries no address
        ALERT.format("javascript:alert(1)"),
        ALERT.format("file:///etc/passwd"),
        ALERT.format("//news.example/a"),
        ALERT.format("https://user@news.example/a"),  # check_url refuses it as a link
        "https://www.google.com/url?url=http://[bad/",
        "http://[bad/url?url=https://news.example/a",
    ],
)
def test_other_links_are_left_alone(link: str) -> None:
    assert unwrap_redirect(link) == link


@given(_urls())
def test_any_fetchable_address_comes_back_out_of_a_google_alert_link(url: str) -> None:
    target = canonical_url(url)
    assert unwrap_redirect(ALERT.format(quote(target, safe=""))) == target


@given(st.text(max_size=80), st.sampled_from(["url", "q", "u"]))
@example("https://evil.example/", "url")
@example("http://[::1]:0/", "q")
def test_a_redirect_link_gives_a_fetchable_address_or_itself_whatever_it_carries(
    carried: str, name: str
) -> None:
    link = f"https://www.google.com/url?sa=t&{name}={carried}&usg=x"
    out = unwrap_redirect(link)
    assert out == link or check_url(canonical_url(out)) == canonical_url(out)


@pytest.mark.parametrize(
    ("text", "lacks"),
    [
        ("www.example-news.co.uk/london", True),
        ("example.org", True),
        ("localhost:8080/feed", True),
        ("127.0.0.1:8765/news", True),
        ("https://example.org/", False),
        ("ftp://example.org/", False),
        ("mailto:desk@example.org", False),
        ("javascript:alert(1)", False),
        ("", False),
        ("two words", False),
    ],
)
def test_lacks_scheme_knows_an_address_typed_without_https(text: str, lacks: bool) -> None:
    assert lacks_scheme(text) is lacks
