"""HTML: the page's main content as Markdown (headings, lists, tables, code) in reading order."""

from __future__ import annotations

import re
from collections.abc import Callable

from selectolax.lexbor import LexborHTMLParser, LexborNode

from indexer.errors import ParseError
from indexer.parsers.decoding import decode_text, encoding_from_label, ensure_text
from indexer.parsers.markup import GridCell, grid_rows, list_item, markdown_table
from indexer.parsers.sections import SectionBuilder, clean_heading
from indexer.records import ParsedDocument

MEDIA_TYPE = "text/html"

_SKIPPED = frozenset(
    {"script", "style", "nav", "noscript", "template", "svg", "head", "title", "aside", "form"}
)
# Page chrome; kept when it sits inside an article or main, where it holds the real heading.
_CHROME = frozenset({"header", "footer"})
_CONTENT_ROOTS = frozenset({"article", "main"})
_CHROME_ROLES = frozenset({"navigation", "search", "banner", "contentinfo", "complementary"})
# class/id words of navigation, sidebars, reference lists and edit links (Wikipedia, CMSes).
_CHROME_NAME = re.compile(
    r"^(?:nav|navbar|navbox|navigation|menu|sidebar|breadcrumbs?|toc|reflist|references|"
    r"catlinks|mw-editsection|mw-jump-link|noprint|printfooter|mw-navigation|mw-panel|"
    r"vector-header|vector-menu|vector-toc|site-header|site-footer|skip-link|cookie-banner|"
    r"share-buttons|metadata|ambox|mw-indicators|vector-page-toolbar)$"
)
# Where the main content lives when a page says so (tried in order).
_MAIN_SELECTORS = ("main", "[role=main]", "#mw-content-text", "#content", "article")
_INLINE = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font",
        "i", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike",
        "strong", "sub", "sup", "time", "tt", "u", "var", "wbr", "img", "input", "button",
    }
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_LISTS = frozenset({"ul", "ol", "menu"})
_LAYOUT_IN_TABLE = "h1, h2, h3, h4, h5, h6"  # a table used for page layout
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BREAK = "\x00"  # stands for <br> while source whitespace is collapsed
_SPACES = re.compile(r"\s+")

Emit = Callable[[str, str], None]  # (markdown text, section kind)


def _collapse(raw: str) -> str:
    lines = _SPACES.sub(" ", raw).split(_BREAK)
    return "\n".join(line.strip() for line in lines if line.strip())


def _is_chrome(node: LexborNode) -> bool:
    attrs = node.attributes
    if attrs.get("role") in _CHROME_ROLES or "hidden" in attrs:
        return True
    if attrs.get("aria-hidden") == "true":
        return True
    names = f"{attrs.get('class') or ''} {attrs.get('id') or ''}".split()
    return any(_CHROME_NAME.match(name.lower()) for name in names)


def _inline_raw(node: LexborNode) -> str:
    parts: list[str] = []
    for child in node.iter(include_text=True):
        if child.is_text_node:
            parts.append(child.text(deep=False))
        elif child.tag == "br":
            parts.append(_BREAK)
        elif child.is_element_node and child.tag not in _SKIPPED and not _is_chrome(child):
            # Block children (a <p> in a cell) must not run into their neighbours.
            sep = "" if child.tag in _INLINE else _BREAK
            parts.append(sep + _inline_raw(child) + sep)
    return "".join(parts)


def _span(node: LexborNode, name: str) -> int:
    value = (node.attributes.get(name) or "1").strip()
    return int(value) if value.isdigit() else 1


