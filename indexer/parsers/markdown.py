"""Markdown (CommonMark + tables, MkDocs flavoured): blocks under their heading path."""

from __future__ import annotations

import re
import threading
from typing import Any

from markdown_it import MarkdownIt

from indexer.parsers.decoding import decode_text
from indexer.parsers.html import html_fragment_text
from indexer.parsers.sections import SectionBuilder, clean_heading, normalize_text
from indexer.records import ParsedDocument

MEDIA_TYPE = "text/markdown"

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_SCALAR = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:[ \t]+(\S.*?)[ \t]*$")
# MkDocs / attr_list suffixes such as "{ #install }" or "{#id .class}".
_HEADING_ATTRS = re.compile(r"\s*\{:?\s*[#.][^{}]*\}\s*$")
_BLOCK_KINDS = {
    "paragraph_open": "text",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "blockquote_open": "text",
    "table_open": "table",
    "fence": "code",
    "code_block": "code",
}


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split YAML front matter off `text`.

    Returns its top-level scalar keys and the remaining body.
    Nested values and lists are ignored: only plain `key: value` lines are kept.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    fields: dict[str, str] = {}
    for line in (match.group(1) or "").splitlines():
        scalar = _FRONT_MATTER_SCALAR.match(line)
        if scalar and not scalar.group(2).startswith(("#", "|", ">", "[", "{", "&", "*")):
            fields[scalar.group(1)] = _unquote(scalar.group(2))
    return fields, text[match.end() :]


_local = threading.local()


def _parsers() -> tuple[MarkdownIt, MarkdownIt]:
    """(block-only parser, full parser), built once per thread: building one costs ~1 ms,
    more than parsing a typical document, and an instance is not safe to share."""
    cached: tuple[MarkdownIt, MarkdownIt] | None = getattr(_local, "parsers", None)
    if cached is None:
        blocks = MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])
        cached = (blocks, MarkdownIt("commonmark").enable("table"))
        _local.parsers = cached
    return cached


def _heading_text(md: MarkdownIt, source: str) -> str:
    parts: list[str] = []
    inline = md.parseInline(source)
    for child in (inline[0].children or []) if inline else []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return clean_heading(_HEADING_ATTRS.sub("", "".join(parts)))


def parse_markdown(data: bytes) -> ParsedDocument:
    """Parse Markdown: headings build the path (first H1 is the title), blocks become sections.

    Headings stay in the text as `#` lines (with MkDocs `{ #id }` suffixes removed).
    Paragraphs, lists, tables, quotes and code keep their source lines; raw HTML blocks are
    reduced to their text. Front matter is dropped; its `title` wins over the H1 and its
    other scalar keys go to `metadata`.
    """
    front, body = split_front_matter(normalize_text(decode_text(data)))
    lines = body.split("\n")
    blocks, md = _parsers()
    # Inline parsing dominates the cost and only headings need it; they get it on demand.
    tokens = blocks.parse(body)
    builder = SectionBuilder(MEDIA_TYPE)
    title = front.pop("title", None) or None
    for index, token in enumerate(tokens):
        if token.level != 0 or token.map is None:
            continue
        if token.type == "heading_open":
            level = int(token.tag[1:])
            text = _heading_text(md, tokens[index + 1].content)
            builder.heading(level, text)
            if level == 1 and title is None and text:
                title = text
        elif token.type == "html_block":
            builder.add(html_fragment_text(token.content))
        elif token.type in _BLOCK_KINDS:
            start, end = token.map
            block = "\n".join(lines[start:end])
            # Fence markers such as MkDocs "///" closers carry no text of their own.
            if token.type != "paragraph_open" or any(ch.isalnum() for ch in block):
                builder.add(block, kind=_BLOCK_KINDS[token.type])
    metadata: dict[str, Any] = dict(front)
    return builder.build(title=title, metadata=metadata)
