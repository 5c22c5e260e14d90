"""Document parsers: every format's structure, the span invariant, decoding and error cases."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfWriter

from indexer.chunking import chunk_document
from indexer.errors import ParseError, UnsupportedMediaType
from indexer.parsers import SUPPORTED_SUFFIXES, media_type_for, parse_bytes
from indexer.records import ParsedDocument

DATA = Path(__file__).resolve().parent.parent / "data"
CHINESE_PARAGRAPHS = [
    "检索增强生成",
    "这是第一段中文文本，用于测试编码识别。",
    "第二段：快速入门指南。",
]


def parse_file(name: str) -> ParsedDocument:
    return parse_bytes((DATA / name).read_bytes(), name)


def assert_well_formed(doc: ParsedDocument) -> None:
    """Spans are exact, in order, non-overlapping, and the text is the sections joined."""
    assert doc.sections
    previous_end = -2
    for section in doc.sections:
        assert doc.text[section.start : section.end] == section.text
        assert section.text.strip() == section.text != ""
        assert section.start == previous_end + 2
        previous_end = section.end
    assert doc.text == "\n\n".join(s.text for s in doc.sections)


def texts(doc: ParsedDocument) -> list[str]:
    return [s.text for s in doc.sections]


def pdf_bytes(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- dispatch -------------------------------------------------------------------------------


def test_supported_suffixes_cover_every_format() -> None:
    assert {
        ".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".json", ".jsonl", ".csv",
        ".pptx", ".xlsx", ".xlsm", ".odt", ".ods", ".odp", ".epub", ".adoc", ".asciidoc", ".asc",
    } == SUPPORTED_SUFFIXES  # fmt: skip


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [
        ("notes.md", "text/markdown"),
        ("NOTES.MARKDOWN", "text/markdown"),
        ("dir/page.HTM", "text/html"),
        ("C:\\docs\\report.Pdf", "application/pdf"),
        ("rows.csv", "text/csv"),
        ("a.b.jsonl", "application/x-ndjson"),
    ],
)
def test_media_type_for_maps_suffix_case_insensitively(filename: str, media_type: str) -> None:
    assert media_type_for(filename) == media_type


@pytest.mark.parametrize("filename", ["image.png", "README", ".md", "archive.tar.gz"])
def test_media_type_for_rejects_unknown_suffix(filename: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        media_type_for(filename)


def test_parse_bytes_rejects_unknown_suffix_before_reading() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"'\.exe'"):
        parse_bytes(b"MZ\x90\x00", "setup.exe")


@pytest.mark.parametrize(
    "name",
    [
        "sample.txt", "sample.md", "sample.html", "gbk.html", "sample.pdf", "sample.docx",
        "sample.json", "sample.jsonl", "sample.csv", "chinese_gbk.txt", "chinese_utf16.txt",
        "chinese_utf8_bom.txt",
    ],
)  # fmt: skip
def test_parse_bytes_keeps_span_invariant_for_every_format(name: str) -> None:
    doc = parse_file(name)
    assert_well_formed(doc)
    assert doc.media_type == media_type_for(name)


# --- text and decoding ----------------------------------------------------------------------


def test_text_splits_paragraphs_and_normalises() -> None:
    doc = parse_file("sample.txt")
    assert texts(doc) == [
        "First paragraph line one.\nStill the first paragraph.",
        "Second paragraph, caf\u00e9.",  # NFC: e + combining acute became one character
    ]
    assert doc.title is None
    assert all(s.heading_path == () and s.page is None for s in doc.sections)


@pytest.mark.parametrize("name", ["chinese_gbk.txt", "chinese_utf16.txt", "chinese_utf8_bom.txt"])
def test_text_decodes_chinese_encodings(name: str) -> None:
    assert texts(parse_file(name)) == CHINESE_PARAGRAPHS


def test_text_decodes_short_gbk_and_utf16_be() -> None:
    assert parse_bytes("快速入门".encode("gbk"), "a.txt").text == "快速入门"
    assert parse_bytes(b"\xfe\xff" + "中文".encode("utf-16-be"), "a.txt").text == "中文"


def test_text_decodes_bomless_utf16_ascii() -> None:
    assert parse_bytes("plain words".encode("utf-16-le"), "a.txt").text == "plain words"


def test_text_collapses_blank_runs_and_trailing_spaces() -> None:
    doc = parse_bytes(b"a  \n\n\n\n\nb\t\n", "a.md")
    assert doc.text == "a\n\nb"


# --- markdown -------------------------------------------------------------------------------


def test_markdown_builds_heading_paths_and_front_matter() -> None:
    doc = parse_file("sample.md")
    assert doc.title == "Ragsearch Manual"
    assert doc.metadata == {"author": "Ada"}
    by_text = {s.text: s.heading_path for s in doc.sections}
    assert by_text["Ragsearch answers questions with **citations**."] == ("Overview",)
    assert by_text["```bash\npip install ragsearch\n```"] == ("Overview", "Install", "On Linux")
    assert by_text["- fast\n- local"] == ("Overview", "Install", "On Linux")
    assert by_text["> Quoted advice."] == ("Overview", "Usage")
    assert by_text["Raw HTML block"] == ("Overview", "Usage")
    assert any(t.startswith("| Option | Meaning |") for t in by_text)
    assert "title:" not in doc.text and "{ #" not in doc.text and "comment" not in doc.text


def test_markdown_title_is_first_h1_without_front_matter() -> None:
    doc = parse_bytes(b"Intro.\n\n# Main { #main }\n\nBody.\n\n# Second\n\nMore.\n", "x.md")
    assert doc.title == "Main"
    assert [(s.text, s.heading_path) for s in doc.sections] == [
        ("Intro.", ()),
        ("# Main", ("Main",)),
        ("Body.", ("Main",)),
        ("# Second", ("Second",)),
        ("More.", ("Second",)),
    ]


def test_markdown_keeps_heading_only_document() -> None:
    doc = parse_bytes(b"# Only a heading\n", "x.md")
    assert texts(doc) == ["# Only a heading"]


# --- html -----------------------------------------------------------------------------------


def test_html_extracts_blocks_under_headings() -> None:
    doc = parse_file("sample.html")
    assert doc.title == "Ragsearch Docs"
    sections = {s.text: (s.heading_path, s.kind) for s in doc.sections}
    assert sections["# Ragsearch"] == (("Ragsearch",), "heading")
    assert sections["Intro paragraph across lines."] == (("Ragsearch",), "text")
    linux = ("Ragsearch", "Install", "On Linux")
    assert sections["### On Linux"] == (linux, "heading")
    assert sections["- First step\n- Second step\n  - Nested step"] == (linux, "list")
    assert sections["```\npip install ragsearch\n  --upgrade\n```"] == (linux, "code")
    assert sections["| OS | Status |\n|---|---|\n| Linux | Supported |"] == (linux, "table")
    assert sections["Quoted line\nsecond line"] == (("Ragsearch", "Usage"), "text")
    assert {"Term", "Definition", "Loose text in a div"} <= set(sections)
    for dropped in ("hidden", "color: red", "Menu item", "site header", "Copyright"):
        assert dropped not in doc.text


def test_html_drops_hidden_and_navigation_roles() -> None:
    page = b'<body><div role="navigation">Skip me</div><p hidden>Secret</p><p>Kept</p></body>'
    assert parse_bytes(page, "a.html").text == "Kept"


def test_html_uses_declared_gbk_charset() -> None:
    doc = parse_file("gbk.html")
    assert doc.title == "中文页面"
    assert doc.text == "检索增强生成服务"


def test_html_without_visible_text_is_parse_error() -> None:
    with pytest.raises(ParseError, match="no visible text"):
        parse_bytes(b"<html><head><script>x()</script></head><body> </body></html>", "a.html")


# --- pdf ------------------------------------------------------------------------------------


def test_pdf_sets_pages_and_metadata_title() -> None:
    doc = parse_file("sample.pdf")
    assert doc.title == "Ragsearch Sample PDF"
    assert [s.page for s in doc.sections] == [1, 2]
    assert doc.sections[0].text.startswith("Getting Started")
    assert "Vectors live in FAISS." in doc.sections[1].text
    assert doc.metadata == {"pages": 2}


def test_pdf_corrupt_file_is_parse_error() -> None:
    with pytest.raises(ParseError, match="corrupt PDF"):
        parse_file("broken.pdf")


def test_pdf_truncated_file_is_parse_error() -> None:
    data = (DATA / "sample.pdf").read_bytes()
    with pytest.raises(ParseError, match="corrupt PDF"):
        parse_bytes(data[: len(data) // 2], "half.pdf")


def test_pdf_without_header_is_parse_error() -> None:
    with pytest.raises(ParseError, match="no %PDF header"):
        parse_bytes(b"just some text", "fake.pdf")


def test_pdf_without_text_is_parse_error() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with pytest.raises(ParseError, match="no extractable text"):
        parse_bytes(pdf_bytes(writer), "scan.pdf")


def test_pdf_with_user_password_is_parse_error() -> None:
    writer = PdfWriter(clone_from=io.BytesIO((DATA / "sample.pdf").read_bytes()))
    writer.encrypt("secret", algorithm="RC4-128")
    with pytest.raises(ParseError, match="encrypted PDF"):
        parse_bytes(pdf_bytes(writer), "locked.pdf")


def test_pdf_with_only_owner_password_opens() -> None:
    writer = PdfWriter(clone_from=io.BytesIO((DATA / "sample.pdf").read_bytes()))
    writer.encrypt("", owner_password="owner", algorithm="RC4-128")
    doc = parse_bytes(pdf_bytes(writer), "owner.pdf")
    assert [s.page for s in doc.sections] == [1, 2]


# --- docx -----------------------------------------------------------------------------------


def test_docx_builds_heading_paths_and_tables() -> None:
    doc = parse_file("sample.docx")
    assert doc.title == "Ragsearch Guide"
    guide, install = ("Ragsearch Guide",), ("Ragsearch Guide", "Install")
    linux = ("Ragsearch Guide", "Install", "On Linux")
    assert [(s.text, s.heading_path) for s in doc.sections] == [
        ("# Ragsearch Guide", guide),
        ("An introduction before any heading.", guide),
        ("## Install", install),
        ("Use pip to install the package.", install),
        ("### On Linux", linux),
        ("Run the installer as a normal user.", linux),
        ("| OS | Status |\n|---|---|\n| Linux | Supported |", linux),
        ("## Usage", ("Ragsearch Guide", "Usage")),
        ("Search with the CLI.", ("Ragsearch Guide", "Usage")),
    ]


def test_docx_renamed_text_file_is_parse_error() -> None:
    with pytest.raises(ParseError, match="not a DOCX file"):
        parse_file("fake.docx")


def test_docx_zip_without_word_document_is_parse_error() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not word")
    with pytest.raises(ParseError, match="no Word document inside the zip"):
        parse_bytes(buffer.getvalue(), "fake.docx")


# --- json, jsonl, csv -----------------------------------------------------------------------


def test_json_uses_text_field_and_flattens_other_records() -> None:
    doc = parse_file("sample.json")
    assert [(s.text, s.heading_path) for s in doc.sections] == [
        ("First sentence. Second sentence.", ("Doc B",)),
        ("id: 7\nscore: 0.5\nok: true", ()),
    ]


def test_json_unwraps_single_record_list() -> None:
    data = b'{"version": "2", "data": [{"content": "One."}, {"content": "Two."}]}'
    doc = parse_bytes(data, "wrapped.json")
    assert texts(doc) == ["One.", "Two."]
    assert doc.metadata == {"version": "2", "records": 2}


def test_json_invalid_document_is_parse_error() -> None:
    with pytest.raises(ParseError, match="invalid JSON at line 1"):
        parse_bytes(b'{"text": ', "bad.json")


def test_jsonl_renders_each_line_as_record() -> None:
    doc = parse_file("sample.jsonl")
    assert [(s.text, s.heading_path) for s in doc.sections] == [
        ("Alpha text.", ("Doc A",)),
        ("id: 2\nmeta.lang: en\nmeta.tags: a, b", ()),
    ]


def test_jsonl_malformed_line_names_line_number() -> None:
    with pytest.raises(ParseError, match="line 3"):
        parse_file("broken.jsonl")


def test_csv_sniffs_delimiter_and_tolerates_ragged_rows() -> None:
    doc = parse_file("sample.csv")
    assert texts(doc) == [
        "| name | city | note |  |\n"
        "|---|---|---|---|\n"
        "| Ada | London | first |  |\n"
        "| Linus | Helsinki |  |  |\n"
        "| Grace | Arlington | x | extra |"
    ]
    assert [s.kind for s in doc.sections] == ["table"]
    assert doc.metadata == {"columns": ["name", "city", "note"], "rows": 3, "delimiter": ";"}


@pytest.mark.parametrize("delimiter", [",", "\t", "|"])
def test_csv_reads_common_delimiters(delimiter: str) -> None:
    data = delimiter.join(["a", "b"]) + "\n" + delimiter.join(["1", '"x, y|z"']) + "\n"
    assert texts(parse_bytes(data.encode(), "t.csv")) == ["| a | b |\n|---|---|\n| 1 | x, y\\|z |"]


def test_csv_long_table_is_chunked_with_its_header_repeated() -> None:
    rows = "".join(f"{n},item number {n} with a few words\n" for n in range(400))
    doc = parse_bytes(("id,description\n" + rows).encode(), "long.csv")
    chunks = chunk_document(doc, max_tokens=200, overlap_sentences=0, count_tokens=len)
    assert len(chunks) > 3
    header = "| id | description |\n|---|---|"
    assert chunks[0].text.startswith(header)
    assert all(c.context == header and header in c.embed_text for c in chunks[1:])
    assert chunks[-1].text.endswith("| 399 | item number 399 with a few words |")


# --- error cases shared by all formats ------------------------------------------------------


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
def test_parse_bytes_empty_file_is_parse_error(suffix: str) -> None:
    with pytest.raises(ParseError, match="file is empty"):
        parse_bytes(b"", f"empty{suffix}")


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
def test_parse_bytes_whitespace_only_is_parse_error(suffix: str) -> None:
    with pytest.raises(ParseError, match="only whitespace"):
        parse_bytes(b" \n\t\r\n  ", f"blank{suffix}")


def test_markdown_whitespace_only_file_is_parse_error() -> None:
    with pytest.raises(ParseError, match="only whitespace"):
        parse_file("whitespace.md")


def test_text_utf16_whitespace_is_parse_error() -> None:
    with pytest.raises(ParseError, match="only whitespace"):
        parse_bytes(" \n ".encode("utf-16"), "blank.txt")


def test_text_binary_file_is_parse_error() -> None:
    with pytest.raises(ParseError, match="binary data in a text file"):
        parse_file("binary.txt")


def test_markdown_control_characters_are_parse_error() -> None:
    data = bytes(range(1, 32)) * 20 + b"some text"
    with pytest.raises(ParseError, match="binary data in a text file"):
        parse_bytes(data, "noise.md")
