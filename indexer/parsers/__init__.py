"""Document parsers: bytes plus a file name in, `ParsedDocument` out.

Every failure to read a supported file is a `ParseError`; an unknown suffix is an
`UnsupportedMediaType`. Library exceptions never escape.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from indexer.errors import ParseError, PayloadTooLarge, UnsupportedMediaType
from indexer.parsers import (
    asciidoc,
    docx,
    epub,
    html,
    markdown,
    odf,
    pdf,
    pptx,
    structured,
    text,
    xlsx,
)
from indexer.records import ParsedDocument

__all__ = ["SUPPORTED_SUFFIXES", "media_type_for", "parse_bytes"]

_Parser = Callable[[bytes], ParsedDocument]

_FORMATS: dict[str, tuple[str, _Parser]] = {
    ".txt": (text.MEDIA_TYPE, text.parse_text),
    ".md": (markdown.MEDIA_TYPE, markdown.parse_markdown),
    ".markdown": (markdown.MEDIA_TYPE, markdown.parse_markdown),
    ".html": (html.MEDIA_TYPE, html.parse_html),
    ".htm": (html.MEDIA_TYPE, html.parse_html),
    ".pdf": (pdf.MEDIA_TYPE, pdf.parse_pdf),
    ".docx": (docx.MEDIA_TYPE, docx.parse_docx),
    ".json": (structured.JSON_MEDIA_TYPE, structured.parse_json),
    ".jsonl": (structured.JSONL_MEDIA_TYPE, structured.parse_jsonl),
    ".csv": (structured.CSV_MEDIA_TYPE, structured.parse_csv),
    ".pptx": (pptx.MEDIA_TYPE, pptx.parse_pptx),
    ".xlsx": (xlsx.MEDIA_TYPE, xlsx.parse_xlsx),
    ".xlsm": (xlsx.MACRO_MEDIA_TYPE, xlsx.parse_xlsx),
    ".odt": (odf.ODT_MEDIA_TYPE, odf.parse_odt),
    ".ods": (odf.ODS_MEDIA_TYPE, odf.parse_ods),
    ".odp": (odf.ODP_MEDIA_TYPE, odf.parse_odp),
    ".epub": (epub.MEDIA_TYPE, epub.parse_epub),
    ".adoc": (asciidoc.MEDIA_TYPE, asciidoc.parse_asciidoc),
    ".asciidoc": (asciidoc.MEDIA_TYPE, asciidoc.parse_asciidoc),
    ".asc": (asciidoc.MEDIA_TYPE, asciidoc.parse_asciidoc),
}

# Formats people have but we cannot read: the error says what to do instead.
_ADVICE: dict[str, str] = {
    ".doc": "legacy Word (.doc) files are not supported; save it as .docx",
    ".ppt": "legacy PowerPoint (.ppt) files are not supported; save it as .pptx",
    ".xls": "legacy Excel (.xls) files are not supported; save it as .xlsx",
    ".rtf": "RTF files are not supported; save it as .docx",
    **{
        suffix: "images are not indexed (no OCR); extract the text first"
        for suffix in (".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp", ".webp")
    },
}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_FORMATS)


def _suffix(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    return f".{suffix.lower()}" if dot and stem else ""


def _format_for(filename: str) -> tuple[str, _Parser]:
    suffix = _suffix(filename)
    if suffix in _ADVICE:
        raise UnsupportedMediaType(f"{_ADVICE[suffix]} ({filename!r})")
    if suffix not in _FORMATS:
        shown = f"'{suffix}'" if suffix else "no extension"
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedMediaType(
            f"unsupported file type ({shown}) for {filename!r}; supported: {supported}"
        )
    return _FORMATS[suffix]


def media_type_for(filename: str) -> str:
    """The media type for a file name, by suffix (case-insensitive).

    Raises `UnsupportedMediaType` for suffixes not in `SUPPORTED_SUFFIXES`.
    """
    return _format_for(filename)[0]


def parse_bytes(data: bytes, filename: str, *, max_pages: int | None = None) -> ParsedDocument:
    """Parse a file's bytes into text and sections, choosing the format by `filename` suffix.

    Raises `UnsupportedMediaType` for an unknown suffix and `ParseError` for empty,
    whitespace-only, binary, corrupt or text-less files; `PayloadTooLarge` for a paged
    format (PDF) with more than `max_pages` pages.
    """
    _, parser = _format_for(filename)
    if parser is pdf.parse_pdf:
        parser = partial(pdf.parse_pdf, max_pages=max_pages)
    if not data:
        raise ParseError("file is empty")
    if not data.strip():
        raise ParseError("file contains only whitespace")
    try:
        return parser(data)
    except (ParseError, UnsupportedMediaType, PayloadTooLarge):
        raise
    except RecursionError as exc:
        raise ParseError("document is nested too deeply to read") from exc
    except Exception as exc:  # last line of defence: a library bug must still read as a ParseError
        raise ParseError(f"could not parse {filename!r}: {exc or type(exc).__name__}") from exc
