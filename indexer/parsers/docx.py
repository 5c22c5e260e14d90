"""DOCX via python-docx, as Markdown: headings, numbered and bulleted lists, tables with spans.

Strict Open XML files are read after renaming their namespaces (see `ooxml`).
"""

from __future__ import annotations

import io
import re
from typing import Any

import docx
from docx.document import Document
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from indexer.errors import ParseError
from indexer.parsers.archive import open_zip
from indexer.parsers.markup import list_item, markdown_table
from indexer.parsers.ooxml import is_strict, to_transitional
from indexer.parsers.sections import SectionBuilder, clean_heading
from indexer.records import ParsedDocument

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

_W_T, _W_BR, _W_CR, _W_TAB = (qn(tag) for tag in ("w:t", "w:br", "w:cr", "w:tab"))
_W_VAL = qn("w:val")
_W_P, _W_TBL, _W_SDT = qn("w:p"), qn("w:tbl"), qn("w:sdt")
_NUM_PR = f"{qn('w:pPr')}/{qn('w:numPr')}"
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_LIST_STYLE = re.compile(r"^list\s*(bullet|number|paragraph)?\s*(\d)?$", re.IGNORECASE)
_KIND = "DOCX"


def _open(data: bytes) -> Document:
    with open_zip(data, _KIND) as archive:
        if "word/document.xml" not in archive.namelist():
            raise ParseError("not a DOCX file (no Word document inside the zip)")
    if is_strict(data):
        data = to_transitional(data, _KIND)
    try:
        return docx.Document(io.BytesIO(data))
    except (KeyError, ValueError) as exc:
        # python-docx: KeyError for a missing part, ValueError for a foreign content type.
        raise ParseError(f"unsupported DOCX variant: {exc}") from exc
    except Exception as exc:  # zip/XML damage surfaces as many library types
        raise ParseError(f"corrupt DOCX: {exc or type(exc).__name__}") from exc


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError):
        return ""
    return (style.name or "") if style is not None else ""


def _heading_level(name: str) -> int | None:
    """1 for Title, N + 1 for Heading N (as docling writes them), None for body text."""
    if name.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(name)
    return min(int(match.group(1)) + 1, 6) if match else None


class _Numbering:
    """List formats by (numId, level), read from the numbering part on first use."""

    def __init__(self, document: Document) -> None:
        self.formats: dict[tuple[str, int], str] = {}
        self.counters: dict[tuple[str, int], int] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return
        abstract: dict[str, dict[int, str]] = {}
        for node in root.iterchildren(qn("w:abstractNum")):
            levels: dict[int, str] = {}
            for lvl in node.iterchildren(qn("w:lvl")):
                fmt = lvl.find(qn("w:numFmt"))
                level = int(lvl.get(qn("w:ilvl"), "0"))
                levels[level] = fmt.get(_W_VAL, "decimal") if fmt is not None else "decimal"
            abstract[node.get(qn("w:abstractNumId"), "")] = levels
        for num in root.iterchildren(qn("w:num")):
            ref = num.find(qn("w:abstractNumId"))
            levels = abstract.get(ref.get(_W_VAL, "") if ref is not None else "", {})
            for level, fmt in levels.items():
                self.formats[(num.get(qn("w:numId"), ""), level)] = fmt

    def marker(self, num_id: str, level: int) -> str:
        key = (num_id, level)
        fmt = self.formats.get(key, "decimal" if num_id == "style:number" else "bullet")
        if fmt in ("bullet", "none"):
            return "-"
        # A deeper item restarts the numbering of the levels below it.
        for other in [k for k in self.counters if k[0] == num_id and k[1] > level]:
            del self.counters[other]
        self.counters[key] = self.counters.get(key, 0) + 1
        return f"{self.counters[key]}."


def _style_level(style_name: str) -> int:
    """ "List Bullet 2" is the second level: the style, not the numbering, says so."""
    match = _LIST_STYLE.match(style_name)
    return int(match.group(2)) - 1 if match and match.group(2) else 0


def _list_position(paragraph: Paragraph, style_name: str) -> tuple[str, int] | None:
    """(numId, level) when the paragraph is a list item, by numbering or by list style."""
    num_pr = paragraph._p.find(_NUM_PR)
    if num_pr is None:
        try:  # "List Number" and friends carry their numbering in the style
            style = paragraph.style
        except (KeyError, ValueError):
            style = None
        num_pr = style.element.find(_NUM_PR) if style is not None else None
    num_id_node = num_pr.find(qn("w:numId")) if num_pr is not None else None
    if num_pr is not None and num_id_node is not None:
        num_id = num_id_node.get(_W_VAL, "0")
        ilvl = num_pr.find(qn("w:ilvl"))
        level = int(ilvl.get(_W_VAL, "0")) if ilvl is not None else _style_level(style_name)
        return None if num_id == "0" else (num_id, level)
    match = _LIST_STYLE.match(style_name)
    if match and match.group(1) and match.group(1).lower() != "paragraph":
        level = int(match.group(2)) - 1 if match.group(2) else 0
        return (f"style:{match.group(1).lower()}", level)
    return None


