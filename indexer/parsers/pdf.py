"""PDF: per-page text re-flowed into paragraphs, with 1-based page numbers and headings.

Hard line wraps and hyphenation are joined, drop caps re-attached, lines repeated at the top
or bottom of most pages (running headers, footers, page numbers) dropped. Headings come from
the document outline and from type: short lines set larger than the body text, or set all in
bold or italic at body size apart from the paragraphs around them. Tables are not recognised:
their cells arrive as lines of text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import reduce

from indexer.parsers.pdf_text import PdfContent, PdfLine, read_pdf
from indexer.parsers.sections import SectionBuilder, clean_heading
from indexer.records import ParsedDocument

MEDIA_TYPE = "application/pdf"

_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?$", re.IGNORECASE)
_ITEM = re.compile(r"^(?:[-•▪●◦*–]\s|\d{1,3}[.)]\s)")
_TERMINAL = (".", "!", "?", ":", ";", "。", "！", "？", "；", "”", '"')
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
_EDGE_LINES = 2  # how many lines at each end of a page may be running header/footer
_LARGER = 1.08  # a heading's size over the body size: 11.5pt body -> 12.5pt headings
_HEADING_CHARS = 150
_HEADING_LINES = 3  # a heading wrapped over more lines than this is display text
_NOT_HEADING_END = (".", ",", ";", "。", "，", "；")


def _outline_titles(content: PdfContent) -> dict[str, int]:
    """Outline (bookmark) titles, normalised, with their depth as a heading level."""
    titles: dict[str, int] = {}
    for title, depth in content.outline:
        key = clean_heading(title).lower()
        if key:
            titles.setdefault(key, min(depth, 6))
    return titles


def _edge_key(line: str) -> str:
    return _DIGITS.sub("#", " ".join(line.split()).lower())


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Keys of lines that open or close most pages: running headers and footers."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        edges = {_edge_key(line) for line in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]}
        seen.update(edges)
    return {key for key, count in seen.items() if count >= max(3, 0.6 * len(pages))}


def _join(previous: str, line: str) -> str:
    if len(previous) == 1 and previous.isupper() and line[:1].islower():
        return previous + line  # a drop cap: "T" + "he Boots"
    if (
        previous.endswith("-")
        and len(previous) > 1
        and previous[-2].isalpha()
        and line[:1].islower()
    ):
        return previous[:-1] + line  # hyphenation at the line end
    if _CJK.match(previous[-1:]) and _CJK.match(line[:1]):
        return previous + line
    return previous + " " + line


def _paragraphs(lines: list[str]) -> list[str]:
    """Re-flow one page's lines: a short line ending a sentence, or a short line before a
    capitalised one, ends a paragraph; list items start one."""
    width = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current = ""
    for index, line in enumerate(lines):
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if current and _ITEM.match(line):
            paragraphs.append(current)
            current = ""
        current = _join(current, line) if current else line
        following = lines[index + 1] if index + 1 < len(lines) else ""
        short = len(line) < 0.8 * width
        ends = line.endswith(_TERMINAL) and short
        label = (
            len(line) < 0.6 * width and following[:1].isupper() and not line.endswith((",", "-"))
        )
        if (ends or label) and not (len(line) == 1 and line.isupper()):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs


@dataclass(frozen=True, slots=True)
class _BodyType:
    """The body text's size, and whether bold or italic at that size sets a line apart
    (not when the body text itself is mostly bold or italic)."""

    size: float
    bold: bool
    italic: bool


def _body_type(pages: Sequence[Sequence[PdfLine]]) -> _BodyType:
    sizes: Counter[float] = Counter()
    bold: Counter[float] = Counter()
    italic: Counter[float] = Counter()
    for line in (line for lines in pages for line in lines if line.size):
        sizes[line.size] += len(line.text)
        bold[line.size] += len(line.text) if line.bold else 0
        italic[line.size] += len(line.text) if line.italic else 0
    if not sizes:
        return _BodyType(0.0, False, False)
    size = sizes.most_common(1)[0][0]
    plain = 0.5 * sizes[size]
    return _BodyType(size, bold[size] < plain, italic[size] < plain)


def _larger(line: PdfLine, body: _BodyType) -> bool:
    return line.size >= body.size * _LARGER


def _emphasised(line: PdfLine, body: _BodyType) -> bool:
    return line.size >= body.size and ((line.bold and body.bold) or (line.italic and body.italic))


def _could_head(text: str) -> bool:
    return (
        sum(char.isalpha() for char in text) >= 2
        and len(text) <= _HEADING_CHARS
        and not text.endswith(_NOT_HEADING_END)
        and not _ITEM.match(text)
    )


def _heading_run(lines: list[PdfLine], index: int, body: _BodyType) -> int | None:
    """The end of a heading starting at `lines[index]`: up to `_HEADING_LINES` lines of one
    larger size, or of body-size emphasis standing apart from the text around it."""
    line = lines[index]
    larger = _larger(line, body)
    if not line.text or not (larger or _emphasised(line, body)):
        return None
    end = index + 1
    while end < len(lines) and lines[end].text and _same_type(lines[end], line):
        end += 1
    if end - index > _HEADING_LINES or not _could_head(
        " ".join(run.text for run in lines[index:end])
    ):
        return None
    if not larger and _inside_paragraph(lines, index, end):
        return None  # an emphasised phrase, not a heading
    return end


def _inside_paragraph(lines: list[PdfLine], index: int, end: int) -> bool:
    """Whether `lines[index:end]` continue an open sentence of body text, or run on into
    the next line."""
    after = lines[end].text if end < len(lines) else ""
    if after[:1].islower():
        return True
    before = next((prior for prior in reversed(lines[:index]) if prior.text), None)
    return (
        before is not None
        and before.size == lines[index].size
        and not before.text.endswith(_TERMINAL)
    )


def _blocks(lines: list[PdfLine], body: _BodyType) -> Iterator[tuple[str, float | None]]:
    """Line texts in order, each heading run merged into one `(heading, font size)`; every
    other line comes with size None."""
    index = 0
    while index < len(lines):
        end = _heading_run(lines, index, body)
        if end is None:
            yield lines[index].text, None
            index += 1
        else:
            yield reduce(_join, (line.text for line in lines[index:end])), lines[index].size
            index = end


def _levels(pages: list[list[tuple[str, float | None]]]) -> dict[float, int]:
    """Heading levels by size rank among the headings found: the largest is level 1."""
    sizes = {size for blocks in pages for _, size in blocks if size is not None}
    return {size: min(rank, 6) for rank, size in enumerate(sorted(sizes, reverse=True), 1)}


def _same_type(line: PdfLine, other: PdfLine) -> bool:
    return (line.size, line.bold, line.italic) == (other.size, other.bold, other.italic)


def _body_lines(pages: Sequence[Sequence[PdfLine]]) -> list[list[PdfLine]]:
    """Each page's lines without running headers/footers and page numbers at its edges."""
    running = _running_lines([[line.text for line in lines if line.text] for lines in pages])
    kept_pages = []
    for lines in pages:
        content = [line for line in lines if line.text]
        edges = {id(line) for line in content[:_EDGE_LINES] + content[-_EDGE_LINES:]}
        kept_pages.append(
            [
                line
                for line in lines
                if not (
                    id(line) in edges
                    and (_edge_key(line.text) in running or _PAGE_NUMBER.match(line.text))
                )
            ]
        )
    return kept_pages


