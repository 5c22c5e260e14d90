"""`ragsearch import` and `ragsearch export`: chunks with their own vectors, in and out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indexer.cli_context import AppContext, emit_json, open_index, pass_app, reports_errors, writing

__all__ = ["export_vectors", "import_vectors"]


@click.command("import")
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


@click.command("export")
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
