"""Article extraction: page bytes -> the article's title and text. Pure.

`decode_html` turns bytes into text whatever the page claims about its charset;
`extract_article` runs trafilatura (without comments, favouring precision) and then drops the
asides it leaves between paragraphs ("Read more: <another headline>", newsletter plugs). A
page whose HTML holds no article, or a teaser of one, while its JSON-LD states the article's
body (monitor/jsonld.py) gives that body instead.
trafilatura is imported inside the functions that need it: only extraction worker processes
pay for it, never a command with nothing to extract.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from monitor.errors import ExtractError
from monitor.jsonld import CONTROLS, MARKER, body_paragraphs, stated_bodies
from monitor.models import Extracted
from monitor.stories import text_features

if TYPE_CHECKING:
    from lxml.etree import _Element

# Fewer words than the shortest news brief: what is left is a page furniture, not an article.
MIN_WORDS = 20
# The JSON-LD articleBody replaces the HTML's text only when it has this many times the words:
# the page then shows a teaser or builds the article with scripts.
STATED_SHARE = 2

# --- charsets -----------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([\w.:+-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([\w.:+-]+)"""
    rb"""|<\?xml[^>]*?encoding\s*=\s*["']([\w.:+-]+)""",
    re.IGNORECASE,
)
_PRESCAN_BYTES = 4096  # browsers look at 1024; CMSs often put a long <head> before the meta
# Labels browsers treat as something else (WHATWG Encoding Standard): pages labelled latin-1
# are written in windows-1252 and use its curly quotes and dashes.
_LABEL_ALIASES = {
    "iso8859_1": "cp1252",
    "ascii": "cp1252",
    "iso8859_9": "cp1254",
    "tis_620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
}
# Python codecs no browser accepts; utf-7 in particular smuggles markup past filters.
_REFUSED_CODECS = {"utf_7", "unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined"}
# Detected single-byte Latin codecs that are really windows-1252 on the web in practice.
_LATIN_COUSINS = {"cp1250", "cp1252", "iso8859_1", "iso8859_2", "iso8859_15", "mac_roman", "cp1257"}
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _decode_stray_bytes(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte that is not UTF-8 is read as windows-1252."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bad.decode("cp1252", errors="replace"), error.end


codecs.register_error("monitor-cp1252", _decode_stray_bytes)


def decode_html(content: bytes, headers: Mapping[str, str]) -> str:
    """Page bytes -> text: BOM, then the Content-Type charset, then <meta> or the XML
    declaration, then detection; undecodable bytes become replacement characters.

    A declaration is used only when the bytes decode under it, and bytes that are valid
    UTF-8 with non-ASCII text are UTF-8 whatever the labels say (a wrong label is far more
    common than legacy text that happens to be valid UTF-8). Never raises.
    """
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(codec, errors="replace")
    declared = [_header_charset(headers), _meta_charset(content)]
    codecs_ = [c for c in (_normalize_label(label) for label in declared if label) if c]
    for codec in codecs_:
        if codec.startswith("utf_16") or codec.startswith("utf_32"):
            text = _decode_strict(content, codec)
            if text is not None:
                return text
    text = _decode_strict(content, "utf-8")
    if text is not None:
        return text
    for codec in codecs_:
        text = _decode_strict(content, codec)
        if text is not None:
            return text
    if _damaged_utf8(content, declared_utf8="utf_8" in codecs_):
        return content.decode("utf-8", errors="monitor-cp1252")
    return _decode_detected(content)


def _header_charset(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() == "content-type":
            match = _HEADER_CHARSET.search(value)
            return match[1] if match else None
    return None


def _meta_charset(content: bytes) -> str | None:
    match = _META_CHARSET.search(content[:_PRESCAN_BYTES])
    if not match:
        return None
    label = (match[1] or match[2]).decode("ascii", errors="replace")
    # A page that can be read as ASCII to find its meta tag is not UTF-16 (WHATWG).
    return "utf-8" if label.lower().startswith("utf-16") else label


def _normalize_label(label: str) -> str | None:
    """A charset label -> the Python codec to use, or None when unknown or refused."""
    try:
        info = codecs.lookup(label.strip())
    except (LookupError, ValueError):
        return None
    name = info.name.replace("-", "_")
    if name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return _LABEL_ALIASES.get(name, name)


def _decode_strict(content: bytes, codec: str) -> str | None:
    try:
        return content.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _damaged_utf8(content: bytes, declared_utf8: bool) -> bool:
    """True for UTF-8 with stray bytes: declared UTF-8 with some valid multi-byte sequences
    (legacy text almost never forms one by chance), or undeclared with mostly valid ones."""
    in_sequences = sum(len(m) for m in _UTF8_SEQUENCE.findall(content))
    if declared_utf8:
        return in_sequences > 0
    return in_sequences > 0 and in_sequences * 2 >= len(_NON_ASCII.findall(content))


def _decode_detected(content: bytes) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(content).best()
    codec = _normalize_label(best.encoding) if best is not None else None
    if codec in _LATIN_COUSINS:
        codec = "cp1252" if _decode_strict(content, "cp1252") is not None else codec
    if codec is None:
        return content.decode("utf-8", errors="replace")
    return content.decode(codec, errors="replace")


# --- extraction ---------------------------------------------------------------------------

# "Read more: <headline>", "Related: <headline>", "WATCH: <video>": a label, then a link.
_LABEL = re.compile(
    r"^\s*(read more|read next|related(?: stories| articles| content| reading| links)?"
    r"|also read|also see|see also|more on this(?: story)?|recommended(?: reading)?"
    r"|don[’']?t miss|must read|you (?:may|might) also like|watch|listen|in pictures)"
    r"(\s*[:|»›>–—-]+\s*|\s+)",
    re.IGNORECASE,
)
# Newsletter and app plugs: an invitation, then what it is for.
_PROMO_OPENING = re.compile(
    r"^\s*(sign(?:ing)?[ -]?up|subscribe\b|join\b|follow\b|download\b|get (?:the|our)\b"
    r"|for (?:more (?:stories|news|updates|information)|the latest)\b|click here"
    r"|want (?:more|the latest)|like this (?:story|article)|enjoyed this"
    r"|support (?:our|independent)|never miss|don[’']?t miss)",
    re.IGNORECASE,
)
_PROMO_PURPOSE = re.compile(
    r"newsletter|inbox|\bour app\b|where you live|click here|subscribe here|sign up here"
    r"|follow us|for the latest|latest (?:news|stories)|\bvisit\s+\S+(?:\s\S+)?\W*$",
    re.IGNORECASE,
)
_ASIDE_WORDS = 30  # asides are a headline long; real paragraphs that start alike run longer
_PROMO_WORDS = 40


def extract_page(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """Page bytes and response headers -> the article (what extraction workers run)."""
    return extract_article(decode_html(content, headers), url)


def extract_with_features(url: str, content: bytes, headers: Mapping[str, str]) -> Extracted:
    """What the daemon's extraction workers run: the article, with its text's story features
    computed here rather than in the thread that stores it."""
    extracted = extract_page(url, content, headers)
    return replace(extracted, story=text_features(extracted.text))


def extract_article(html: str, url: str) -> Extracted:
    """HTML -> the article's title (from the page metadata) and text, one paragraph a line.

    Keeps the article and drops navigation, sidebars, comments, footers and related links,
    beside the article and between its paragraphs. Raises ExtractError when no article
    text is left.
    """
    tree = _parse_html(html)
    title = _page_title(tree)
    # read before trafilatura, which drops the page's scripts from the tree
    stated = _own_body(stated_bodies(tree), title) if MARKER in html else None
    try:
        text = _article_text(tree, url, title)
    except ExtractError:
        if stated is None:
            raise
        text = ""
    text = _fuller_text(text, stated)
    if len(text.split()) < MIN_WORDS:
        raise ExtractError(f"no article text found at {url}")
    return Extracted(title=title, text=text)


def _article_text(tree: Any, url: str, title: str | None) -> str:
    """The article's text in the page's HTML, one paragraph a line, asides dropped."""
    body = _extract_body(tree, url)
    blocks = [block for block in body if not _is_aside(block)]
    while blocks and blocks[-1].tag == "head":  # a section label left with nothing under it
        blocks.pop()
    if blocks and title and _same_text(_text_of(blocks[0]), title):
        blocks.pop(0)
    return _render_blocks(blocks)


def _own_body(stated: list[tuple[str, str]], title: str | None) -> str | None:
    """The body the page states for its own article: the only one, or else the only one
    whose headline is the page's title; None when that cannot be told (a page stating the
    bodies of several articles must not lend one of them to its own)."""
    bodies = {body for _, body in stated}
    if len(bodies) > 1:
        own = _fold(title or "")
        bodies = {body for headline, body in stated if _is_within(_fold(headline), own)}
    return bodies.pop() if len(bodies) == 1 else None


def _is_within(headline: str, title: str) -> bool:
    return bool(headline) and headline in title  # titles often add " | Outlet"


def _fuller_text(text: str, stated: str | None) -> str:
    """The HTML's text, or the page's JSON-LD articleBody where that holds at least
    STATED_SHARE times as many words: a page built by scripts, or a paywall's teaser."""
    if stated is None:
        return text
    paragraphs = body_paragraphs(stated)
    words = sum(len(p.split()) for p in paragraphs)
    if words >= MIN_WORDS and words >= STATED_SHARE * len(text.split()):
        return "\n".join(paragraphs)
    return text


def _parse_html(html: str) -> Any:
    from trafilatura.utils import load_html

    # lxml refuses NUL and other C0 controls in text; pages do contain them.
    cleaned = CONTROLS.sub("", html)
    try:
        tree = load_html(cleaned)
    except MemoryError:
        raise  # the worker pool reports it and replaces the process
    except Exception as err:  # any parser failure on a hostile page costs only this page
        raise ExtractError(f"page is not parseable HTML: {err}") from err
    if tree is None:
        raise ExtractError("page is not HTML")
    _drop_comment_sections(tree)
    return tree


# a class or id token naming reader comments: comments, c-comments, comment-list, disqus_thread
_COMMENT_TOKEN = re.compile(r"(?:^|[-_])(?:comments?|disqus)(?:$|[-_])", re.IGNORECASE)
_COMMENT_HEADING = re.compile(
    r"^\s*(?:\d+\s+)?(?:comments?|reader comments|join the conversation|have your say|"
    r"leave a (?:comment|reply)|discussion)\s*:?\s*$",
    re.IGNORECASE,
)
# never drop a container holding this share of the page's text: it may be the article itself
_COMMENT_MAX_SHARE = 0.4


def _drop_comment_sections(tree: Any) -> None:
    """Remove reader-comment sections that trafilatura's own filter misses.

    A section counts as comments by its class or id tokens, its data-component, or a heading
    such as "Join the conversation". Whatever holds a large share of the page's text is kept:
    missing an article is worse than keeping a comment.
    """
    found = [
        element
        for element in tree.iter("section", "div", "aside", "ol", "ul", "footer")
        if _looks_like_comments(element)
    ]
    if not found:
        return  # nothing looks like comments: the page's words need not be counted
    total = len(" ".join(tree.itertext()).split()) or 1
    # only what looks like comments is counted, so nested divs stay linear
    doomed = [e for e in found if len(" ".join(e.itertext()).split()) < _COMMENT_MAX_SHARE * total]
    for element in doomed:
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)


def _looks_like_comments(element: Any) -> bool:
    tokens = f"{element.get('class', '')} {element.get('id', '')}".split()
    tokens.append(element.get("data-component", ""))
    if any(_COMMENT_TOKEN.search(t) for t in tokens if t):
        return True
    first = next(iter(element), None)
    return (
        first is not None
        and first.tag in ("h2", "h3", "h4")
        and bool(_COMMENT_HEADING.match("".join(first.itertext())))
    )


def _page_title(tree: Any) -> str | None:
    from trafilatura.metadata import examine_meta, extract_meta_json, extract_title

    try:
        meta = extract_meta_json(tree, examine_meta(tree))
        title = meta.title or extract_title(tree)
    except MemoryError:
        raise
    except Exception:  # a malformed title is not worth losing the article over
        return None
    title = " ".join(title.split()) if title else ""
    return unicodedata.normalize("NFC", title) or None


def _extract_body(tree: Any, url: str) -> _Element:
    from trafilatura import bare_extraction

    try:
        document = bare_extraction(
            tree,
            url=url,
            include_comments=False,  # its default keeps reader comments
            favor_precision=True,  # measured on tests/data/pages: drops promos, keeps text
            include_tables=True,  # old sites lay out articles in tables
            include_links=True,  # link share tells asides from paragraphs
        )
    except MemoryError:
        raise
    except Exception as err:  # trafilatura raises on some hostile pages; one page fails
        raise ExtractError(f"extraction failed: {type(err).__name__}: {err}") from err
    body = getattr(document, "body", None)
    if body is None:
        raise ExtractError(f"no article text found at {url}")
    return body


def _is_aside(block: _Element) -> bool:
    """True for a block that is furniture between paragraphs rather than the article."""
    text = _text_of(block)
    words = len(text.split())
    if not words:
        return True
    linked = _linked_chars(block)
    if block.tag in ("p", "head", "list") and words <= _ASIDE_WORDS and linked >= 0.8 * len(text):
        return True
    label = _LABEL.match(text)
    if label:
        rest_linked = linked >= 0.5 * len(text[label.end() :])
        # "Related: x" and "READ MORE x" are labels; "Related—and worse—was" may be prose.
        labelled = bool(set(label[2]) & set(":|»›>")) or label[1].isupper()
        if (labelled and words <= _ASIDE_WORDS) or ((labelled or label[2].strip()) and rest_linked):
            return True
    return bool(
        words <= _PROMO_WORDS and _PROMO_OPENING.match(text) and _PROMO_PURPOSE.search(text)
    )


def _text_of(block: _Element) -> str:
    return " ".join("".join(block.itertext()).split())


def _linked_chars(block: _Element) -> int:
    return sum(len(" ".join("".join(ref.itertext()).split())) for ref in block.iter("ref"))


def _same_text(a: str, b: str) -> bool:
    return _fold(a) == _fold(b)


def _fold(text: str) -> str:
    """Text as compared: punctuation dropped, case folded, spaces collapsed."""
    return " ".join(re.sub(r"[^\w\s]", "", text).casefold().split())


def _render_blocks(blocks: list[_Element]) -> str:
    from lxml.etree import Element, strip_tags
    from trafilatura.xml import xmltotxt

    body = Element("body")
    for block in blocks:
        body.append(block)
    strip_tags(body, "ref")  # links were kept only to measure them
    text = xmltotxt(body, include_formatting=False)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return unicodedata.normalize("NFC", "\n".join(line for line in lines if line))
