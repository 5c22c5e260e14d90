"""The `ragsearch` command line: ingestion and index management.

Data goes to stdout (`--json` for machines), progress and errors to stderr. The service
package adds `serve`, `search`, `ask` and friends to this same group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from indexer.errors import RagsearchError
from indexer.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class AppContext:
    """What every command gets: settings read once from flags and the environment."""

    def __init__(self, data_dir: Path | None) -> None:
        overrides: dict[str, Any] = {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        self.settings = Settings(**overrides)


pass_app = click.make_pass_decorator(AppContext)


def reports_errors(func: F) -> F:
    """Print a RagsearchError as one line on stderr and exit with its code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RagsearchError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: what was committed is kept; run again to finish", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@contextmanager
def open_index(settings: Settings, *, writer: bool) -> Iterator[Any]:
    from indexer.index import Index

    index = Index(settings, writer=writer)
    try:
        yield index
    finally:
        index.close()


@contextmanager
def writing(settings: Settings) -> Iterator[Any]:
    """The index opened for writing, under the data directory's writer lock."""
    from indexer.writer_lock import WriterLock

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with WriterLock(settings.data_dir), open_index(settings, writer=True) as index:
        yield index


def _notice_default(settings: Settings) -> None:
    if not settings.has_zhipu_key:
        click.echo(
            "note: no ZHIPUAI_API_KEY set, using the embedded default "
            f"({settings.local_embedding_model}, runs locally)",
            err=True,
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default ./ragsearch-data, or RAGSEARCH_DATA_DIR).",
)
@click.version_option(package_name="ragsearch")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None) -> None:
    """ragsearch: put documents in, get cited answers out."""
    # pypdf logs every recoverable oddity of a PDF; a file that truly fails is reported anyway.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    ctx.obj = AppContext(data_dir)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-c", "--collection", required=True, help="Collection to ingest into.")
@click.option("--sync", is_flag=True, help="Delete documents whose files vanished from PATHS.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--dimensions",
    type=int,
    default=None,
    help="Expected vector size; refused if the collection was created with another.",
)
@pass_app
@reports_errors
def ingest(
    app: AppContext,
    paths: tuple[Path, ...],
    collection: str,
    sync: bool,
    as_json: bool,
    quiet: bool,
    dimensions: int | None,
) -> None:
    """Parse, chunk, embed and store files (directories recursively).

    Unchanged files cost nothing on a re-run; changed files replace their chunks.
    Exit status: 0 when every file landed, 1 when some failed, 2 for a usage error.
    """
    from indexer.collections import ensure_collection
    from indexer.errors import Conflict
    from indexer.ingest import Ingestor, discover
    from indexer.progress import ingest_progress
    from indexer.providers.factory import EmbedderCache

    settings = app.settings
    items = discover(list(paths))
    embedders = EmbedderCache(settings)
    with writing(settings) as index:
        if index.catalog.find_collection(collection) is None:
            _notice_default(settings)
        target = ensure_collection(index, embedders, collection)
        if dimensions is not None and dimensions != target.dimensions:
            raise Conflict(
                f"collection {collection!r} stores {target.dimensions}-dimensional vectors; "
                f"its dimension cannot change to {dimensions} (create a new collection)"
            )
        embedder = embedders.for_collection(target)
        show = not quiet and sys.stderr.isatty()
        with ingest_progress(len(items), enabled=show) as advance:
            ingestor = Ingestor(index, target, embedder, on_progress=advance)
            report = asyncio.run(
                _run_and_close(ingestor, items, paths if sync else None, embedders)
            )
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(
            f"{collection}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.deleted} deleted, {len(report.failed)} failed; "
            f"{report.chunks} chunks written, {report.embedded} embedded, {report.reused} reused "
            f"({report.seconds:.1f}s)"
        )
        for failure in report.failed:
            click.echo(f"failed: {failure.source}: {failure.error}", err=True)
    if report.failed:
        sys.exit(1)


async def _run_and_close(ingestor: Any, items: Any, sync: Any, embedders: Any) -> Any:
    try:
        return await ingestor.run(items, sync_scope=list(sync) if sync is not None else None)
    finally:
        await embedders.aclose()


@main.command()
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


@main.command()
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
        emit_json(
            {
                "documents": [
                    {
                        "id": d.id,
                        "source": d.source,
                        "title": d.title,
                        "media_type": d.media_type,
                        "chunks": d.chunk_count,
                        "size_bytes": d.size_bytes,
                        "sha256": d.content_sha256,
                        "metadata": d.metadata,
                        "updated_at": d.updated_at,
                    }
                    for d in docs
                ]
            }
        )
        return
    for d in docs:
        click.echo(f"{d.id}\t{d.chunk_count} chunks\t{d.title or ''}\t{d.source}")


@main.command()
@click.option("-c", "--collection", required=True, help="Collection to delete from.")
@click.option("--source", "sources", multiple=True, help="Source (file path) to delete.")
@click.option("--id", "ids", multiple=True, type=int, help="Document id to delete.")
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
    with writing(app.settings) as index:
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


@main.group()
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
@click.option("--dimensions", type=int, default=None, help="Vector size (Zhipu embedding-3).")
@click.option("--chunk-tokens", type=int, default=None, help="Chunk size in tokens.")
@click.option("--overlap", type=int, default=None, help="Sentences of overlap between chunks.")
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
    with writing(settings) as index:
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
    if not yes and not click.confirm(f"drop collection {name!r} and everything in it?", err=True):
        sys.exit(1)
    with writing(app.settings) as index:
        dropped = index.catalog.drop_collection(name)
        index.forget(dropped)
    click.echo(f"dropped {name}")


@main.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-c", "--collection", required=True, help="Collection to import into.")
@click.option(
    "--model",
    default=None,
    help="The model that made the vectors, when the file's rows do not say (checked against "
    "the collection's).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@pass_app
@reports_errors
def import_vectors(
    app: AppContext, file: Path, collection: str, model: str | None, as_json: bool
) -> None:
    """Import chunks with precomputed vectors from FILE (.jsonl or .parquet).

    One row per chunk: source, text, vector, optional metadata and model. A document's rows
    are consecutive. Vectors must come from the collection's model, at its dimension;
    nothing is embedded. The collection must exist (`ragsearch collections create`).
    """
    from indexer.importer import Importer
    from indexer.vector_files import documents, file_format, read_rows

    file_format(file)
    with writing(app.settings) as index:
        target = index.catalog.get_collection(collection)
        report = Importer(index, target, model=model).run(documents(read_rows(file)))
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(
            f"{collection}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged; {report.chunks} chunks written "
            f"({report.seconds:.1f}s)"
        )


@main.command("export")
@click.option("-c", "--collection", required=True, help="Collection to export.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (.jsonl or .parquet); JSON Lines on stdout when omitted.",
)
@pass_app
@reports_errors
def export_vectors(app: AppContext, collection: str, output: Path | None) -> None:
    """Export a collection's chunks with their vectors, in the shape `import` reads."""
    from indexer.importer import export_rows
    from indexer.vector_files import file_format, write_jsonl, write_parquet

    with open_index(app.settings, writer=False) as index:
        rows = export_rows(index, index.catalog.get_collection(collection))
        if output is None:
            count = write_jsonl(sys.stdout, rows)
        elif file_format(output) == "parquet":
            count = write_parquet(output, rows)
        else:
            with output.open("w", encoding="utf-8") as handle:
                count = write_jsonl(handle, rows)
    click.echo(f"exported {count} chunks of {collection}", err=True)
