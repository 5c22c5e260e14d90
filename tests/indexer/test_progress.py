"""Ingest progress: counts chunks embedded and written, estimates the total, fits 80 columns."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from rich.console import Console

from indexer.index import Index
from indexer.ingest import Ingestor, discover
from indexer.progress import IngestProgress, estimated_chunks, ingest_progress
from indexer.providers.local import HashingEmbedder
from tests.conftest import MakeCollection

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_ingest_reports_chunks_written_and_files_parsed(
    index: Index, make_collection: MakeCollection, docs: Path
) -> None:
    states: list[IngestProgress] = []
    ingestor = Ingestor(index, make_collection(), HashingEmbedder(), on_progress=states.append)
    report = asyncio.run(ingestor.run(discover([docs])))

    assert [s.files_done for s in states if s.chunks_done == 0] == [1, 2, 3]
    assert all(s.files_total == 3 for s in states)
    last = states[-1]
    assert last.chunks_done == last.chunks_found == report.chunks > 0
    assert estimated_chunks(last) == (report.chunks, False)


def test_chunk_total_is_extrapolated_while_files_remain() -> None:
    state = IngestProgress(files_done=10, files_total=100, chunks_found=250, chunks_done=0)
    assert estimated_chunks(state) == (2500, True)
    unknown = IngestProgress(files_done=10, files_total=None, chunks_found=250, chunks_done=0)
    assert estimated_chunks(unknown) == (250, False)


def test_progress_line_fits_80_columns_with_counts_and_eta() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    with ingest_progress(enabled=True, console=console) as update:
        update(IngestProgress(files_done=51, files_total=102, chunks_found=6_200, chunks_done=512))
    lines = [_ANSI.sub("", line) for line in re.split(r"[\r\n]", out.getvalue())]
    drawn = [line for line in lines if "ingest" in line]
    assert drawn
    assert max(len(line.rstrip()) for line in drawn) <= 80
    assert any("512/~12,400 chunks" in line and "51/102 files" in line for line in drawn)
    assert any("eta" in line for line in drawn)
