"""HTML: visible blocks in reading order under the h1-h6 heading path."""

from __future__ import annotations

import re
from collections.abc import Callable

from selectolax.lexbor import LexborHTMLParser, LexborNode

from indexer.errors import ParseError
from indexer.parsers.decoding import decode_text, encoding_from_label, ensure_text
from indexer.parsers.sections import SectionBuilder, clean_heading
from indexer.records import ParsedDocument

MEDIA_TYPE = "text/html"

_SKIPPED = frozenset({"script", "style", "nav", "noscript", "template", "svg", "head", "title"})
# Page chrome; kept when it sits inside an article or main, where it holds the real heading.
_CHROME = frozenset({"header", "footer"})
_CONTENT_ROOTS = frozenset({"article", "main"})
_CHROME_ROLES = frozenset({"navigation", "search", "banner", "contentinfo"})
_INLINE = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font",
        "i", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike",
        "strong", "sub", "sup", "time", "tt", "u", "var", "wbr", "img", "input", "button",
    }
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_LAYOUT_IN_TABLE = "h1, h2, h3, h4, h5, h6, table table"  # a table used for page layout
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BREAK = "\x00"  # stands for <br> while source whitespace is collapsed
_SPACES = re.compile(r"\s+")

Emit = Callable[[str, tuple[str, ...]], None]


def _collapse(raw: str) -> str:
    lines = _SPACES.sub(" ", raw).split(_BREAK)
    return "\n".join(line.strip() for line in lines if line.strip())


def _inline_raw(node: LexborNode) -> str:
    parts: list[str] = []
    for child in node.iter(include_text=True):
        if child.is_text_node:
            parts.append(child.text(deep=False))
        elif child.tag == "br":
            parts.append(_BREAK)
        elif child.is_element_node and child.tag not in _SKIPPED:
            # Block children (a <p> in a cell) must not run into their neighbours.
            sep = "" if child.tag in _INLINE else _BREAK
            parts.append(sep + _inline_raw(child) + sep)
    return "".join(parts)


class _Walker:
    """Walks the DOM, emitting each run of inline content as one block of text."""

    def __init__(self, emit: Emit, on_heading: Callable[[int, str], None] | None) -> None:
        self.emit = emit
        self.on_heading = on_heading
        self.path: list[tuple[int, str]] = []

    def heading_path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.path)

    def walk(self, node: LexborNode, in_content: bool = False) -> None:
        run: list[str] = []
        for child in node.iter(include_text=True):
            if child.is_text_node:
                run.append(child.text(deep=False))
                continue
            tag = child.tag or ""
            if not child.is_element_node or tag in _SKIPPED:
                continue
            if tag == "br":
                run.append(_BREAK)
            elif tag in _INLINE:
                run.append(_inline_raw(child))
            else:
                self._flush(run)
                run = []
                self._block(child, tag, in_content or tag in _CONTENT_ROOTS)
        self._flush(run)

    def _flush(self, run: list[str]) -> None:
        text = _collapse("".join(run))
        if text:
            self.emit(text, self.heading_path())

    def _block(self, node: LexborNode, tag: str, in_content: bool) -> None:
        if tag in _CHROME and not in_content:
            return
        attrs = node.attributes
        if attrs.get("role") in _CHROME_ROLES or "hidden" in attrs:
            return
        if tag in _HEADINGS:
            self._heading(_HEADINGS[tag], _collapse(_inline_raw(node)).replace("\n", " "))
        elif tag in ("pre", "textarea", "listing", "xmp"):
            self.emit(node.text(deep=True), self.heading_path())
        elif tag == "table" and node.css_first(_LAYOUT_IN_TABLE) is None:
            self._table(node)
        else:
            self.walk(node, in_content)

    def _heading(self, level: int, text: str) -> None:
        text = clean_heading(text)
        if not text:
            return
        if self.on_heading is not None:
            self.on_heading(level, text)
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, text))

    def _table(self, table: LexborNode) -> None:
        caption = table.css_first("caption")
        if caption is not None:
            self.emit(_collapse(_inline_raw(caption)), self.heading_path())
        for row in table.css("tr"):
            cells = [
                _collapse(_inline_raw(cell)).replace("\n", " ")
                for cell in row.iter()
                if cell.tag in ("td", "th")
            ]
            if any(cells):
                self.emit(" | ".join(cells), self.heading_path())


def _decode_html(data: bytes) -> str:
    declared = _META_CHARSET.search(data[:4096])
    encoding = encoding_from_label(declared.group(1).decode("ascii")) if declared else None
    # A BOM outranks a declared charset, and UTF-16 pages cannot declare one readably.
    if encoding and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return ensure_text(data.decode(encoding))
        except (UnicodeDecodeError, LookupError):
            pass
    return decode_text(data)


def html_fragment_text(fragment: str) -> str:
    """Visible text of an HTML fragment (e.g. a raw HTML block in Markdown), blocks on lines."""
    blocks: list[str] = []
    tree = LexborHTMLParser(fragment)
    if tree.body is not None:
        _Walker(lambda text, _path: blocks.append(text), None).walk(tree.body)
    return "\n".join(blocks)


def parse_html(data: bytes) -> ParsedDocument:
    """Parse an HTML page; `<title>` (else the first h1) is the title.

    Scripts, styles, navigation and page header/footer are dropped. Each paragraph, list
    item, quote, definition, preformatted block and table row becomes a section.
    """
    text = _decode_html(data)
    tree = LexborHTMLParser(text)
    builder = SectionBuilder(MEDIA_TYPE)
    first_h1: list[str] = []

    def on_heading(level: int, heading: str) -> None:
        builder.note_heading(heading, walker.heading_path())
        if level == 1 and not first_h1:
            first_h1.append(heading)

    walker = _Walker(builder.add, on_heading)
    root = tree.body or tree.root
    if root is not None:
        try:
            walker.walk(root)
        except RecursionError as exc:
            raise ParseError("HTML is nested too deeply to read") from exc
    title_node = tree.css_first("title")
    title = title_node.text(deep=True).strip() if title_node is not None else ""
    return builder.build(
        title=title or (first_h1[0] if first_h1 else None),
        empty_message="no visible text in the HTML page",
    )
