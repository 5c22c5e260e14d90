"""PDF via pypdf: per-page text split into paragraphs, with 1-based page numbers."""

from __future__ import annotations

import io

from pypdf import PasswordType, PdfReader

from indexer.errors import ParseError, PayloadTooLarge
from indexer.parsers.sections import SectionBuilder, normalize_text, split_paragraphs
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


def parse_pdf(data: bytes, *, max_pages: int | None = None) -> ParsedDocument:
    """Parse a PDF; each page yields one section per paragraph, with `page` set.

    The title comes from the document information dictionary. Raises `ParseError` for
    corrupt or password-protected files and for PDFs without extractable text, and
    `PayloadTooLarge` for more than `max_pages` pages, before any text is extracted.
    """
    reader = _open(data)
    pages = len(reader.pages)
    if max_pages is not None and pages > max_pages:
        raise PayloadTooLarge(
            f"PDF has {pages:,} pages; the limit is {max_pages:,} "
            "(RAGSEARCH_MAX_PAGES_PER_DOCUMENT)"
        )
    builder = SectionBuilder(MEDIA_TYPE)
    for number, page in enumerate(reader.pages, start=1):
        try:
            page_text = page.extract_text()
        except Exception as exc:
            raise ParseError(f"corrupt PDF: page {number} cannot be read ({exc})") from exc
        for paragraph in split_paragraphs(normalize_text(page_text)):
            builder.add(paragraph, page=number)
    return builder.build(
        title=_title(reader),
        metadata={"pages": len(reader.pages)},
        empty_message="PDF has no extractable text (scanned or image-only?)",
    )
