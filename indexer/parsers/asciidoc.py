"""AsciiDoc, line by line: section titles, lists, `|===` tables, listing blocks, paragraphs.

A reader of the common subset, not a full AsciiDoc processor: attributes, includes,
macros and conditionals are not evaluated (attribute and comment lines are dropped).
"""

from __future__ import annotations

import re

from indexer.parsers.decoding import decode_text
from indexer.parsers.markup import list_item, markdown_table
from indexer.parsers.sections import SectionBuilder, normalize_text
from indexer.records import ParsedDocument

MEDIA_TYPE = "text/asciidoc"

_TITLE = re.compile(r"^(={1,6})\s+(\S.*)$")
_ITEM = re.compile(r"^\s*(\*{1,5}|-|\.{1,5})\s+(\S.*)$")
_ATTRIBUTE = re.compile(r"^:[\w-]+!?:.*$")
_DELIMITERS = {"----": "code", "....": "code", "````": "code", "____": "text", "****": "text"}
_TABLE = re.compile(r"^[|!,]===\s*$")
_SKIP = re.compile(r"^(?://(?!/)|\[[^\]]*\]\s*$|ifdef::|ifndef::|endif::|include::)")


class _Reader:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.i = 0
        self.builder = SectionBuilder(MEDIA_TYPE)
        self.title: str | None = None

    def run(self) -> None:
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                self.builder.add(" ".join(line.strip() for line in paragraph))
                paragraph.clear()

        while self.i < len(self.lines):
            line = self.lines[self.i]
            stripped = line.strip()
            self.i += 1
            if not stripped:
                flush()
            elif stripped == "////":
                flush()
                self.until("////")
            elif _ATTRIBUTE.match(stripped) or _SKIP.match(stripped):
                continue
            elif match := _TITLE.match(line):
                flush()
                level = len(match.group(1))
                self.title = self.title or (match.group(2).strip() if level == 1 else None)
                self.builder.heading(level, match.group(2))
            elif stripped in _DELIMITERS:
                flush()
                body = self.until(stripped)
                if _DELIMITERS[stripped] == "code":
                    self.builder.add("```\n" + "\n".join(body) + "\n```", kind="code")
                else:
                    self.builder.add("\n".join(body))
            elif _TABLE.match(stripped):
                flush()
                self.table(self.until(stripped))
            elif stripped.startswith("|"):
                flush()
                rows = [stripped]
                while self.i < len(self.lines) and self.lines[self.i].strip().startswith("|"):
                    rows.append(self.lines[self.i].strip())
                    self.i += 1
                self.table(rows)
            elif _ITEM.match(line):
                flush()
                self.items(line)
            elif stripped.startswith(".") and not stripped.startswith(".."):
                flush()
                self.builder.add(stripped[1:])  # a block title
            else:
                paragraph.append(line)
        flush()

    def until(self, delimiter: str) -> list[str]:
        body: list[str] = []
        while self.i < len(self.lines) and self.lines[self.i].strip() != delimiter:
            body.append(self.lines[self.i])
            self.i += 1
        self.i += 1
        return body

    def items(self, first: str) -> None:
        lines: list[str] = []
        numbers: dict[int, int] = {}
        line: str | None = first
        while line is not None:
            match = _ITEM.match(line)
            if match is None:
                break
            marker, text = match.groups()
            depth = len(marker) - 1 if marker != "-" else 0
            if marker.startswith("."):
                numbers[depth] = numbers.get(depth, 0) + 1
                lines.append(list_item(text, depth, f"{numbers[depth]}."))
            else:
                lines.append(list_item(text, depth))
            line = self.lines[self.i] if self.i < len(self.lines) else None
            if line is not None and _ITEM.match(line):
                self.i += 1
            else:
                line = None
        self.builder.add("\n".join(lines), kind="list")

    def table(self, body: list[str]) -> None:
        rows: list[list[str]] = []
        cells: list[str] = []
        width = 0
        for line in body:
            if not line.strip():
                if cells:  # a blank line ends a row written one cell per line
                    rows.append(cells)
                    width = width or len(cells)
                    cells = []
                continue
            parts = [cell.strip() for cell in line.strip().split("|")[1:]]
            cells.extend(parts)
            if (width and len(cells) >= width) or (not width and len(parts) > 1):
                rows.append(cells)
                width = width or len(cells)
                cells = []
        if cells:
            rows.append(cells)
        self.builder.add(markdown_table(rows), kind="table")


def parse_asciidoc(data: bytes) -> ParsedDocument:
    """Parse AsciiDoc into Markdown sections; the level-0 `= Title` is the title."""
    reader = _Reader(normalize_text(decode_text(data)).split("\n"))
    reader.run()
    return reader.builder.build(title=reader.title, empty_message="AsciiDoc file has no text")
