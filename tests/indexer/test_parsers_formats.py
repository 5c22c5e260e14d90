"""Every format lands as the same Markdown-like text: headings, nested lists, tables.

Fixtures are built here with the formats' own libraries (or as small zips), not committed.
"""

from __future__ import annotations

import io
import zipfile

import docx
import openpyxl
import pptx
import pytest
from pptx.util import Inches

from indexer.errors import ParseError, UnsupportedMediaType
from indexer.parsers import parse_bytes
from indexer.parsers.archive import MAX_RATIO


def _zip(entries: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _docx_bytes() -> bytes:
    document = docx.Document()
    document.add_heading("Guide", level=1)
    document.add_paragraph("Install first.")
    document.add_paragraph("Download", style="List Number")
    document.add_paragraph("Check the hash", style="List Bullet 2")
    document.add_paragraph("Run it", style="List Number")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["Name", "Q1", "Q2"], ["Sales", "10", "12"], ["Costs", "4", "5"]]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    merged = table.cell(0, 1).merge(table.cell(0, 2))
    merged.text = "Quarters"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_lists_nest_and_number_and_merged_cells_repeat() -> None:
    doc = parse_bytes(_docx_bytes(), "guide.docx")
    assert doc.text.startswith(
        "## Guide\n\nInstall first.\n\n1. Download\n  - Check the hash\n2. Run"
    )
    assert "| Name | Quarters | Quarters |\n|---|---|---|\n| Sales | 10 | 12 |" in doc.text
    assert {s.kind for s in doc.sections} == {"heading", "text", "list", "table"}


def test_docx_strict_open_xml_is_read() -> None:
    transitional = _docx_bytes()
    strict: dict[str, str | bytes] = {}
    with zipfile.ZipFile(io.BytesIO(transitional)) as archive:
        for name in archive.namelist():
            content = archive.read(name)
            if name.endswith((".xml", ".rels")):
                content = content.replace(
                    b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
                    b"http://purl.oclc.org/ooxml/wordprocessingml/main",
                ).replace(
                    b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
                    b"http://purl.oclc.org/ooxml/officeDocument/relationships",
                )
            strict[name] = content
    doc = parse_bytes(_zip(strict), "strict.docx")
    assert "## Guide" in doc.text and "| Sales | 10 | 12 |" in doc.text


def test_pptx_slides_are_pages_with_titles_lists_and_tables() -> None:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Roadmap"
    body = slide.placeholders[1].text_frame
    body.text = "Search"
    nested = body.add_paragraph()
    nested.text = "Chinese support"
    nested.level = 1
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Numbers"
    shape = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1))
    for (r, c), text in {
        (0, 0): "Metric",
        (0, 1): "Value",
        (1, 0): "Recall",
        (1, 1): "0.9",
    }.items():
        shape.table.cell(r, c).text = text
    buffer = io.BytesIO()
    deck.save(buffer)
    doc = parse_bytes(buffer.getvalue(), "deck.pptx")
    assert "# Roadmap\n\n- Search\n  - Chinese support" in doc.text
    assert "# Numbers\n\n| Metric | Value |\n|---|---|\n| Recall | 0.9 |" in doc.text
    pages = {s.text: s.page for s in doc.sections}
    assert pages["# Roadmap"] == 1 and pages["# Numbers"] == 2
    assert doc.title == "Roadmap"


def test_xlsx_each_sheet_is_a_heading_over_a_table() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Sales"
    for row in (["Region", "Revenue"], ["北京", 1200.0], ["Paris", 950]):
        sheet.append(row)
    workbook.create_sheet("Empty")
    buffer = io.BytesIO()
    workbook.save(buffer)
    doc = parse_bytes(buffer.getvalue(), "book.xlsx")
    assert (
        doc.text == "## Sales\n\n| Region | Revenue |\n|---|---|\n| 北京 | 1200 |\n| Paris | 950 |"
    )
    assert doc.metadata["sheets"] == ["Sales", "Empty"]


_ODT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content
  xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
  xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
  xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0">
<office:body><office:text>
  <text:h text:outline-level="1">Report</text:h>
  <text:p>First<text:s text:c="2"/>paragraph.</text:p>
  <text:list><text:list-item><text:p>Top</text:p>
    <text:list><text:list-item><text:p>Inner</text:p></text:list-item></text:list>
  </text:list-item></text:list>
  <table:table table:name="T">
    <table:table-row><table:table-cell table:number-columns-spanned="2"><text:p>Both</text:p>
      </table:table-cell><table:covered-table-cell/></table:table-row>
    <table:table-row><table:table-cell><text:p>a</text:p></table:table-cell>
      <table:table-cell><text:p>b</text:p></table:table-cell></table:table-row>
  </table:table>
