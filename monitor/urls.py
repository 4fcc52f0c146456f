"""Pure URL rules: which URLs are fetched at all, and one canonical spelling per article.

The canonical URL identifies an article however many feeds carry it and whichever campaign
parameters they add, so two spellings of the same link must canonicalise to the same string
and canonicalising twice changes nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import unicodedata
from urllib.parse import (
    SplitResult,
    quote,
    unquote,
    unquote_plus,
    urljoin,
    urlsplit,
    urlunsplit,
)

import idna

from monitor.errors import BadURL

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

# Parameters added by newsletters, social networks and ad platforms: they say where a reader
# came from, never which article they asked for.
TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc",
        "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "__s",
        "ocid", "cmp", "ref_src", "ref_url", "at_medium", "at_campaign", "at_custom1",
        "at_custom2", "at_custom3", "at_custom4", "at_link_id", "at_link_origin",
        "at_link_type", "at_format", "at_bbc_team", "at_ptr_name", "at_campaign_type",
    }
)  # fmt: skip

# Links that only pass their reader on to an address they carry in a query parameter: Google
# Alerts feeds (and Google's other redirects), the old Google News feeds and Bing News feeds.
# (host, path) -> the parameters that may carry the address, in the order they are read.
_GOOGLE = re.compile(r"(?:www\.)?google\.(?:com|co\.[a-z]{2}|com\.[a-z]{2}|[a-z]{2})")
_REDIRECT_PATHS: dict[str, tuple[str, ...]] = {"/url": ("url", "q")}
_REDIRECTORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("news.google.com", "/news/url"): ("url",),
    ("www.bing.com", "/news/apiclick.aspx"): ("url",),
    ("bing.com", "/news/apiclick.aspx"): ("url",),
}
MAX_UNWRAP = 3  # a redirect link inside a redirect link is unwrapped too, this many deep

# Characters left as they are in a path or query; everything else is percent-encoded, so
# "é" and "%C3%A9" (or a raw space and "%20") give the same canonical URL.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def check_url(url: str) -> str:
    """Return url unchanged if it is one we fetch; raise BadURL saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise BadURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if _has_forbidden_char(url, spaces=True):
        raise BadURL(f"URL contains a space or control character: {url[:100]!r}")
    _split_checked(url)
    return url


def canonical_url(url: str, base: str | None = None) -> str:
    """The one spelling of url (resolved against base) used to recognise an article.

    Lower-case scheme and host, IDNA host, no default port, no fragment, no tracking
    parameters, other parameters kept in order. Raises BadURL for what check_url refuses.
    """
    text = url.strip()
    if base:
        try:
            text = urljoin(base.strip(), text)
        except ValueError as exc:  # an unclosed "[" in either
            raise BadURL(f"malformed URL {text[:100]!r}: {exc}") from None
    if _has_forbidden_char(text, spaces=False):
        raise BadURL(f"URL contains a control character: {text[:100]!r}")
    parts = _split_checked(text)
    scheme = parts.scheme.lower()
    host = _canonical_host(parts.hostname or "")
    port = parts.port
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _canonical_path(parts.path)
    query = _canonical_query(parts.query)
    return check_url(urlunsplit((scheme, netloc, path, query, "")))


def unwrap_redirect(url: str) -> str:
    """The address a redirect link passes its reader on to, or url itself when it is not one.

    A Google Alerts feed links every article through
    https://www.google.com/url?rct=j&sa=t&url=ARTICLE&ct=ga&usg=..., and Bing News feeds
    through bing.com/news/apiclick.aspx?...&url=ARTICLE. Fetched, such a link goes through
    the redirector, which may answer with a redirect notice rather than the article (scripts
    and meta refresh are never followed); kept, it gives one article as many addresses as
    there are alerts carrying it, and sends readers of the digest through the redirector.
    The address carried must itself be an http(s) URL that check_url accepts (or whose
    canonical spelling it accepts); otherwise url stands.
    """
    for _ in range(MAX_UNWRAP):
        target = _redirect_target(url)
        if target is None:
            break
        url = target
    return url


def _redirect_target(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    names = _REDIRECTORS.get((host, parts.path))
    if names is None and _GOOGLE.fullmatch(host):
        names = _REDIRECT_PATHS.get(parts.path)
    if names is None:
        return None
    # "+" stays "+": a web address holds no spaces, and a path may hold a plus
    given = {
        unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in parts.query.split("&"))
    }
    for name in names:
        target = given.get(name, "").strip()
        if is_web_address(target):
            return fetchable(target)
    return None