class _Walker:
    """Walks the DOM, emitting each block as Markdown: runs of inline text become paragraphs."""

    def __init__(
        self, emit: Emit, on_heading: Callable[[int, str], None], strip_chrome: bool = True
    ) -> None:
        self.emit = emit
        self.on_heading = on_heading
        self.strip_chrome = strip_chrome

    def chrome(self, node: LexborNode) -> bool:
        return self.strip_chrome and _is_chrome(node)

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
                if not self.chrome(child):
                    run.append(_inline_raw(child))
            else:
                self._flush(run)
                run = []
                self._block(child, tag, in_content or tag in _CONTENT_ROOTS)
        self._flush(run)

    def _flush(self, run: list[str]) -> None:
        text = _collapse("".join(run))
        if text:
            self.emit(text, "text")

    def _block(self, node: LexborNode, tag: str, in_content: bool) -> None:
        if self.strip_chrome and ((tag in _CHROME and not in_content) or _is_chrome(node)):
            return
        if tag in _HEADINGS:
            text = clean_heading(_collapse(_inline_raw(node)))
            if text:
                self.on_heading(_HEADINGS[tag], text)
        elif tag in ("pre", "textarea", "listing", "xmp"):
            code = node.text(deep=True).strip("\n")
            if code.strip():
                self.emit(f"```\n{code}\n```", "code")
        elif tag in _LISTS:
            lines: list[str] = []
            self._list(node, 0, lines)
            if lines:
                self.emit("\n".join(lines), "list")
        elif tag == "table" and node.css_first(_LAYOUT_IN_TABLE) is None:
            self._table(node)
        else:
            self.walk(node, in_content)

    def _list(self, node: LexborNode, depth: int, lines: list[str]) -> None:
        ordered = node.tag == "ol"
        start = _span(node, "start") if ordered else 1
        number = start
        for item in node.iter():
            if item.tag != "li":
                if item.tag in _LISTS:  # a list nested directly in a list (invalid, common)
                    self._list(item, depth + 1, lines)
                continue
            text: list[str] = []
            nested: list[LexborNode] = []
            for child in item.iter(include_text=True):
                if child.is_element_node and child.tag in _LISTS:
                    nested.append(child)
                elif child.is_text_node:
                    text.append(child.text(deep=False))
                elif child.is_element_node and child.tag not in _SKIPPED:
                    if child.tag == "br":
                        text.append(_BREAK)
                    elif not self.chrome(child):
                        text.append(" " + _inline_raw(child) + " ")
            body = _collapse("".join(text)).replace("\n", " ")
            marker = f"{number}." if ordered else "-"
            if body:
                lines.append(list_item(body, depth, marker))
                number += 1
            for sub in nested:
                self._list(sub, depth + 1, lines)

    def _table(self, table: LexborNode) -> None:
        caption = table.css_first("caption")
        if caption is not None:
            self.emit(_collapse(_inline_raw(caption)), "text")
        rows: list[list[GridCell]] = []
        for row in _own_rows(table):
            cells = [
                GridCell(
                    _collapse(_inline_raw(cell)).replace("\n", " "),
                    _span(cell, "rowspan"),
                    _span(cell, "colspan"),
                )
                for cell in row.iter()
                if cell.tag in ("td", "th")
            ]
            rows.append(cells)
        text = markdown_table(grid_rows(rows))
        if text:
            self.emit(text, "table")


def _own_rows(table: LexborNode) -> list[LexborNode]:
    """The table's rows, not those of tables nested in its cells."""
    rows: list[LexborNode] = []
    for child in table.iter():
        if child.tag == "tr":
            rows.append(child)
        elif child.tag in ("thead", "tbody", "tfoot"):
            rows.extend(row for row in child.iter() if row.tag == "tr")
    return rows


def decode_html(data: bytes) -> str:
    declared = _META_CHARSET.search(data[:4096])
    encoding = encoding_from_label(declared.group(1).decode("ascii")) if declared else None
    # A BOM outranks a declared charset, and UTF-16 pages cannot declare one readably.
    if encoding and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return ensure_text(data.decode(encoding))
        except (UnicodeDecodeError, LookupError):
            pass
    return decode_text(data)


def _main_content(tree: LexborHTMLParser) -> LexborNode | None:
    """The element holding the page's main content, when the page marks one."""
    body = tree.body
    for selector in _MAIN_SELECTORS:
        node = tree.css_first(selector)
        # A marked region with almost no text is a skeleton filled by scripts: keep the body.
        if node is not None and len(node.text(deep=True).strip()) >= 200:
            return node
    return body or tree.root


def html_fragment_text(fragment: str) -> str:
    """An HTML fragment (e.g. a raw HTML block in Markdown) as Markdown blocks."""
    blocks: list[str] = []
    tree = LexborHTMLParser(fragment)

    def heading(level: int, text: str) -> None:
        blocks.append(f"{'#' * level} {text}")

    if tree.body is not None:
        _Walker(lambda text, _kind: blocks.append(text), heading).walk(tree.body)
    return "\n\n".join(blocks)


def add_html(
    builder: SectionBuilder, tree: LexborHTMLParser, strip_chrome: bool = True
) -> str | None:
    """Walk a page into `builder` (main content only unless `strip_chrome` is off).

    Returns the first h1, if any.
    """
    first_h1: list[str] = []

    def on_heading(level: int, heading: str) -> None:
        builder.heading(level, heading)
        if level == 1 and not first_h1:
            first_h1.append(heading)

    walker = _Walker(lambda text, kind: builder.add(text, kind=kind), on_heading, strip_chrome)
    root = _main_content(tree) if strip_chrome else (tree.body or tree.root)
    if root is not None:
        try:
            walker.walk(root, in_content=root.tag in _CONTENT_ROOTS)
        except RecursionError as exc:
            raise ParseError("HTML is nested too deeply to read") from exc
    return first_h1[0] if first_h1 else None


def parse_html(data: bytes) -> ParsedDocument:
    """Parse an HTML page into Markdown; `<title>` (else the first h1) is the title.

    Only the main content is kept when the page marks it (`main`, `article`, Wikipedia's
    content div); scripts, styles, navigation, sidebars, page header/footer, reference
    lists and edit links are dropped, unless that leaves nothing (a page that is all
    navigation). Tables keep their rowspan/colspan grid.
    """
    tree = LexborHTMLParser(decode_html(data))
    builder = SectionBuilder(MEDIA_TYPE)
    first_h1 = add_html(builder, tree)
    if not len(builder):
        builder = SectionBuilder(MEDIA_TYPE)
        first_h1 = add_html(builder, tree, strip_chrome=False)
    title_node = tree.css_first("title")
    title = title_node.text(deep=True).strip() if title_node is not None else ""
    return builder.build(
        title=title or first_h1,
        empty_message="no visible text in the HTML page",
    )
