"""OPML, the format feed readers exchange subscription lists in: read and write."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

from monitor.models import Feed


def read_opml(path: Path) -> list[tuple[str, str]]:
    """(name, URL) of every outline with an xmlUrl, at any depth, as the file spells them.
    OSError when the file cannot be read; ET.ParseError (with .position) when it is not XML."""
    tree = ET.parse(path)  # noqa: S314 - the user's own file; expat refuses entity expansion bombs
    listed = []
    for outline in tree.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if url:
            name = outline.get("title") or outline.get("text") or url
            listed.append((name.strip(), url))
    return listed


def write_opml(feeds: Sequence[Feed], title: str, now: datetime) -> str:
    """An OPML 2.0 document listing the feeds (names and URLs escaped)."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        ET.SubElement(body, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