def is_web_address(text: str) -> bool:
    """Whether text begins as an http(s) URL does (any case), whatever follows."""
    return text[:8].lower().startswith(("http://", "https://"))


def lacks_scheme(text: str) -> bool:
    """Whether text is a web address typed without its scheme, as people write them:
    "www.example.org/news" or "localhost:8080/feed" (not "mailto:x" nor "ftp://x")."""
    text = text.strip()
    if not text or "://" in text or any(c.isspace() for c in text):
        return False
    before, colon, after = text.partition("/")[0].partition(":")
    return bool(before) and (not colon or after[:1].isdigit())


def fetchable(url: str) -> str | None:
    """url as it can be fetched: itself when check_url accepts it, else its canonical
    spelling (a raw space in the path is fetchable encoded); None when neither is a URL we
    fetch."""
    try:
        canonical = canonical_url(url)
    except BadURL:
        return None
    try:
        return check_url(url)
    except BadURL:
        return canonical


def is_tracking_parameter(name: str) -> bool:
    """True for query parameters that only say where a reader came from (utm_source, fbclid)."""
    key = unquote_plus(name).strip().lower()
    return key.startswith(TRACKING_PREFIXES) or key in TRACKING_PARAMETERS


def _has_forbidden_char(url: str, *, spaces: bool) -> bool:
    """Whether url holds a control or format character (or, if asked, a space)."""
    if url.isascii():  # ASCII has no format characters, and its controls are not printable
        return not url.isprintable() or (spaces and " " in url)
    return any(_is_forbidden_char(c) or (spaces and c.isspace()) for c in url)


def _is_forbidden_char(c: str) -> bool:
    # Cc covers CR, LF, NUL, DEL and the C1 controls; Cf covers bidi overrides and
    # zero-width characters, which only ever serve to disguise a URL; Cs, a lone surrogate, is
    # a byte that was not UTF-8 (a command-line argument) and no request can carry it.
    return unicodedata.category(c) in ("Cc", "Cf", "Cs")


def _split_checked(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadURL(f"malformed URL {url[:100]!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"{scheme}: URLs" if scheme else "URLs without a scheme"
        raise BadURL(f"only http and https URLs are fetched, not {shown}")
    if "@" in parts.netloc:
        raise BadURL("URL carries a user name or password (user@host)")
    if "\\" in parts.netloc:
        raise BadURL("URL has a backslash in its host")
    if not parts.hostname:
        raise BadURL(f"URL has no host: {url[:100]!r}")
    if port == 0:
        raise BadURL("URL has port 0")
    return parts


def _canonical_host(host: str) -> str:
    # IDNA maps some characters to a dot ("․" U+2024 becomes "."): strip after mapping too, so
    # that the canonical spelling of a URL is its own canonical spelling
    canonical = _encoded_host(host.lower().rstrip(".")).rstrip(".")
    if not canonical:
        raise BadURL(f"URL has no host: {host!r} is only dots")
    return canonical


def _encoded_host(host: str) -> str:
    if ":" in host:  # an IPv6 literal; urlsplit already removed the brackets
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise BadURL(f"bad IPv6 address in URL: {host!r}") from None
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            raise BadURL(f"host {host!r} is not a valid international domain name") from None


def _canonical_path(path: str) -> str:
    if "." in path:
        path = _remove_dot_segments(path)
    return _upper_escapes(quote(path, safe=_PATH_SAFE)) or "/"


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")
    out: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
            continue
        if last:  # "/a/b/.." names the folder "/a/", trailing slash included
            out.append("")
    return "/".join(out)


def _canonical_query(query: str) -> str:
    kept = [
        _upper_escapes(quote(pair, safe=_QUERY_SAFE))
        for pair in query.split("&")
        if pair and not is_tracking_parameter(pair.split("=", 1)[0])
    ]
    return "&".join(kept)


def _upper_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda m: m[0].upper(), text)


def same_feed(url: str) -> str:
    """A feed's URL as compared for duplicates: canonical, and http and https alike."""
    with contextlib.suppress(BadURL):  # compared as written, then
        url = canonical_url(url)
    return url.split("://", 1)[-1].rstrip("/")
