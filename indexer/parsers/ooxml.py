"""Strict Office Open XML, rewritten as Transitional so python-docx/pptx and openpyxl read it.

Strict (ISO 29500 strict) files differ from the common Transitional ones mainly in their
namespace URIs (`http://purl.oclc.org/ooxml/...`); the elements are the same for the
text, tables and lists we read.
"""

from __future__ import annotations

import io
import re
import zipfile

from indexer.parsers.archive import open_zip

__all__ = ["is_strict", "to_transitional"]

_STRICT = b"http://purl.oclc.org/ooxml/"
_RENAMES: tuple[tuple[bytes, bytes], ...] = (
    (
        b"http://purl.oclc.org/ooxml/officeDocument/relationships",
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/",
        b"http://schemas.openxmlformats.org/officeDocument/2006/",
    ),
    (
        b"http://purl.oclc.org/ooxml/wordprocessingml/main",
        b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    ),
    (
        b"http://purl.oclc.org/ooxml/spreadsheetml/main",
        b"http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    ),
    (
        b"http://purl.oclc.org/ooxml/presentationml/main",
        b"http://schemas.openxmlformats.org/presentationml/2006/main",
    ),
    (
        b"http://purl.oclc.org/ooxml/drawingml/",
        b"http://schemas.openxmlformats.org/drawingml/2006/",
    ),
)
_CONFORMANCE = re.compile(rb'\s(?:w:)?conformance="strict"')


def is_strict(data: bytes, root_rels: str = "_rels/.rels") -> bool:
    """Whether the package's root relationships use Strict namespaces."""
    with open_zip(data, "Office") as archive:
        try:
            return _STRICT in archive.read(root_rels)
        except KeyError:
            return False


def to_transitional(data: bytes, kind: str) -> bytes:
    """The same package with every XML part's Strict namespaces renamed to Transitional."""
    out = io.BytesIO()
    with open_zip(data, kind) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename.endswith((".xml", ".rels")):
                for strict, transitional in _RENAMES:
                    content = content.replace(strict, transitional)
                content = _CONFORMANCE.sub(b"", content)
            target.writestr(entry.filename, content)
    return out.getvalue()