def parse_pdf(data: bytes, *, max_pages: int | None = None) -> ParsedDocument:
    """Parse a PDF; each page yields re-flowed paragraphs and headings with `page`.

    Headings are outline entries found on the page, and short runs of lines set larger than
    the body text or emphasised at body size (larger sizes give higher levels). The title is
    the document information title, else the first heading. Raises `ParseError` for corrupt
    or password-protected files and for PDFs without text, and `PayloadTooLarge` for more
    than `max_pages` pages, before any page is read.
    """
    content = read_pdf(data, max_pages=max_pages)
    lines = _body_lines(content.pages)
    body = _body_type(lines)
    pages = [list(_blocks(page, body)) for page in lines]
    levels = _levels(pages)
    outline = _outline_titles(content)
    builder = SectionBuilder(MEDIA_TYPE)
    first_heading: str | None = None
    for number, blocks in enumerate(pages, start=1):
        kept: list[str] = []
        for text, size in blocks:
            styled = levels[size] if size is not None else None
            level = outline.pop(clean_heading(text).lower(), styled) if text else None
            if level is None:
                kept.append(text)
                continue
            for paragraph in _paragraphs(kept):
                builder.add(paragraph, page=number)
            kept = []
            builder.heading(level, text, page=number)
            first_heading = first_heading or clean_heading(text)
        for paragraph in _paragraphs(kept):
            builder.add(paragraph, page=number)
    return builder.build(
        title=content.title or first_heading,
        metadata={"pages": len(content.pages)},
        empty_message="PDF has no extractable text (scanned or image-only?)",
    )
