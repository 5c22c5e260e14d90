"""The Markdown every parser writes: tables, list items and table grids from spanned cells."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["GridCell", "grid_rows", "list_item", "markdown_table", "table_cell"]

_SPACES = re.compile(r"\s+")
_MAX_SPAN = 1000  # a colspan of 10**9 in hostile HTML must not allocate a billion cells


def table_cell(text: str) -> str:
    """One table cell on one line, with `|` escaped so it cannot open a new column."""
    return _SPACES.sub(" ", text).strip().replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A pipe table; the first row is the header. Short rows are padded, empty rows dropped.

    Returns "" when no cell has text.
    """
    cleaned = [[table_cell(c) for c in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    lines = []
    for index, row in enumerate(cleaned):
        padded = [*row, *([""] * (width - len(row)))]
        lines.append("| " + " | ".join(padded) + " |")
        if index == 0:
            lines.append("|" + "|".join(["---"] * width) + "|")
    return "\n".join(lines)


def list_item(text: str, depth: int = 0, marker: str = "-") -> str:
    """A list item indented two spaces per nesting level; continuation lines keep the indent."""
    indent = "  " * max(depth, 0)
    body = "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())
    first, _, rest = body.partition("\n")
    pad = indent + " " * (len(marker) + 1)
    tail = "".join(f"\n{pad}{line}" for line in rest.split("\n")) if rest else ""
    return f"{indent}{marker} {first}{tail}"


@dataclass(frozen=True, slots=True)
class GridCell:
    """A source table cell with its spans (HTML rowspan/colspan, Word gridSpan/vMerge)."""

    text: str
    rowspan: int = 1
    colspan: int = 1


def grid_rows(rows: Sequence[Sequence[GridCell]]) -> list[list[str]]:
    """Lay spanned cells on a grid; a merged cell's text repeats in every slot it covers."""
    grid: dict[tuple[int, int], str] = {}
    width = 0
    for r, row in enumerate(rows):
        c = 0
        for cell in row:
            while (r, c) in grid:
                c += 1
            rowspan = min(max(cell.rowspan, 1), _MAX_SPAN, len(rows) - r)
            colspan = min(max(cell.colspan, 1), _MAX_SPAN)
            for dr in range(rowspan):
                for dc in range(colspan):
                    grid.setdefault((r + dr, c + dc), cell.text)
            c += colspan
            width = max(width, c)
    return [[grid.get((r, c), "") for c in range(width)] for r in range(len(rows))]
