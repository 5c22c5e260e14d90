"""PDF text lines with their font size and weight, read with pypdfium2 (PDFium).

PDFium is about five times faster than pypdf here and reports, per character, the font size,
matrix, weight and name that heading detection needs. It is not thread-safe, so every call
into it happens under one lock.
"""

from __future__ import annotations

import ctypes
import re
import statistics
import threading
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from indexer.errors import ParseError, PayloadTooLarge

__all__ = ["PdfContent", "PdfLine", "read_pdf"]

_LOCK = threading.Lock()
_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
_SAMPLES = 5  # characters sampled per line for its size and weight
_BOLD_WEIGHT = 600
# TeX's bold fonts say so only in their names' "bx" (CMBX10, SFBX1000).
_BOLD_NAME = re.compile(rb"bold|black|heavy|demi|^(?:cm|sf|ec|lm)bx", re.IGNORECASE)
_ITALIC_NAME = re.compile(rb"italic|oblique|^(?:cm|sf|ec|lm)ti", re.IGNORECASE)
_ITALIC_FLAG = 1 << 6  # PDF font descriptor flags "Italic" and "FixedPitch"
_FIXED_PITCH_FLAG = 1 << 0
_MONOSPACE_NAME = re.compile(rb"courier|mono|consol", re.IGNORECASE)
_FONT_NAME_BYTES = 128
# PDFium marks a hyphen it found at a line end with U+0002 (and unknown glyphs with U+FFFE).
_PDFIUM_CHARS = str.maketrans({"\x02": "-", "\ufffe": ""})


@dataclass(frozen=True, slots=True)
class PdfLine:
    """One line of a page: its typical font size in points, and whether it is all bold (in a
    proportional font) or all italic."""

    text: str
    size: float
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True, slots=True)
class PdfContent:
    """A PDF's lines per page, its information title and its outline (title -> depth, 1-based)."""

    pages: tuple[tuple[PdfLine, ...], ...]
    title: str | None
    outline: tuple[tuple[str, int], ...]


def _open(data: bytes) -> pdfium.PdfDocument:
    if b"%PDF-" not in data[:1024]:
        raise ParseError("corrupt PDF: no %PDF header")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == _PASSWORD_ERROR:
            raise ParseError("encrypted PDF: it needs a password to open") from exc
        raise ParseError(f"corrupt PDF: {exc}") from exc


def _char_size(textpage: object, index: int) -> float:
    matrix = pdfium_c.FS_MATRIX()
    size = float(pdfium_c.FPDFText_GetFontSize(textpage, index))
    if pdfium_c.FPDFText_GetMatrix(textpage, index, matrix):
        # The nominal size is often 1 with the real size in the text matrix.
        size *= float(matrix.c * matrix.c + matrix.d * matrix.d) ** 0.5
    return size


def _char_style(
    textpage: object, index: int, name: ctypes.Array[ctypes.c_char]
) -> tuple[bool, bool]:
    """Whether the character is set in bold, and in italic. Bold code (a monospaced font)
    does not count as bold: it marks code, not headings."""
    flags = ctypes.c_int(0)
    pdfium_c.FPDFText_GetFontInfo(textpage, index, name, _FONT_NAME_BYTES, ctypes.byref(flags))
    font = name.value.rpartition(b"+")[2]  # "ABCDEF+Arial-BoldMT": a subset prefix
    bold = pdfium_c.FPDFText_GetFontWeight(textpage, index) >= _BOLD_WEIGHT
    bold = bold or bool(_BOLD_NAME.search(font))
    if flags.value & _FIXED_PITCH_FLAG or _MONOSPACE_NAME.search(font):
        bold = False
    italic = bool(flags.value & _ITALIC_FLAG) or bool(_ITALIC_NAME.search(font))
    return bold, italic


def _line(textpage: object, text: str, start: int, name: ctypes.Array[ctypes.c_char]) -> PdfLine:
    """Style one line from a few of its characters; `start` is its first character's index."""
    visible = [i for i, char in enumerate(text) if not char.isspace()]
    step = max(len(visible) // _SAMPLES, 1)
    sampled = [start + i for i in visible[::step][:_SAMPLES]]
    if visible and start + visible[-1] not in sampled:
        sampled.append(start + visible[-1])
    line = text.translate(_PDFIUM_CHARS).strip()
    if not sampled:
        return PdfLine(line, 0.0)
    size = statistics.median(_char_size(textpage, i) for i in sampled)
    styles = [_char_style(textpage, i, name) for i in sampled]
    bold = all(bold for bold, _ in styles)
    italic = all(italic for _, italic in styles)
    return PdfLine(line, round(size * 2) / 2, bold, italic)


def _page_lines(page: pdfium.PdfPage) -> tuple[PdfLine, ...]:
    textpage = page.get_textpage()
    try:
        raw = textpage.raw
        count = textpage.count_chars()
        text = textpage.get_text_range()
        if len(text) != count:  # rare: excluded characters shift the text against the indices
            text = "".join(chr(pdfium_c.FPDFText_GetUnicode(raw, i)) for i in range(count))
        name = ctypes.create_string_buffer(_FONT_NAME_BYTES)
        lines: list[PdfLine] = []
        start = 0
        for piece in text.replace("\r\n", "\n\r").split("\n"):
            # "\n\r" keeps every piece as long as its source span: "\r" sits at its start.
            lines.append(_line(raw, piece, start, name))
            start += len(piece) + 1
        return tuple(lines)
    finally:
        textpage.close()


def _outline(document: pdfium.PdfDocument) -> tuple[tuple[str, int], ...]:
    try:
        return tuple((item.get_title() or "", item.level + 1) for item in document.get_toc())
    except Exception:  # a broken outline should not cost us the text
        return ()


def _title(document: pdfium.PdfDocument) -> str | None:
    try:
        title = document.get_metadata_value("Title")
    except Exception:  # a broken info dictionary should not cost us the text
        return None
    title = title.strip()
    # Writers fill in a placeholder when the author set no title.
    return None if not title or title.lower().startswith("untitled") else title


def read_pdf(data: bytes, *, max_pages: int | None = None) -> PdfContent:
    """Every page's lines (with font size and boldness), the title and the outline.

    Raises `ParseError` for a missing header, a corrupt file or a user password, and
    `PayloadTooLarge` for more than `max_pages` pages (counted before any page is read).
    """
    with _LOCK:
        document = _open(data)
        try:
            if max_pages is not None and len(document) > max_pages:
                raise PayloadTooLarge(
                    f"PDF has {len(document):,} pages; the limit is {max_pages:,} "
                    "(RAGSEARCH_MAX_PAGES_PER_DOCUMENT)"
                )
            pages = []
            for number in range(len(document)):
                try:
                    page = document[number]
                except pdfium.PdfiumError as exc:
                    raise ParseError(f"corrupt PDF: page {number + 1} cannot be read") from exc
                try:
                    pages.append(_page_lines(page))
                finally:
                    page.close()
            return PdfContent(tuple(pages), _title(document), _outline(document))
        finally:
            document.close()