</office:text></office:body></office:document-content>"""


def test_odt_headings_nested_lists_and_spanned_cells() -> None:
    data = _zip({"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": _ODT})
    doc = parse_bytes(data, "report.odt")
    assert doc.text == (
        "# Report\n\nFirst  paragraph.\n\n- Top\n  - Inner\n\n| Both | Both |\n|---|---|\n| a | b |"
    )


def _epub(chapter: str, href: str = "text/c1.xhtml", path: str = "text/c1.xhtml") -> bytes:
    return _zip(
        {
            "mimetype": "application/epub+zip",
            "META-INF/container.xml": (
                '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                '<rootfiles><rootfile full-path="OEBPS/book.opf"/></rootfiles></container>'
            ),
            "OEBPS/book.opf": (
                '<package xmlns="http://www.idpf.org/2007/opf" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><dc:title>检索之书</dc:title>'
                f'</metadata><manifest><item id="c1" href="{href}"/></manifest>'
                '<spine><itemref idref="c1"/></spine></package>'
            ),
            f"OEBPS/{path}": chapter,
        }
    )


def test_epub_reads_chapters_in_spine_order_including_chinese() -> None:
    chapter = "<html><body><h1>第一章</h1><p>检索增强生成把搜索和模型结合起来。</p></body></html>"
    doc = parse_bytes(_epub(chapter), "book.epub")
    assert doc.title == "检索之书"
    assert doc.text == "# 第一章\n\n检索增强生成把搜索和模型结合起来。"


def test_epub_decodes_url_encoded_chapter_links() -> None:
    chapter = "<html><body><p>Chapter one text.</p></body></html>"
    doc = parse_bytes(
        _epub(chapter, "text/chapter%20one.xhtml", "text/chapter one.xhtml"), "b.epub"
    )
    assert doc.text == "Chapter one text."


def test_asciidoc_titles_lists_tables_and_listings() -> None:
    source = b"""= Manual
:toc:

== Setup
Install the
package.

* one
** one point one
. first

|===
|Name |Value
|a |1
|===

----
ragsearch ingest docs/
----
"""
    doc = parse_bytes(source, "manual.adoc")
    assert doc.title == "Manual"
    assert doc.text == (
        "# Manual\n\n## Setup\n\nInstall the package.\n\n- one\n  - one point one\n1. first\n\n"
        "| Name | Value |\n|---|---|\n| a | 1 |\n\n```\nragsearch ingest docs/\n```"
    )


def test_html_tables_keep_rowspan_and_colspan_on_the_grid() -> None:
    page = b"""<table><tr><th rowspan="2">Item</th><th colspan="2">Price</th></tr>
    <tr><th>EUR</th><th>USD</th></tr><tr><td>Tea</td><td>3</td><td>4</td></tr></table>"""
    doc = parse_bytes(page, "prices.html")
    assert doc.text == (
        "| Item | Price | Price |\n|---|---|---|\n| Item | EUR | USD |\n| Tea | 3 | 4 |"
    )


def test_html_keeps_main_content_and_drops_page_chrome() -> None:
    article = "<p>" + "Ducks are birds. " * 20 + "</p>"
    page = f"""<body><div id="mw-navigation">Main page Contents</div>
    <div id="content"><h1>Duck</h1>{article}
    <div class="reflist"><ol><li>Citation one</li></ol></div>
    <span class="mw-editsection">[edit]</span></div>
    <div class="printfooter">Retrieved from</div></body>""".encode()
    doc = parse_bytes(page, "duck.html")
    assert doc.text.startswith("# Duck\n\nDucks are birds.")
    for chrome in ("Main page", "Citation one", "[edit]", "Retrieved from"):
        assert chrome not in doc.text


def test_legacy_doc_gets_a_convert_it_error() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"save it as \.docx"):
        parse_bytes(b"\xd0\xcf\x11\xe0 legacy", "old.doc")


def _bomb(megabytes: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            block = b"\0" * (1 << 20)
            for _ in range(megabytes):
                entry.write(block)
    return buffer.getvalue()


@pytest.mark.parametrize("suffix", [".docx", ".pptx", ".xlsx", ".odt", ".epub"])
def test_zip_formats_refuse_an_entry_that_inflates_too_far(suffix: str) -> None:
    bomb = _bomb(2)
    assert len(bomb) * MAX_RATIO < 2 << 20
    with pytest.raises(ParseError, match="decompression bomb"):
        parse_bytes(bomb, f"bomb{suffix}")


def test_zip_bomb_over_the_unpacked_limit_is_refused_before_reading() -> None:
    bomb = _bomb(300)  # ~1.4 MB on disk
    assert len(bomb) < 2 << 20
    with pytest.raises(ParseError, match="unpacks to over 256 MiB"):
        parse_bytes(bomb, "bomb.docx")


def _pdf(pages: list[list[str]], outline: dict[str, int]) -> bytes:
    """A PDF whose pages hold the given lines in Helvetica, with outline entries -> page index."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
        ops += [f"({line}) Tj T*" for line in lines]
        stream = DecodedStreamObject()
        stream.set_data(("\n".join([*ops, "ET"])).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    for title, index in outline.items():
        writer.add_outline_item(title=title, page_number=index)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_reflows_lines_drops_running_headers_and_uses_the_outline() -> None:
    header = "ACME Handbook - Confidential"
    wrapped = [
        "The boots are made of leather and they were care-",
        "fully stitched by hand in the old workshop by the river",
        "over many long years.",
    ]
    pages = [
        [header, "Introduction", *wrapped, "Page 1"],
        [header, "Care", "Clean the boots every week with a soft brush.", "Page 2"],
        [header, "Storage", "Keep them dry.", "Page 3"],
    ]
    data = _pdf(pages, {"Introduction": 0, "Care": 1, "Storage": 2})
    doc = parse_bytes(data, "handbook.pdf")
    assert header not in doc.text and "Page 2" not in doc.text
    assert doc.text.startswith(
        "# Introduction\n\nThe boots are made of leather and they were carefully stitched by hand"
    )
    assert [(s.text, s.page) for s in doc.sections if s.kind == "heading"] == [
        ("# Introduction", 1),
        ("# Care", 2),
        ("# Storage", 3),
    ]
    assert doc.title == "Introduction"
