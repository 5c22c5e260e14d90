"""PDF via pypdf: per-page text re-flowed into paragraphs, with 1-based page numbers.

Hard line wraps and hyphenation are joined, drop caps re-attached, lines repeated at the top
or bottom of most pages (running headers, footers, page numbers) dropped, and lines that
match the document outline become headings.
"""

from __future__ import annotations

import io
import re
from collections import Counter

from pypdf import PasswordType, PdfReader

from indexer.errors import ParseError
from indexer.parsers.sections import SectionBuilder, clean_heading, normalize_text
from indexer.records import ParsedDocument

MEDIA_TYPE = "application/pdf"


def _open(data: bytes) -> PdfReader:
    if b"%PDF-" not in data[:1024]:
        raise ParseError("corrupt PDF: no %PDF header")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ParseError("encrypted PDF: it needs a password to open")
        _ = len(reader.pages)  # forces the page tree to load, where most corruption shows
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, KeyError, ValueError...)
        raise ParseError(f"corrupt PDF: {exc or type(exc).__name__}") from exc
    return reader


def _title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a broken info dictionary should not cost us the text
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None


_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?\d+(?:\s*(?:of|/)\s*\d+)?$", re.IGNORECASE)
_ITEM = re.compile(r"^(?:[-•▪●◦*–]\s|\d{1,3}[.)]\s)")
_TERMINAL = (".", "!", "?", ":", ";", "。", "！", "？", "；", "”", '"')
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
_EDGE_LINES = 2  # how many lines at each end of a page may be running header/footer


def _outline_titles(reader: PdfReader) -> dict[str, int]:
    """Outline (bookmark) titles, normalised, with their depth as a heading level."""
    titles: dict[str, int] = {}

    def walk(items: list[object], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                title = clean_heading(str(getattr(item, "title", "") or ""))
                if title:
                    titles.setdefault(title.lower(), min(depth, 6))

    try:
        walk(list(reader.outline), 1)
    except Exception:  # a broken outline should not cost us the text
        return {}
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


def parse_pdf(data: bytes) -> ParsedDocument:
    """Parse a PDF; each page yields re-flowed paragraphs (and outline headings) with `page`.

    The title is the document information title, else the first outline heading. Raises
    `ParseError` for corrupt or password-protected files and for PDFs without text.
    """
    reader = _open(data)
    pages: list[list[str]] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            page_text = page.extract_text()
        except Exception as exc:
            raise ParseError(f"corrupt PDF: page {number} cannot be read ({exc})") from exc
        pages.append([line.strip() for line in normalize_text(page_text).split("\n")])
    running = _running_lines([[line for line in lines if line] for lines in pages])
    outline = _outline_titles(reader)
    builder = SectionBuilder(MEDIA_TYPE)
    first_heading: str | None = None
    for number, lines in enumerate(pages, start=1):
        content = [line for line in lines if line]
        edges = {id(line) for line in content[:_EDGE_LINES] + content[-_EDGE_LINES:]}
        kept: list[str] = []
        for line in lines:
            if (
                line
                and id(line) in edges
                and (_edge_key(line) in running or _PAGE_NUMBER.match(line))
            ):
                continue
            level = outline.get(clean_heading(line).lower()) if line else None
            if level is not None:
                for paragraph in _paragraphs(kept):
                    builder.add(paragraph, page=number)
                kept = []
                builder.heading(level, line, page=number)
                first_heading = first_heading or clean_heading(line)
                outline.pop(clean_heading(line).lower())
            else:
                kept.append(line)
        for paragraph in _paragraphs(kept):
            builder.add(paragraph, page=number)
    return builder.build(
        title=_title(reader) or first_heading,
        metadata={"pages": len(reader.pages)},
        empty_message="PDF has no extractable text (scanned or image-only?)",
    )
