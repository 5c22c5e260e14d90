"""Plain text: blank-line separated paragraphs become sections."""

from __future__ import annotations

from indexer.parsers.decoding import decode_text
from indexer.parsers.sections import SectionBuilder, normalize_text, split_paragraphs
from indexer.records import ParsedDocument

MEDIA_TYPE = "text/plain"


def parse_text(data: bytes) -> ParsedDocument:
    """Parse a plain-text file; each paragraph is one section, there is no title."""
    builder = SectionBuilder(MEDIA_TYPE)
    for paragraph in split_paragraphs(normalize_text(decode_text(data))):
        builder.add(paragraph)
    return builder.build()
