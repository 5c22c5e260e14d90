"""OpenDocument text, spreadsheets and presentations (.odt, .ods, .odp) from content.xml.

The XML is small and regular, so it is read with lxml directly (entities and network
access off) rather than through a library.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from indexer.errors import ParseError
from indexer.parsers.archive import open_zip, read_entry
from indexer.parsers.markup import GridCell, grid_rows, list_item, markdown_table
from indexer.parsers.sections import Outline, SectionBuilder
from indexer.records import ParsedDocument

ODT_MEDIA_TYPE = "application/vnd.oasis.opendocument.text"
ODS_MEDIA_TYPE = "application/vnd.oasis.opendocument.spreadsheet"
ODP_MEDIA_TYPE = "application/vnd.oasis.opendocument.presentation"

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_MAX_REPEAT = 256  # ods repeats an empty cell 16,384 times to pad a row; text is never that wide


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{_NS[prefix]}}}{local}"


_H, _P, _LIST, _ITEM, _HEADER = (
    _q("text:h"),
    _q("text:p"),
    _q("text:list"),
    _q("text:list-item"),
    _q("text:list-header"),
)
_TABLE, _ROW, _CELL, _COVERED = (
    _q("table:table"),
    _q("table:table-row"),
    _q("table:table-cell"),
    _q("table:covered-table-cell"),
)
_S, _TAB, _BR, _NOTE = _q("text:s"), _q("text:tab"), _q("text:line-break"), _q("text:note")
_SECTIONS = frozenset(
    _q(n)
    for n in ("text:section", "text:soft-page-break", "table:table-header-rows", "table:table-rows")
)
_FRAMES = frozenset(_q(n) for n in ("draw:frame", "draw:text-box", "draw:g", "draw:custom-shape"))
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _inline(node: Any) -> str:
    """Text of a paragraph-like element: spans, links, spaces, tabs and breaks."""
    parts = [node.text or ""]
    for child in node:
        if child.tag == _S:
            parts.append(" " * int(child.get(_q("text:c"), "1") or 1))
        elif child.tag == _TAB:
            parts.append("\t")
        elif child.tag == _BR:
            parts.append("\n")
        elif child.tag != _NOTE:
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


class _Reader:
    def __init__(self, builder: SectionBuilder) -> None:
        self.builder = builder
        self.page: int | None = None

    def blocks(self, parent: Any) -> None:
        for node in parent:
            tag = node.tag
            if tag == _H:
                level = int(node.get(_q("text:outline-level"), "1") or 1)
                self.builder.heading(level, _inline(node), page=self.page)
            elif tag == _P:
                self.builder.add(_inline(node), page=self.page)
            elif tag == _LIST:
                lines: list[str] = []
                self.list(node, 0, lines)
                self.builder.add("\n".join(lines), page=self.page, kind="list")
            elif tag == _TABLE:
                self.table(node)
            elif tag in _SECTIONS or tag in _FRAMES:
                self.blocks(node)

    def list(self, node: Any, depth: int, lines: list[str]) -> None:
        for item in node:
            if item.tag not in (_ITEM, _HEADER):
                continue
            for child in item:
                if child.tag == _LIST:
                    self.list(child, depth + 1, lines)
                elif child.tag in (_P, _H) and _inline(child).strip():
                    lines.append(list_item(_inline(child), depth))

    def table(self, node: Any) -> None:
        rows: list[list[GridCell]] = []
        for row in node.iter(_ROW):
            repeat_rows = min(int(row.get(_q("table:number-rows-repeated"), "1") or 1), _MAX_REPEAT)
            cells: list[GridCell] = []
            for cell in row:
                if cell.tag not in (_CELL, _COVERED):
                    continue
                repeat = int(cell.get(_q("table:number-columns-repeated"), "1") or 1)
                if cell.tag == _COVERED:
                    continue  # covered by a spanning cell, which the grid repeats
                text = " ".join(_inline(p) for p in cell.iter(_P, _H)).strip()
                span = (
                    int(cell.get(_q("table:number-rows-spanned"), "1") or 1),
                    int(cell.get(_q("table:number-columns-spanned"), "1") or 1),
                )
                cells.extend([GridCell(text, *span)] * min(repeat, _MAX_REPEAT))
            while cells and not cells[-1].text:
                cells.pop()
            rows.extend([cells] * (repeat_rows if any(c.text for c in cells) else 1))
        grid = grid_rows(rows)
        self.builder.add(markdown_table(grid), page=self.page, kind="table")

    def slides(self, body: Any) -> None:
        for number, page in enumerate(body.iter(_q("draw:page")), start=1):
            self.page = number
            self.builder.outline = Outline()
            for frame in page.iter(_q("draw:frame")):
                if frame.get(_q("presentation:class")) == "title":
                    title = " ".join(_inline(p) for p in frame.iter(_P))
                    self.builder.heading(1, title, page=number)
            for frame in page:
                if frame.get(_q("presentation:class")) != "title":
                    self.blocks(frame)

    def sheets(self, body: Any) -> None:
        for table in body.iter(_TABLE):
            name = table.get(_q("table:name"), "")
            if name:
                self.builder.heading(2, name)
            self.table(table)


def _parse(data: bytes, media_type: str, kind: str) -> ParsedDocument:
    with open_zip(data, kind) as archive:
        content = read_entry(archive, "content.xml", kind)
        meta = read_entry(archive, "meta.xml", kind) if "meta.xml" in archive.namelist() else b""
    try:
        root = etree.fromstring(content, _PARSER)
        title_nodes = etree.fromstring(meta, _PARSER).iter(_q("dc:title")) if meta else iter(())
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"corrupt {kind}: {exc}") from exc
    body = root.find(_q("office:body"))
    if body is None:
        raise ParseError(f"not an {kind} file (no document body)")
    builder = SectionBuilder(media_type)
    reader = _Reader(builder)
    for part in body:
        if part.tag == _q("office:presentation"):
            reader.slides(part)
        elif part.tag == _q("office:spreadsheet"):
            reader.sheets(part)
        else:
            reader.blocks(part)
    title = next((t.text for t in title_nodes if t.text and t.text.strip()), None)
    return builder.build(title=title, empty_message=f"{kind} has no text")


def parse_odt(data: bytes) -> ParsedDocument:
    """Parse an OpenDocument text: headings by outline level, lists, tables with spans."""
    return _parse(data, ODT_MEDIA_TYPE, "ODT")


def parse_ods(data: bytes) -> ParsedDocument:
    """Parse an OpenDocument spreadsheet: a `## name` heading and a table per sheet."""
    return _parse(data, ODS_MEDIA_TYPE, "ODS")


def parse_odp(data: bytes) -> ParsedDocument:
    """Parse an OpenDocument presentation: slide titles as headings, `page` = slide number."""
    return _parse(data, ODP_MEDIA_TYPE, "ODP")
