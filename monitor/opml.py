"""OPML, the format feed readers exchange subscription lists in: read and write."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import NamedTuple
from xml.parsers import expat

from monitor.models import Feed


class Outline(NamedTuple):
    """One feed an OPML file lists, with the line its outline starts on."""

    name: str
    url: str
    line: int


class OPMLSyntaxError(ValueError):
    """The file is not well-formed XML; line and column (1-based) say where."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line, self.column = line, column


def read_opml(path: Path) -> list[Outline]:
    """Every outline with an xmlUrl, at any depth, named by its title, else its text, else its
    URL (a blank attribute does not count). Outlines may carry a namespace prefix. OSError when
    the file cannot be read; OPMLSyntaxError when it is not XML."""
    data = path.read_bytes()
    listed: list[Outline] = []
    # expat itself, for the line of each outline; it expands no external entity and refuses
    # entity expansion bombs, as ElementTree (which uses it) does
    parser = expat.ParserCreate()

    def start(tag: str, attributes: dict[str, str]) -> None:
        if tag.rpartition(":")[2] != "outline":
            return
        url = (attributes.get("xmlUrl") or "").strip()
        if url:
            name = (attributes.get("title") or "").strip() or (attributes.get("text") or "").strip()
            listed.append(Outline(name or url, url, parser.CurrentLineNumber))

    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise OPMLSyntaxError(expat.ErrorString(exc.code), exc.lineno, exc.offset + 1) from exc
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
