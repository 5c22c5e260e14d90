"""PowerPoint (.pptx) via python-pptx: one page per slide, titles as headings, lists, tables."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import pptx
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.oxml.ns import qn

from indexer.errors import ParseError
from indexer.parsers.archive import open_zip
from indexer.parsers.markup import GridCell, grid_rows, list_item, markdown_table
from indexer.parsers.ooxml import is_strict, to_transitional
from indexer.parsers.sections import Outline, SectionBuilder, clean_heading
from indexer.records import ParsedDocument

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

_KIND = "PPTX"
_TITLES = frozenset({PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE})
_BULLETED = frozenset({PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT})


def _open(data: bytes) -> Any:
    with open_zip(data, _KIND) as archive:
        if "ppt/presentation.xml" not in archive.namelist():
            raise ParseError("not a PPTX file (no presentation inside the zip)")
    if is_strict(data):
        data = to_transitional(data, _KIND)
    try:
        return pptx.Presentation(io.BytesIO(data))
    except Exception as exc:  # python-pptx raises KeyError, ValueError, lxml errors...
        raise ParseError(f"corrupt PPTX: {exc or type(exc).__name__}") from exc


def _placeholder_type(shape: Any) -> Any:
    try:
        return shape.placeholder_format.type if shape.is_placeholder else None
    except (AttributeError, ValueError):
        return None


def _ordered_shapes(shapes: Iterable[Any]) -> list[Any]:
    """Shapes in reading order: top to bottom, then left to right."""
    return sorted(shapes, key=lambda s: ((s.top or 0) // 50_000, s.left or 0))


def _bullet(paragraph: Any, default_bulleted: bool) -> str | None:
    """The list marker for a paragraph ("-" or "1."), None for plain text."""
    ppr = paragraph._p.pPr
    if ppr is not None:
        if ppr.find(qn("a:buNone")) is not None:
            return None
        if ppr.find(qn("a:buAutoNum")) is not None:
            return "1."
        if ppr.find(qn("a:buChar")) is not None:
            return "-"
    return "-" if default_bulleted or paragraph.level > 0 else None


def _text_frame(builder: SectionBuilder, frame: Any, bulleted: bool, page: int) -> None:
    items: list[str] = []
    numbers: dict[int, int] = {}
    for paragraph in frame.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        marker = _bullet(paragraph, bulleted)
        if marker is None:
            if items:
                builder.add("\n".join(items), page=page, kind="list")
                items = []
            builder.add(text, page=page)
            continue
        if marker == "1.":
            numbers[paragraph.level] = numbers.get(paragraph.level, 0) + 1
            marker = f"{numbers[paragraph.level]}."
        items.append(list_item(text, paragraph.level, marker))
    if items:
        builder.add("\n".join(items), page=page, kind="list")


def _table(builder: SectionBuilder, table: Any, page: int) -> None:
    rows: list[list[GridCell]] = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            if cell.is_spanned:
                continue
            span = (cell.span_height, cell.span_width) if cell.is_merge_origin else (1, 1)
            cells.append(GridCell(cell.text, *span))
        rows.append(cells)
    builder.add(markdown_table(grid_rows(rows)), page=page, kind="table")


def _shapes(builder: SectionBuilder, shapes: Iterable[Any], page: int) -> None:
    for shape in _ordered_shapes(shapes):
        kind = _placeholder_type(shape)
        if kind in _TITLES:
            continue
        try:
            shape_type = shape.shape_type
        except NotImplementedError:  # an autoshape kind python-pptx cannot name: still text
            shape_type = None
        if shape_type == MSO_SHAPE_TYPE.GROUP:
            _shapes(builder, shape.shapes, page)
        elif getattr(shape, "has_table", False) and shape.has_table:
            _table(builder, shape.table, page)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            _text_frame(builder, shape.text_frame, kind in _BULLETED, page)


def parse_pptx(data: bytes) -> ParsedDocument:
    """Parse a presentation: each slide's title is a heading, its shapes follow in reading
    order (text, bulleted and numbered lists, tables with merged cells); `page` is the
    slide number. The title is the core properties title, else the first slide's title."""
    presentation = _open(data)
    builder = SectionBuilder(MEDIA_TYPE)
    first_title: str | None = None
    try:
        for number, slide in enumerate(presentation.slides, start=1):
            builder.outline = Outline()  # a slide without a title is under no heading
            title_shape = slide.shapes.title
            title = clean_heading(title_shape.text) if title_shape is not None else ""
            if title:
                builder.heading(1, title, page=number)
                first_title = first_title or title
            _shapes(builder, slide.shapes, number)
        core_title = (presentation.core_properties.title or "").strip()
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"corrupt PPTX: {exc or type(exc).__name__}") from exc
    return builder.build(
        title=core_title or first_title,
        metadata={"slides": len(presentation.slides)},
        empty_message="PPTX has no text",
    )
