"""Unbounded documents: a giant one-word line, too many pages, too many chunks."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from pypdf import PdfWriter

from indexer.chunking import CHARS_PER_TOKEN, chunk_document
from indexer.parsers import parse_bytes
from indexer.providers.local import HashingEmbedder
from tests.conftest import Cli

GIANT = "needleword " + "Z" * 2_000_000 + "\n"


def test_a_giant_word_is_cut_to_the_character_budget() -> None:
    doc = parse_bytes(GIANT.encode(), "giant.txt")
    counter = HashingEmbedder().count_tokens
    assert counter(GIANT) == 2  # the token count saturates: the Z run is one "word"

    started = time.perf_counter()
    chunks = chunk_document(doc, max_tokens=512, overlap_sentences=1, count_tokens=counter)

    assert time.perf_counter() - started < 10
    assert max(len(c.text) for c in chunks) <= 512 * CHARS_PER_TOKEN
    assert sum(len(c.text) for c in chunks) >= 2_000_000
    assert chunks[0].text.startswith("needleword")


def test_search_hits_on_a_giant_line_stay_small(cli: Cli, tmp_path: Path) -> None:
    import service.cli  # noqa: F401 - adds `search`

    folder = tmp_path / "giant"
    folder.mkdir()
    (folder / "giant.txt").write_text(GIANT)
    cli.create_collection()
    assert cli("ingest", folder, "-c", "docs").exit_code == 0

    results = cli.json("search", "needleword", "-c", "docs", "--mode", "lexical")["results"]

    assert results and all(len(r["text"]) <= 8 * 512 for r in results)


def pdf_with_pages(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=72, height=72)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_over_the_page_limit_fails_alone(cli: Cli, docs: Path) -> None:
    (docs / "huge.pdf").write_bytes(pdf_with_pages(30))
    cli.create_collection()

    result = cli(
        "ingest", docs, "-c", "docs", "--json", env={"RAGSEARCH_MAX_PAGES_PER_DOCUMENT": "20"}
    )

    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["added"] == 3
    [failure] = report["failed"]
    assert failure["source"].endswith("huge.pdf")
    assert "30 pages; the limit is 20" in failure["error"]


def test_a_document_over_the_chunk_limit_fails_alone(cli: Cli, docs: Path) -> None:
    (docs / "long.txt").write_text(
        "\n\n".join(f"Paragraph {i} " + "word " * 200 for i in range(50))
    )
    cli.create_collection("docs", "--chunk-tokens", "64")

    result = cli(
        "ingest", docs, "-c", "docs", "--json", env={"RAGSEARCH_MAX_CHUNKS_PER_DOCUMENT": "20"}
    )

    report = json.loads(result.stdout)
    assert report["added"] == 3
    [failure] = report["failed"]
    assert "more than 20 chunks" in failure["error"]
    assert "RAGSEARCH_MAX_CHUNKS_PER_DOCUMENT" in failure["error"]
