"""The ingestion and index-management commands of `ragsearch`: ingest, status, documents,
delete, collections. `service.cli.build_cli` puts them in one group with the query commands;
`run` here serves them alone (the light entry the crash tests kill mid-ingest).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from indexer.cli_context import (
    AppContext,
    emit_json,
    new_group,
    notice_default,
    open_index,
    pass_app,
    reports_errors,
    writing,
)
from indexer.json_values import MAX_ID
from indexer.records import (
    MAX_CHUNK_TOKENS,
    MAX_DIMENSIONS,
    MAX_OVERLAP_SENTENCES,
    MIN_CHUNK_TOKENS,
)
from indexer.vector_commands import export_vectors, import_vectors

if TYPE_CHECKING:
    from indexer.index import Index
    from indexer.ingest import Ingestor, SourceItem
    from indexer.providers.factory import EmbedderCache
    from indexer.records import IngestReport
    from indexer.settings import Settings

__all__ = ["COMMANDS", "run"]


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("-c", "--collection", required=True, help="Collection to ingest into.")
@click.option("--sync", is_flag=True, help="Delete documents whose files vanished from PATHS.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Follow symbolic links that leave the named directories (default: report and skip).",
)
@click.option(
    "--dimensions",
    type=click.IntRange(1, MAX_DIMENSIONS),
    default=None,
    help="Expected vector size; refused if the collection was created with another.",
)
@click.option(
    "-m",
    "--metadata",
    "metadata_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata for every file (repeatable); numbers and true/false stay typed.",
)
@click.option(
    "--metadata-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A JSON object of metadata for every file (a sidecar); --metadata adds to it.",
)
@pass_app
@reports_errors
def ingest(
    app: AppContext,
    paths: tuple[str, ...],
    collection: str,
    sync: bool,
    as_json: bool,
    quiet: bool,
    follow_symlinks: bool,
    dimensions: int | None,
    metadata_pairs: tuple[str, ...],
    metadata_file: Path | None,
) -> None:
    """Parse, chunk, embed and store files (directories recursively) or web pages.

    Unchanged files cost nothing on a re-run; changed files replace their chunks. Links
    leaving a named directory and anything not a regular file (FIFOs, devices) are reported
    as skipped and never read.
    An http(s) URL is downloaded (public addresses only, see
    RAGSEARCH_URL_FETCH_ALLOWED_NETWORKS; size and time limited) and stored under its URL.
    Metadata is filterable in search (`--filter`); it is stored when a file is added or
    changed (unchanged content is skipped, metadata included).
    Exit status: 0 when every file landed, 1 when some failed, 2 for a usage error,
    4 when another writer holds the data directory, 7 when the disk filled (the report of
    what landed is still printed with --json).
    """
    from indexer.metadata_options import metadata_from_options
    from indexer.providers.factory import EmbedderCache

    settings = app.settings
    metadata = metadata_from_options(metadata_pairs, metadata_file)
    files, items = _sources(paths, metadata, settings, follow_symlinks)
    embedders = EmbedderCache(settings)
    with writing(settings, "ingest") as index:
        report, first_run = _ingest_into(
            index,
            embedders,
            collection,
            items,
            files if sync else None,
            dimensions,
            quiet=quiet,
            as_json=as_json,
        )
    _print_report(collection, report, as_json)
    if first_run and report.added and not quiet:
        _next_steps(collection)
    if report.failed:
        sys.exit(1)


def _ingest_into(
    index: Index,
    embedders: EmbedderCache,
    collection: str,
    items: list[SourceItem],
    sync: list[Path] | None,
    dimensions: int | None,
    *,
    quiet: bool,
    as_json: bool,
) -> tuple[IngestReport, bool]:
    """Ingest `items` under the writer lock; returns the report and whether the collection
    was empty before (a first run)."""
    from indexer.collections import drop_if_empty, ensure_collection
    from indexer.errors import Conflict, StorageError
    from indexer.ingest import Ingestor
    from indexer.progress import ingest_progress

    created = index.catalog.find_collection(collection) is None
    if created:
        notice_default(index.settings)
    target = ensure_collection(index, embedders, collection)
    first_run = index.catalog.count_documents(target.id) == 0
    if dimensions is not None and dimensions != target.dimensions:
        raise Conflict(
            f"collection {collection!r} stores {target.dimensions}-dimensional vectors; "
            f"its dimension cannot change to {dimensions} (create a new collection)"
        )
    embedder = embedders.for_collection(target)
    show = not quiet and sys.stderr.isatty()
    with ingest_progress(enabled=show) as on_progress:
        ingestor = Ingestor(index, target, embedder, on_progress=on_progress)
        try:
            report = asyncio.run(_run_and_close(ingestor, items, sync, embedders))
        except StorageError:
            # Keep the report of what landed before the disk filled, then the error.
            if as_json:
                emit_json(ingestor.report.as_dict())
            raise
    if created and (report.failed or report.skipped) and drop_if_empty(index, target):
        click.echo(f"{collection}: nothing was ingested; the new collection was not kept", err=True)
    return report, first_run


def _next_steps(collection: str) -> None:
    """After the first ingest into an empty collection: what to try next (on stderr)."""
    name = (
        collection if collection.replace("-", "").replace("_", "").isalnum() else repr(collection)
    )
    click.echo(
        "\nnext steps:\n"
        f'  ragsearch search "your question" -c {name}\n'
        f'  ragsearch ask "your question" -c {name}\n'
        f"  ragsearch show DOCUMENT -c {name}      # a document's text and chunks\n"
        "  ragsearch serve                       # then open http://127.0.0.1:8000/console",
        err=True,
    )


def _sources(
    paths: Sequence[str], metadata: dict[str, Any], settings: Settings, follow_symlinks: bool
) -> tuple[list[Path], list[SourceItem]]:
    """The files named (for `--sync`), and every item to ingest: files found under the paths
    and pages downloaded from the URLs, each with `metadata`."""
    from dataclasses import replace

    from indexer.ingest import discover
    from indexer.url_fetch import is_url

    urls = [p for p in paths if is_url(p)]
    files = [Path(p) for p in paths if not is_url(p)]
    found = discover(files, follow_symlinks=follow_symlinks)
    if urls:
        found += asyncio.run(_fetch_pages(urls, settings))
    return files, [replace(i, metadata=dict(metadata)) for i in found]


async def _fetch_pages(urls: list[str], settings: Settings) -> list[SourceItem]:
    from indexer.ingest import SourceItem
    from indexer.url_fetch import UrlPolicy, fetch_url

    policy = UrlPolicy.from_settings(
        settings.max_file_bytes, settings.url_fetch_timeout, settings.url_fetch_allowed_networks
    )
    items = []
    for url in urls:
        page = await fetch_url(url, policy)
        items.append(SourceItem(url, page.filename, data=page.data))
    return items


def _print_report(collection: str, report: IngestReport, as_json: bool) -> None:
    """The report as JSON on stdout, or a summary line with failures and skips on stderr."""
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(
        f"{collection}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deleted} deleted, {len(report.failed)} failed, "
        f"{len(report.skipped)} skipped; "
        f"{report.chunks} chunks written, {report.embedded} embedded, {report.reused} reused "
        f"({report.seconds:.1f}s)"
    )
    for failure in report.failed:
        click.echo(f"failed: {failure.source}: {failure.error}", err=True)
    for skipped in report.skipped:
        click.echo(f"skipped: {skipped.source}: {skipped.error}", err=True)


async def _run_and_close(
    ingestor: Ingestor,
    items: list[SourceItem],
    sync: Sequence[Path] | None,
    embedders: EmbedderCache,
) -> IngestReport:
    try:
        return await ingestor.run(items, sync_scope=list(sync) if sync is not None else None)
    finally:
        await embedders.aclose()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def status(app: AppContext, as_json: bool) -> None:
    """Collections with their document, chunk and vector counts and consistency."""
    with open_index(app.settings, writer=False) as index:
        rows = [index.status(c) for c in index.catalog.list_collections()]
    if as_json:
        emit_json(
            {
                "collections": [
                    {
                        "name": r.name,
                        "documents": r.documents,
                        "chunks": r.chunks,
                        "vectors": r.vectors,
                        "consistent": r.consistent,
                        "checksum": r.checksum,
                        "notes": r.notes,
                    }
                    for r in rows
                ]
            }
        )
        return
    if not rows:
        click.echo("no collections")
    for r in rows:
        state = "consistent" if r.consistent else "INCONSISTENT (next write repairs it)"
        click.echo(
            f"{r.name}: {r.documents} documents, {r.chunks} chunks, {r.vectors} vectors, {state}"
        )
        for note in r.notes:
            click.echo(f"  note: {note}")


@click.command()
@click.option("-c", "--collection", required=True, help="Collection to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def documents(app: AppContext, collection: str, as_json: bool) -> None:
    """Documents of a collection."""
    with open_index(app.settings, writer=False) as index:
        target = index.catalog.get_collection(collection)
        docs = index.catalog.list_documents(target.id)
    if as_json:
        emit_json({"documents": [d.as_dict() for d in docs]})
        return
    for d in docs:
        click.echo(f"{d.id}\t{d.chunk_count} chunks\t{d.title or ''}\t{d.source}")


@click.command()
@click.option("-c", "--collection", required=True, help="Collection to delete from.")
@click.option("--source", "sources", multiple=True, help="Source (file path) to delete.")
@click.option(
    "--id", "ids", multiple=True, type=click.IntRange(1, MAX_ID), help="Document id to delete."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def delete(
    app: AppContext, collection: str, sources: tuple[str, ...], ids: tuple[int, ...], as_json: bool
) -> None:
    """Delete documents (their chunks, vectors and text) by source or id."""
    from indexer.errors import InputError, NotFound
    from indexer.ingest import delete_documents, source_for_path

    if not sources and not ids:
        raise InputError("name at least one --source or --id")
    with writing(app.settings, "delete") as index:
        target = index.catalog.get_collection(collection)
        wanted = list(ids)
        for source in sources:
            found = index.catalog.find_document_by_source(target.id, source)
            if found is None:
                found = index.catalog.find_document_by_source(
                    target.id, source_for_path(Path(source))
                )
            if found is None:
                raise NotFound(f"no document with source {source!r} in {collection!r}")
            wanted.append(found.id)
        delete_documents(index, target, wanted)
    if as_json:
        emit_json({"deleted": len(wanted)})
    else:
        click.echo(f"deleted {len(wanted)} document(s) from {collection}")


@click.group()
def collections() -> None:
    """Create, list and drop collections."""


@collections.command("create")
@click.argument("name")
@click.option(
    "--embedder",
    type=click.Choice(["local", "zhipu", "hashing"]),
    default=None,
    help="Embedding provider (default: zhipu with a key, else local).",
)
@click.option("--model", default=None, help="Embedding model name (or local model path).")
@click.option(
    "--dimensions",
    type=click.IntRange(1, MAX_DIMENSIONS),
    default=None,
    help="Vector size (Zhipu embedding-3; a local model takes only its own).",
)
@click.option(
    "--chunk-tokens",
    type=click.IntRange(MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS),
    default=None,
    help="Chunk size in tokens.",
)
@click.option(
    "--overlap",
    type=click.IntRange(0, MAX_OVERLAP_SENTENCES),
    default=None,
    help="Sentences of overlap between chunks.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def collections_create(
    app: AppContext,
    name: str,
    embedder: str | None,
    model: str | None,
    dimensions: int | None,
    chunk_tokens: int | None,
    overlap: int | None,
    as_json: bool,
) -> None:
    """Create a collection with an explicit embedder and chunking (fixed from then on)."""
    from indexer.collections import create_collection
    from indexer.providers.factory import EmbedderCache, requested_embedder_spec

    settings = app.settings
    spec = requested_embedder_spec(settings, embedder, model, dimensions)
    with writing(settings, "create a collection") as index:
        created = create_collection(
            index,
            EmbedderCache(settings),
            name,
            spec,
            chunk_tokens=chunk_tokens,
            overlap_sentences=overlap,
        )
    info = created.as_dict()
    if as_json:
        emit_json(info)
    else:
        click.echo(
            f"created {created.name}: {created.embedder_provider} {created.embedder_model}, "
            f"{created.dimensions} dimensions, chunks of {created.chunk_tokens} tokens"
        )


@collections.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def collections_list(app: AppContext, as_json: bool) -> None:
    """List collections and their embedders."""
    with open_index(app.settings, writer=False) as index:
        found = index.catalog.list_collections()
    if as_json:
        emit_json({"collections": [c.as_dict() for c in found]})
        return
    for c in found:
        click.echo(f"{c.name}\t{c.embedder_provider}:{c.embedder_model}\t{c.dimensions}d")


@collections.command("drop")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@reports_errors
def collections_drop(app: AppContext, name: str, yes: bool) -> None:
    """Drop a collection with all its documents and vectors."""
    with open_index(app.settings, writer=False) as index:
        index.catalog.get_collection(name)  # NotFound before any question
    if not yes and not click.confirm(f"drop collection {name!r} and everything in it?", err=True):
        sys.exit(1)
    with writing(app.settings, "drop a collection") as index:
        dropped = index.catalog.drop_collection(name)
        index.forget(dropped)
    click.echo(f"dropped {name}")


COMMANDS: tuple[click.Command, ...] = (
    ingest,
    status,
    documents,
    delete,
    collections,
    import_vectors,
    export_vectors,
)


def run() -> None:
    """The ingestion commands alone, as a `ragsearch` group."""
    new_group(COMMANDS)(prog_name="ragsearch")
