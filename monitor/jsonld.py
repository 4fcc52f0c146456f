"""Pure: the article text a page states in its schema.org JSON-LD (`articleBody`).

Pages built by scripts in the reader's browser, and pages behind a paywall, often hold little
of the article in their HTML and all of it in a `<script type="application/ld+json">` block
written for search engines. monitor/extract.py falls back to that text when the HTML gives
none, or far less, so that such a story is matched on its own words rather than on the feed's
summary alone.

Everything here is untrusted page content: a block that is not JSON, is nested without end or
holds no string body gives nothing, and the walk through nested objects is bounded.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

MARKER = "articleBody"  # a page without this string has nothing to give
_MAX_DEPTH = 8  # nesting followed through lists, @graph and mainEntity
_MARKUP = re.compile(r"</?(?:p|br|div|h[1-6]|li|ul|ol|blockquote|span|em|strong|a|b|i)\b", re.I)
# the C0 and C1 control characters but tab, newline and carriage return, and DEL: what no
# article holds, and what a terminal printing a snippet would run (ESC, the 8-bit CSI U+009B)
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote"})


def stated_bodies(tree: Any) -> list[tuple[str, str]]:
    """(headline, articleBody) of every article the page's JSON-LD blocks (lxml tree) state a
    body for, as the page wrote them; the headline is "" when not given."""
    bodies: list[tuple[str, str]] = []
    for script in tree.iter("script"):
        kind = (script.get("type") or "").split(";")[0].strip().lower()
        raw = script.text
        if kind != "application/ld+json" or not raw or MARKER not in raw:
            continue
        try:
            data = json.loads(raw, strict=False)  # pages put raw newlines inside strings
        except (ValueError, RecursionError):
            continue
        _collect(data, bodies, 0)
    return bodies


def _collect(node: Any, bodies: list[tuple[str, str]], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    for item in node if isinstance(node, list) else [node]:
        if isinstance(item, list):
            _collect(item, bodies, depth + 1)
        if not isinstance(item, dict):
            continue
        body, headline = item.get(MARKER), item.get("headline")
        if isinstance(body, str) and body.strip():
            bodies.append((headline if isinstance(headline, str) else "", body))
        for key in ("@graph", "mainEntity"):
            if key in item:
                _collect(item[key], bodies, depth + 1)


def body_paragraphs(body: str) -> list[str]:
    """A stated body as paragraphs of plain text: entities decoded, markup dropped, one
    paragraph a line or a block element, spaces collapsed."""
    text = html.unescape(body)  # some pages escape their markup ("&lt;p&gt;")
    # JSON's escapes can spell what no HTML parser lets through: control characters, and
    # lone surrogates, which no database or mail could encode
    text = _SURROGATES.sub("\ufffd", CONTROLS.sub("", text))
    if _MARKUP.search(text):
        text = _markup_text(text)
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _markup_text(text: str) -> str:
    from lxml import etree
    from lxml.html import fragment_fromstring

    try:
        root = fragment_fromstring(text, create_parent="div")
    except (etree.ParserError, ValueError):  # markup lxml will not take: drop the tags alone
        return re.sub(r"<[^<>]*>", "\n", text)  # [^<>]: one pass, however many "<" lack a ">"
    for element in list(root.iter("script", "style")):
        element.drop_tree()
    for element in root.iter("br", *_BLOCKS):
        element.tail = "\n" + (element.tail or "")
    return str(root.text_content())  # the text nodes only: no comments
