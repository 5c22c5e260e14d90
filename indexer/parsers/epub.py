"""EPUB: the spine's XHTML chapters in reading order, each read like an HTML page."""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote

from lxml import etree
from selectolax.lexbor import LexborHTMLParser

from indexer.errors import ParseError
from indexer.parsers.archive import open_zip, read_entry
from indexer.parsers.html import add_html, decode_html
from indexer.parsers.sections import SectionBuilder
from indexer.records import ParsedDocument

MEDIA_TYPE = "application/epub+zip"

_KIND = "EPUB"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def _xml(data: bytes, name: str) -> Any:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"corrupt EPUB: {name} is not valid XML ({exc})") from exc


def _spine(archive: Any) -> tuple[list[str], str | None]:
    """Chapter paths in reading order, and the book's title."""
    container = _xml(read_entry(archive, "META-INF/container.xml", _KIND), "container.xml")
    rootfile = container.find(f".//{_CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise ParseError("corrupt EPUB: container.xml names no package file")
    opf_path = rootfile.get("full-path")
    opf = _xml(read_entry(archive, opf_path, _KIND), opf_path)
    base = posixpath.dirname(opf_path)
    manifest = {
        item.get("id"): posixpath.normpath(posixpath.join(base, unquote(item.get("href", ""))))
        for item in opf.iter(f"{_OPF}item")
    }
    chapters = [
        manifest[ref.get("idref")]
        for ref in opf.iter(f"{_OPF}itemref")
        if ref.get("idref") in manifest and ref.get("linear") != "no"
    ]
    title = next((t.text.strip() for t in opf.iter(_DC_TITLE) if t.text and t.text.strip()), None)
    return chapters, title


def parse_epub(data: bytes) -> ParsedDocument:
    """Parse an EPUB book: chapters in spine order as Markdown; the title is `dc:title`."""
    builder = SectionBuilder(MEDIA_TYPE)
    with open_zip(data, _KIND) as archive:
        chapters, title = _spine(archive)
        names = set(archive.namelist())
        for chapter in chapters:
            if chapter in names:
                html = decode_html(read_entry(archive, chapter, _KIND))
                add_html(builder, LexborHTMLParser(html), strip_chrome=False)
    return builder.build(
        title=title, metadata={"chapters": len(chapters)}, empty_message="EPUB has no text"
    )
