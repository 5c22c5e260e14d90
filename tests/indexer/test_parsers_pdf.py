"""PDF layout: headings from type size and weight, re-flow, page numbers, CJK, on PDFs
written at test time with reportlab."""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from indexer.parsers import parse_bytes

Line = tuple[str, str, float]  # (text, font, size)
BODY = "Helvetica"
BOLD = "Helvetica-Bold"


def _pdf(pages: Sequence[Sequence[Line]], title: str | None = None) -> bytes:
    """One page per entry; each line at its font and size, one below the other."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(612, 792))
    if title:
        pdf.setTitle(title)
    for lines in pages:
        y = 740.0
        for text, font, size in lines:
            pdf.setFont(font, size)
            pdf.drawString(72, y, text)
            y -= size * 1.5
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _body(*lines: str) -> list[Line]:
    return [(line, BODY, 10) for line in lines]


def test_pdf_headings_come_from_font_size_and_bold_with_levels_by_heading_size() -> None:
    pages = [
        [
            ("Field Guide", BOLD, 20),
            *_body("This guide explains how the boots are made and how to look after", "them."),
            ("Materials", BOLD, 14),
            *_body("The leather is tanned with bark for many months before it is cut."),
            ("Soles", BOLD, 10),
            *_body("Soles are stitched, never glued, so they can be replaced."),
        ],
        [
            ("Care", BOLD, 14),
            *_body(
                "Clean the boots every week with a soft brush and dry them slowly",
                "at room temperature.",
            ),
        ],
    ]
    doc = parse_bytes(_pdf(pages), "guide.pdf")
    headings = [(s.text, s.page) for s in doc.sections if s.kind == "heading"]
    assert headings == [
        ("# Field Guide", 1),
        ("## Materials", 1),
        ("### Soles", 1),
        ("## Care", 2),
    ]
    care = next(s for s in doc.sections if s.text.startswith("Clean the boots"))
    assert care.heading_path == ("Field Guide", "Care") and care.page == 2
    assert care.text == (
        "Clean the boots every week with a soft brush and dry them slowly at room temperature."
    )
    assert doc.title == "Field Guide"


def test_pdf_bold_phrase_inside_a_paragraph_is_not_a_heading() -> None:
    lines = [
        *_body("The first rule of boot care is simple and the"),
        ("most important one of all", BOLD, 10),
        *_body("is that wet leather must never dry near a fire."),
    ]
    doc = parse_bytes(_pdf([lines]), "rule.pdf")
    assert [s.kind for s in doc.sections] == ["text"]
    assert "the most important one of all is that" in doc.text


def test_pdf_drops_running_headers_and_page_numbers_and_keeps_pages() -> None:
    topics = ["laces", "soles", "heels", "polish"]
    pages = [
        [
            ("ACME Handbook", BODY, 8),
            *_body(f"All about {topic}: check them monthly."),
            (str(number), BODY, 8),
        ]
        for number, topic in enumerate(topics, start=1)
    ]
    doc = parse_bytes(_pdf(pages, title="Handbook"), "handbook.pdf")
    assert doc.title == "Handbook"
    assert [(s.text, s.page) for s in doc.sections] == [
        (f"All about {topic}: check them monthly.", n) for n, topic in enumerate(topics, start=1)
    ]
    assert doc.metadata == {"pages": 4}


def test_pdf_chinese_text_with_a_heading() -> None:
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # built in: no font file needed
    song = "STSong-Light"
    lines = [
        ("第一章 检索增强生成", song, 18),
        ("检索增强生成把搜索和大模型结合起来，先找到相关的", song, 11),
        ("段落，再让模型根据这些段落回答问题。", song, 11),
    ]
    doc = parse_bytes(_pdf([lines]), "zh.pdf")
    assert doc.text == (
        "# 第一章 检索增强生成\n\n检索增强生成把搜索和大模型结合起来，先找到相关的段落，"
        "再让模型根据这些段落回答问题。"
    )


def test_pdf_drop_cap_joins_its_word_and_takes_no_heading_level() -> None:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.setFont("Times-Bold", 16)
    pdf.drawString(72, 770, "Boots")
    pdf.setFont("Times-Roman", 34)
    pdf.drawString(72, 712, "T")
    pdf.setFont("Times-Roman", 10)
    pdf.drawString(96, 736, "he Boots self-locking nut is of one piece, all-metal")
    pdf.drawString(96, 724, "construction designed to hold tight despite severe")
    pdf.drawString(96, 712, "vibration and heat.")
    pdf.showPage()
    pdf.save()
    doc = parse_bytes(buffer.getvalue(), "nut.pdf")
    assert doc.text == (
        "# Boots\n\n"
        "The Boots self-locking nut is of one piece, all-metal construction designed to hold"
        " tight despite severe vibration and heat."
    )
    assert [s.kind for s in doc.sections] == ["heading", "text"]


def test_pdf_parses_from_many_threads_at_once() -> None:
    # PDFium is not thread-safe; ingest parses in worker threads.
    pages = [_body(f"This page is about {topic}.") for topic in ("boots", "laces", "soles")]
    data = _pdf(pages)
    expected = parse_bytes(data, "boots.pdf").text
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(lambda _: parse_bytes(data, "boots.pdf").text, range(16)))
    assert texts == [expected] * 16
