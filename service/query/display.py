"""Clean display text for quoting: chunk text stays faithful for citations, answers read well.

Every parser writes a Markdown-like form (headings, lists, pipe tables), so chunk text is
rendered to plain text from markdown-it's token stream (not regexes over the source), except
plain-text files: emphasis and links keep their words, fenced code, HTML and images go,
headings are left to the citation (its heading path), table rows become "cell, cell", and
indented text is not taken for code. MkDocs template directives (`{* ... *}` includes,
`/// note |` admonition fences, `{ #anchor }` ids) are dropped. Hard-wrapped text (PDF,
plain text, soft breaks in Markdown) is joined into paragraphs first (a hyphen at a line
end joined, a drop cap rejoined with its word) so sentences are sentences, and no space is
put between CJK text on either side of a join. Bracketed numbers (`[2]`) become `(2)`, so
quoted text can never pass for a citation.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from indexer.records import StoredChunk
from indexer.sentences import CJK_CHARS
from service.query.citations import neutralise_markers

__all__ = ["display_text", "is_markdown", "join_cjk", "join_line", "join_wrapped_lines"]

_PLAIN_SUFFIXES = (".txt", ".text", ".log")
_DIRECTIVE_LINE = re.compile(r"^\s*(?:\{\*.*\*\}|/{3}.*|!{3}.*|\?{3}.*)\s*$", re.MULTILINE)
_ANCHOR = re.compile(r"\s*\{\s*#[^}]*\}")
_HTML_REMNANT = re.compile(r"</?[A-Za-z][^<>]*>?|&[a-z]+;")
_CJK_END = re.compile(rf"[{CJK_CHARS}。！？；：，、）」』》]$")
_CJK_START = re.compile(rf"^[{CJK_CHARS}。！？；：，、（「『《]")
_TERMINATOR = re.compile(r"[.!?。！？:：;；]['\")”’」』）]*$")
_LIST_START = re.compile(r"^\s*(?:[-*•·]|\d{1,3}[.)]|[a-z][.)])\s")
_SPACES = re.compile(r"[ \t\u00a0]+")
_HYPHENATED_END = re.compile(r"[^\W\d_]{2}-$")
# A capital alone at the start of a paragraph (not the words "A" and "I").
_DROP_CAP = re.compile(r"(?:^|\n)[B-HJ-Z]$")


def is_markdown(chunk: StoredChunk) -> bool:
    """Whether a chunk's text is read as Markdown: all but plain-text files."""
    return not chunk.source.lower().endswith(_PLAIN_SUFFIXES)


def display_text(chunk: StoredChunk) -> str:
    """The chunk as readable plain text: paragraphs on their own lines."""
    return _display(chunk.text, is_markdown(chunk))


@lru_cache(maxsize=4096)
def _display(text: str, markdown: bool) -> str:
    plain = _markdown_text(text) if markdown else join_wrapped_lines(text)
    lines = (_SPACES.sub(" ", line).strip() for line in plain.splitlines())
    return neutralise_markers("\n".join(line for line in lines if line))


def join_cjk(left: str, right: str) -> str:
    """`left` and `right` joined by one space, or none where CJK text meets."""
    if not left or not right:
        return left + right
    if _CJK_END.search(left) or _CJK_START.search(right):
        return left + right
    return f"{left} {right}"


def join_line(left: str, right: str) -> str:
    """Two pieces of one paragraph split by a line wrap, joined as the text was written."""
    if _HYPHENATED_END.search(left) and right[:1].islower():
        return left[:-1] + right  # hyphenation: "exam-" + "ple"
    if _DROP_CAP.search(left) and right[:1].islower():
        return left + right  # a drop cap: "T" + "he typewriter"
    return join_cjk(left, right)


def join_wrapped_lines(text: str) -> str:
    """Hard-wrapped lines joined into paragraphs; blank lines and list items stay breaks."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        joined = ""
        for raw in block.splitlines():
            line = raw.strip()
            if not line:
                continue
            if not joined:
                joined = line
            elif _LIST_START.match(line) or (_TERMINATOR.search(joined) and len(raw) < 40):
                joined += "\n" + line
            else:
                joined = join_line(joined, line)
        if joined:
            paragraphs.append(joined)
    return "\n".join(paragraphs)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # No indented code blocks: extracted text is often indented without being code.
    return MarkdownIt("commonmark", {"html": True}).enable("table").disable("code")


def _markdown_text(text: str) -> str:
    source = _DIRECTIVE_LINE.sub("", text)
    lines: list[str] = []
    row: list[str] | None = None  # the cells of a table row being read
    skip_depth = 0
    for token in _parser().parse(source):
        if token.type.startswith("heading_"):
            skip_depth += 1 if token.nesting == 1 else -1
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            lines.append(", ".join(cell for cell in row if cell))
            row = None
        elif token.type == "inline" and not skip_depth:
            line = _inline_text(token.children or [])
            if row is not None:
                row.append(line)
            elif line:
                lines.append(line)
    return "\n".join(lines)


def _inline_text(children: list[Token]) -> str:
    out = ""
    for child in children:
        if child.type in ("text", "code_inline"):
            out += _HTML_REMNANT.sub("", _ANCHOR.sub("", child.content))
        elif child.type == "softbreak":
            out += "\u0000"  # decided when the next piece arrives: a space or nothing
        elif child.type == "hardbreak":
            out += "\n"
    return _resolve_breaks(out).strip()


def _resolve_breaks(text: str) -> str:
    parts = text.split("\u0000")
    joined = parts[0]
    for part in parts[1:]:
        joined = join_line(joined.rstrip(), part.lstrip())
    return joined
