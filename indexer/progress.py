"""Ingest progress on stderr (rich), silent when stderr is not a terminal or with --quiet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def ingest_progress(total: int, *, enabled: bool) -> Iterator[Callable[[str], None]]:
    """Yields `advance(source)`, called once per file handled."""
    if not enabled:
        yield lambda _source: None
        return
    columns = (
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[source]}", style="dim"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("ingest", total=total, source="")

        def advance(source: str) -> None:
            progress.update(task, advance=1, source=source[-60:])

        yield advance