def _text_box_paragraphs(paragraph: Paragraph) -> list[str]:
    """Paragraphs inside text boxes anchored in `paragraph`, which `.text` leaves out."""
    # mc:Fallback repeats the mc:Choice content in legacy VML form.
    paragraphs = paragraph._p.xpath(
        ".//w:txbxContent//w:p[not(ancestor::*[local-name()='Fallback'])]"
    )
    return [_xml_paragraph_text(p) for p in paragraphs]


def _xml_paragraph_text(paragraph: Any) -> str:
    parts: list[str] = []
    for element in paragraph.iter(_W_T, _W_BR, _W_CR, _W_TAB):
        if element.tag == _W_T:
            parts.append(element.text or "")
        else:
            parts.append("\t" if element.tag == _W_TAB else "\n")
    return "".join(parts)


def _cell_text(tc: Any) -> str:
    return " ".join(" ".join(_xml_paragraph_text(p).split()) for p in tc.iter(qn("w:p"))).strip()


def _table_rows(table: Table) -> list[list[str]]:
    """The table on its grid: gridSpan repeats a cell across columns, vMerge down rows."""
    rows: list[list[str]] = []
    for tr in table._tbl.tr_lst:
        row: list[str] = [""] * tr.grid_before
        for tc in tr.tc_lst:
            span = max(tc.grid_span, 1)
            column = len(row)
            if tc.vMerge == "continue" and rows and column < len(rows[-1]):
                text = rows[-1][column]
            else:
                text = _cell_text(tc)
            row.extend([text] * span)
        rows.append(row)
    return rows


class _Writer:
    """Turns body blocks into sections, gathering consecutive list items into one list."""

    def __init__(self, builder: SectionBuilder, numbering: _Numbering) -> None:
        self.builder = builder
        self.numbering = numbering
        self.items: list[str] = []
        self.first_heading: str | None = None

    def flush_list(self) -> None:
        if self.items:
            self.builder.add("\n".join(self.items), kind="list")
            self.items = []

    def blocks(self, container: Any, parent: Any) -> None:
        """Paragraphs and tables of a body or cell, including those inside content controls."""
        for child in container.iterchildren():
            if child.tag == _W_P:
                self.paragraph(Paragraph(child, parent))
            elif child.tag == _W_TBL:
                self.table(Table(child, parent))
            elif child.tag == _W_SDT:
                content = child.find(qn("w:sdtContent"))
                if content is not None:
                    self.blocks(content, parent)

    def table(self, table: Table) -> None:
        tcs = [tc for tr in table._tbl.tr_lst for tc in tr.tc_lst]
        if len(tcs) == 1:
            # A one-cell table is a frame around content, not data: read what it holds.
            self.blocks(tcs[0], table)
            return
        self.flush_list()
        self.builder.add(markdown_table(_table_rows(table)), kind="table")

    def paragraph(self, paragraph: Paragraph) -> None:
        style = _style_name(paragraph)
        level = _heading_level(style)
        text = paragraph.text
        if level is not None and clean_heading(text):
            self.flush_list()
            self.builder.heading(level, text)
            self.first_heading = self.first_heading or clean_heading(text)
            return
        position = _list_position(paragraph, style)
        if position is not None and text.strip():
            marker = self.numbering.marker(*position)
            self.items.append(list_item(text, position[1], marker))
        else:
            if text.strip():
                self.flush_list()
            self.builder.add(text)
        for boxed in _text_box_paragraphs(paragraph):
            self.builder.add(boxed)


def parse_docx(data: bytes) -> ParsedDocument:
    """Parse a Word document into Markdown sections in body order.

    `Title` and `Heading N` styles become headings; numbered and bulleted paragraphs
    become nested list items; tables become Markdown tables with merged cells repeated.
    The title is the core properties title, else the first heading.
    """
    document = _open(data)
    builder = SectionBuilder(MEDIA_TYPE)
    try:
        writer = _Writer(builder, _Numbering(document))
        writer.blocks(document.element.body, document._body)
        writer.flush_list()
        core_title = (document.core_properties.title or "").strip()
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"corrupt DOCX: {exc or type(exc).__name__}") from exc
    return builder.build(title=core_title or writer.first_heading, empty_message="DOCX has no text")
