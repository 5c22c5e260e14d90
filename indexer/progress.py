"""Ingest and evaluation progress on stderr (rich); silent when stderr is not a terminal.

The ingest bar counts chunks embedded and written, the slow part, with the files parsed as a
second field; it fits 80 columns. While files remain unparsed the chunk total is an estimate
(chunks per parsed file times files), marked `~`, so the ETA means something from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["IngestProgress", "count_progress", "estimated_chunks", "ingest_progress"]

_BAR_WIDTH = 16  # with the counts and both clocks, the line stays within 80 columns


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """Where an ingest stands: reported after each file is parsed and each group is written."""

    files_done: int  # parsed (or skipped as unchanged, or failed)
    files_total: int | None  # None when the items came from an iterator of unknown length
    chunks_found: int  # chunks of the files parsed so far
    chunks_done: int  # chunks embedded (or found in the cache) and written


def estimated_chunks(state: IngestProgress) -> tuple[int, bool]:
    """(total chunks, whether that is an estimate)."""
    total, done = state.files_total, state.files_done
    if total is None or done >= total or done == 0:
        return state.chunks_found, False
    return max(state.chunks_found, round(state.chunks_found * total / done)), True


def _console(console: Console | None) -> Console:
    return console or Console(stderr=True)


@contextmanager
def ingest_progress(
    *, enabled: bool, console: Console | None = None
) -> Iterator[Callable[[IngestProgress], None]]:
    """Yields the Ingestor's `on_progress` callback, drawing one bar."""
    if not enabled:
        yield lambda _state: None
        return
    columns = (
        TextColumn("[bold]ingest"),
        BarColumn(bar_width=_BAR_WIDTH),
        TextColumn("{task.fields[chunks]} chunks"),
        TextColumn("{task.fields[files]} files", style="dim"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_console(console), transient=True, expand=False) as progress:
        task = progress.add_task("ingest", total=None, chunks="0/?", files="0")

        def update(state: IngestProgress) -> None:
            total, estimate = estimated_chunks(state)
            files = f"{state.files_done}" + (
                f"/{state.files_total}" if state.files_total is not None else ""
            )
            chunks = f"{state.chunks_done:,}/{'~' if estimate else ''}{total:,}"
            progress.update(
                task, completed=state.chunks_done, total=total or None, chunks=chunks, files=files
            )

        yield update


@contextmanager
def count_progress(
    label: str, total: int, *, enabled: bool, console: Console | None = None
) -> Iterator[Callable[[], None]]:
    """A plain counted bar (e.g. evaluation queries); yields `advance()`."""
    if not enabled:
        yield lambda: None
        return
    columns = (
        TextColumn(f"[bold]{label}"),
        BarColumn(bar_width=_BAR_WIDTH),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_console(console), transient=True, expand=False) as progress:
        task = progress.add_task(label, total=total)
        yield lambda: progress.advance(task)
