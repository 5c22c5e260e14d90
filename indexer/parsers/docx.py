"""DOCX via python-docx: body paragraphs and tables in order, Heading/Title styles as path."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import docx
from docx.document import Document
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from indexer.errors import ParseError
from indexer.parsers.sections import SectionBuilder, clean_heading
from indexer.records import ParsedDocument

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

_W_T, _W_BR, _W_CR, _W_TAB = (qn(tag) for tag in ("w:t", "w:br", "w:cr", "w:tab"))
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _open(data: bytes) -> Document:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ParseError("not a DOCX file (not a zip archive)")
    try:
        return docx.Document(io.BytesIO(data))
    except (KeyError, ValueError) as exc:
        # python-docx: KeyError for a missing part, ValueError for a foreign content type.
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            has_document = "word/document.xml" in archive.namelist()
        if has_document:
            raise ParseError(f"unsupported DOCX variant (Strict Open XML?): {exc}") from exc
        raise ParseError("not a DOCX file (no Word document inside the zip)") from exc
    except Exception as exc:  # zip/XML damage surfaces as many library types
        raise ParseError(f"corrupt DOCX: {exc or type(exc).__name__}") from exc


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for Title, N for Heading N, None for body text."""
    try:
        style = paragraph.style
    except (KeyError, ValueError):
        return None
    name = (style.name or "") if style is not None else ""
    if name.lower() == "title":
        return 0
    match = _HEADING_STYLE.match(name)
    return int(match.group(1)) if match else None


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


def _table_text(table: Table) -> str:
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A merged cell is repeated once per grid column it spans.
            if cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def parse_docx(data: bytes) -> ParsedDocument:
    """Parse a Word document: paragraphs and tables become sections in body order.

    `Title` and `Heading N` styles build the heading path; the title is the core
    properties title, else the first Title/Heading paragraph.
    """
    document = _open(data)
    builder = SectionBuilder(MEDIA_TYPE)
    stack: list[tuple[int, str]] = []
    first_heading: str | None = None
    try:
        for block in document.iter_inner_content():
            path = tuple(text for _, text in stack)
            if isinstance(block, Table):
                builder.add(_table_text(block), path)
                continue
            level = _heading_level(block)
            if level is None:
                builder.add(block.text, path)
                for text in _text_box_paragraphs(block):
                    builder.add(text, path)
                continue
            heading = clean_heading(block.text)
            if not heading:
                continue
            builder.note_heading(heading, path)
            first_heading = first_heading or heading
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
        core_title = (document.core_properties.title or "").strip()
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"corrupt DOCX: {exc or type(exc).__name__}") from exc
    return builder.build(
        title=core_title or first_heading,
        empty_message="DOCX has no text",
    )
