"""Text normalisation and the builder that lays sections out with exact character spans."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from indexer.errors import ParseError
from indexer.records import ParsedDocument, Section

SECTION_SEPARATOR = "\n\n"

_TRAILING_SPACE = re.compile(r"[ \t\u00a0\u3000]+$", re.MULTILINE)
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
# C0/C1 controls other than tab and newline carry no meaning in indexed text.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def normalize_text(text: str) -> str:
    """NFC-normalise, unify newlines, drop control chars and trailing spaces, squeeze blank runs.

    A run of two or more blank lines becomes a single blank line.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _CONTROL_CHARS.sub("", text)
    text = _TRAILING_SPACE.sub("", text)
    return _MANY_BLANK_LINES.sub("\n\n", text)


def clean_heading(text: str) -> str:
    """Collapse a heading to one line of single-spaced text."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class SectionBuilder:
    """Collects section texts in reading order, then joins them into one `ParsedDocument`.

    Every added text is normalised and stripped; empty ones are skipped, so the span
    invariant `doc.text[s.start:s.end] == s.text` holds by construction.
    """

    def __init__(self, media_type: str) -> None:
        self.media_type = media_type
        self._parts: list[tuple[str, tuple[str, ...], int | None, str]] = []
        self.outline = Outline()

    def add(
        self,
        text: str,
        heading_path: tuple[str, ...] | None = None,
        page: int | None = None,
        kind: str = "text",
    ) -> None:
        """Append one section under `heading_path` (default: the outline's current path).

        Whitespace-only text is ignored.
        """
        cleaned = normalize_text(text).strip("\n")
        if not cleaned.strip():
            return
        path = self.outline.path if heading_path is None else heading_path
        # Leading spaces of the first line matter for code, but not at a section edge.
        self._parts.append((cleaned.strip() if kind != "code" else cleaned, path, page, kind))

    def heading(self, level: int, text: str, page: int | None = None) -> None:
        """Append a Markdown heading line (`#` x level) and make it the current path's tip."""
        text = clean_heading(text)
        if not text:
            return
        self.outline.enter(level, text)
        marks = "#" * min(max(level, 1), 6)
        self._parts.append((f"{marks} {text}", self.outline.path, page, "heading"))

    def __len__(self) -> int:
        return len(self._parts)

    def build(
        self,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        empty_message: str = "no text found in the document",
    ) -> ParsedDocument:
        """Join the sections with blank lines and compute their spans.

        Raises `ParseError(empty_message)` when nothing readable was collected.
        """
        parts = self._parts
        if not parts:
            raise ParseError(empty_message)
        sections: list[Section] = []
        offset = 0
        for text, path, page, kind in parts:
            if sections:
                offset += len(SECTION_SEPARATOR)
            sections.append(Section(text, offset, offset + len(text), path, page, kind))
            offset += len(text)
        full_text = SECTION_SEPARATOR.join(part[0] for part in parts)
        return ParsedDocument(
            text=full_text,
            sections=tuple(sections),
            media_type=self.media_type,
            title=(clean_heading(title) or None) if title else None,
            metadata=metadata or {},
        )


class Outline:
    """The heading stack: entering a level-N heading closes every heading at N or deeper."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self.path: tuple[str, ...] = ()

    def enter(self, level: int, text: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self.path = tuple(t for _, t in self._stack)

    @property
    def level(self) -> int:
        """The level of the innermost open heading, 0 before any."""
        return self._stack[-1][0] if self._stack else 0


def split_paragraphs(text: str) -> list[str]:
    """Split normalised text on blank lines into non-empty paragraphs."""
    return [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
