"""Display text: extractive answers quote clean sentences, never raw markup."""

from __future__ import annotations

from indexer.records import StoredChunk
from service.query.display import display_text, join_wrapped_lines
from service.query.extractive import extractive_answer

MKDOCS = """# CORS { #cors }

You can configure it in your **FastAPI** application using the `CORSMiddleware`.

{*../../docs_src/cors/tutorial001_py310.py hl[2,6:11,13:19] *}

/// note | Technical Details

You could also use <abbr title="Cross-Origin Resource Sharing">CORS</abbr> from Starlette.

///

```python
app.add_middleware(CORSMiddleware)
```

See the [MDN page](https://developer.mozilla.org) for more [2].
"""


def _chunk(text: str, source: str) -> StoredChunk:
    return StoredChunk(
        id=1,
        document_id=1,
        ordinal=0,
        text=text,
        start=0,
        end=len(text),
        heading_path=(),
        page=None,
        source=source,
        title="t",
        metadata={},
    )


def test_markdown_renders_to_plain_text_without_directives() -> None:
    shown = display_text(_chunk(MKDOCS, "docs/cors.md"))
    assert shown.splitlines() == [
        "You can configure it in your FastAPI application using the CORSMiddleware.",
        "You could also use CORS from Starlette.",
        "See the MDN page for more (2).",
    ]


def test_chinese_lines_join_without_spaces() -> None:
    text = "员工请假需提前一周\n提交审批。\n未休完的年假可顺延至次年。\n"
    assert join_wrapped_lines(text) == "员工请假需提前一周提交审批。\n未休完的年假可顺延至次年。"
    answer = extractive_answer("年假 审批", [_chunk(text, "leave.txt")])
    assert "审批。未休完" in answer and "。 " not in answer


def test_hard_wrapped_pdf_text_becomes_sentences() -> None:
    text = (
        "T\nhe typewriter changed offices. During this period the clerks laid\n"
        "the ground-\nwork for modern filing.\n"
    )
    assert join_wrapped_lines(text) == (
        "The typewriter changed offices. During this period the clerks laid "
        "the groundwork for modern filing."
    )
    answer = extractive_answer("Who laid the groundwork for filing?", [_chunk(text, "a.pdf")])
    assert answer == "During this period the clerks laid the groundwork for modern filing. [1]"


def test_extractive_answer_quotes_display_text() -> None:
    answer = extractive_answer("configure CORSMiddleware", [_chunk(MKDOCS, "cors.md")])
    assert answer.startswith("You can configure it in your FastAPI application")
    for markup in ("**", "`", "{*", "///", "<abbr", "hl["):
        assert markup not in answer


def test_parsed_documents_render_as_markdown_with_wrapped_lines_joined() -> None:
    # What the PDF and DOCX parsers write: Markdown-like text, hard-wrapped.
    text = (
        "## Intro\n\nT\nhe typewriter changed the office. Clerks used the exam-\nple forms.\n"
        "    Indented text is text, not code.\n\n| year | units |\n|---|---|\n| 1900 | 40 |\n\n"
        "A\nlot changed."
    )
    assert display_text(_chunk(text, "report.pdf")).splitlines() == [
        "The typewriter changed the office. Clerks used the example forms. Indented text is "
        "text, not code.",
        "year, units",
        "1900, 40",
        "A lot changed.",
    ]
