"""Excel (.xlsx, .xlsm) via openpyxl: one Markdown table per sheet under the sheet's name."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl

from indexer.errors import ParseError
from indexer.parsers.archive import open_zip
from indexer.parsers.markup import markdown_table
from indexer.parsers.ooxml import is_strict, to_transitional
from indexer.parsers.sections import SectionBuilder
from indexer.records import ParsedDocument

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MACRO_MEDIA_TYPE = "application/vnd.ms-excel.sheet.macroEnabled.12"

_KIND = "XLSX"


def _open(data: bytes) -> Any:
    with open_zip(data, _KIND) as archive:
        if "xl/workbook.xml" not in archive.namelist():
            raise ParseError("not an XLSX file (no workbook inside the zip)")
    if is_strict(data):
        data = to_transitional(data, _KIND)
    try:
        # read_only streams rows instead of building every cell object up front.
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, ValueError, InvalidFileException...
        raise ParseError(f"corrupt XLSX: {exc or type(exc).__name__}") from exc


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _sheet_rows(sheet: Any) -> list[list[str]]:
    """The sheet's non-empty rows, with columns empty in every row removed."""
    if hasattr(sheet, "reset_dimensions"):
        # A stale <dimension> (A1:XFD1048576) would pad every row to it: read real cells only.
        sheet.reset_dimensions()
    rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    rows = [row for row in rows if any(c.strip() for c in row)]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    used = [c for c in range(width) if any(c < len(r) and r[c].strip() for r in rows)]
    return [[row[c] if c < len(row) else "" for c in used] for row in rows]


def parse_xlsx(data: bytes) -> ParsedDocument:
    """Parse a workbook: each worksheet is a `## name` heading over one Markdown table of its
    used cells (formulas as their cached values); the first row is taken as the header."""
    workbook = _open(data)
    builder = SectionBuilder(MEDIA_TYPE)
    try:
        sheets = list(workbook.worksheets)
        for sheet in sheets:
            rows = _sheet_rows(sheet)
            if rows:
                builder.heading(2, sheet.title)
                builder.add(markdown_table(rows), kind="table")
        title = (workbook.properties.title or "").strip() or None
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"corrupt XLSX: {exc or type(exc).__name__}") from exc
    finally:
        workbook.close()
    return builder.build(
        title=title,
        metadata={"sheets": [s.title for s in sheets]},
        empty_message="XLSX has no cell values",
    )
