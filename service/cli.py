"""The `ragsearch` command: `build_cli` joins the indexer's commands, the query commands here
(search, ask, eval) and the service's (serve, keys, mcp) in one group; `run` is the console
entry point.

FastAPI and the models load inside the commands, so `ragsearch ingest` stays light.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from indexer import cli as indexer_cli
from indexer.cli_context import (
    AppContext,
    emit_json,
    new_group,
    pass_app,
    reports_errors,
    writing,
)
from indexer.settings import Settings
from service.http import commands as http_commands
from service.query.records import ANSWER_TOP_K, FUSIONS, MODES, SEARCH_TOP_K

if TYPE_CHECKING:
    from service.query.answer_records import Answer
    from service.query.engine import Engine
    from service.query.evaluation import Dataset
    from service.query.records import Fusion, Mode, SearchResult

__all__ = ["build_cli", "run"]


@asynccontextmanager
async def engine_for(settings: Settings) -> AsyncIterator[Engine]:
    from service.query.engine import Engine

    engine = Engine(settings)
    try:
        yield engine
    finally:
        await engine.aclose()


@click.command("search")
@click.argument("query")
@click.option("-c", "--collection", required=True, help="Collection to search.")
@click.option("-k", "--top-k", default=SEARCH_TOP_K, show_default=True, help="Results to return.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def search_command(
    app: AppContext, query: str, collection: str, top_k: int, mode: Mode, as_json: bool
) -> None:
    """Ranked chunks for QUERY."""
    from service.query.records import SearchRequest

    async def run() -> SearchResult:
        async with engine_for(app.settings) as engine:
            return await engine.search(
                SearchRequest(query=query, collection=collection, top_k=top_k, mode=mode)
            )

    result = asyncio.run(run())
    if as_json:
        emit_json(
            {
                "results": [
                    {
                        "chunk_id": h.chunk.id,
                        "document_id": h.chunk.document_id,
                        "source": h.chunk.source,
                        "title": h.chunk.title,
                        "text": h.chunk.text,
                        "score": round(h.score, 6),
                    }
                    for h in result.hits
                ]
            }
        )
        return
    for warning in result.warnings:
        click.echo(f"note: {warning}", err=True)
    for rank, h in enumerate(result.hits, start=1):
        text = " ".join(h.chunk.text.split())
        click.echo(f"{rank}. [{h.score:.4f}] {h.chunk.title or ''} — {h.chunk.source}")
        click.echo(f"   {text[:200]}{'…' if len(text) > 200 else ''}")


@click.command("ask")
@click.argument("question")
@click.option("-c", "--collection", required=True, help="Collection to answer from.")
@click.option("-k", "--top-k", default=ANSWER_TOP_K, show_default=True, help="Sources to consider.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def ask_command(app: AppContext, question: str, collection: str, top_k: int, as_json: bool) -> None:
    """A cited answer to QUESTION from the collection."""
    from service.query.records import AnswerRequest

    async def run() -> Answer:
        async with engine_for(app.settings) as engine:
            return await engine.answer(
                AnswerRequest(query=question, collection=collection, top_k=top_k)
            )

    answered = asyncio.run(run())
    if as_json:
        emit_json(
            {
                "answer": answered.answer,
                "model": answered.model,
                "grounded": answered.grounded,
                "warnings": list(answered.warnings),
                "gate": None if answered.gate is None else answered.gate.as_dict(),
                "citations": [
                    {
                        "n": c.n,
                        "chunk_id": c.chunk.id,
                        "document_id": c.chunk.document_id,
                        "source": c.chunk.source,
                        "snippet": c.snippet,
                    }
                    for c in answered.citations
                ],
            }
        )
        return
    click.echo(answered.answer)
    if answered.citations:
        click.echo("")
    for c in answered.citations:
        click.echo(f"[{c.n}] {c.chunk.title or ''} — {c.chunk.source}")
    for warning in answered.warnings:
        click.echo(f"note: {warning}", err=True)
    click.echo(f"(model: {answered.model})", err=True)


@click.command("eval")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(MODES),
    help="Mode(s) to evaluate (repeatable; default all three).",
)
@click.option("-c", "--collection", default=None, help="Reuse or fill this collection.")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N queries.")
@click.option("--split", default="test", show_default=True, help="qrels split to use.")
@click.option(
    "--fusion", type=click.Choice(FUSIONS), default=None, help="Hybrid fusion (default: setting)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@pass_app
@reports_errors
def eval_command(
    app: AppContext,
    dataset_dir: Path,
    modes: tuple[Mode, ...],
    collection: str | None,
    limit: int | None,
    split: str,
    fusion: Fusion | None,
    as_json: bool,
) -> None:
    """Retrieval quality on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).

    Ingests the corpus (unchanged documents are skipped on a re-run), then reports nDCG@10,
    recall@10, recall@100, MRR@10 and latency per mode.
    """
    from service.query.evaluation import load_dataset

    dataset = load_dataset(dataset_dir, split)
    name = collection or f"eval-{dataset.name}"
    chosen = list(modes) or list(MODES)
    show = sys.stderr.isatty()

    async def run() -> dict[str, Any]:
        async with engine_for(app.settings) as engine:
            await _ingest_corpus(app.settings, engine, dataset, name, show)
            return await _score_modes(engine, dataset, name, chosen, limit, fusion, show)

    results = asyncio.run(run())
    if as_json:
        emit_json(results)
    else:
        _print_scores(results)


async def _ingest_corpus(
    settings: Settings, engine: Engine, dataset: Dataset, name: str, show: bool
) -> None:
    """Fill (or refresh) the evaluation collection, with the ingest bar on stderr."""
    from indexer.collections import ensure_collection
    from indexer.ingest import Ingestor
    from indexer.progress import ingest_progress
    from service.query.evaluation import corpus_items

    with writing(settings) as index:
        target = ensure_collection(index, engine.embedders, name)
        embedder = engine.embedders.for_collection(target)
        with ingest_progress(enabled=show) as on_progress:
            ingestor = Ingestor(index, target, embedder, on_progress=on_progress)
            report = await ingestor.run(list(corpus_items(dataset)))
    click.echo(
        f"corpus: {report.added} added, {report.unchanged} unchanged, "
        f"{len(report.failed)} failed ({report.seconds:.1f}s)",
        err=True,
    )


async def _score_modes(
    engine: Engine,
    dataset: Dataset,
    name: str,
    modes: list[Mode],
    limit: int | None,
    fusion: Fusion | None,
    show: bool,
) -> dict[str, Any]:
    """Each mode's scores, with a bar over its queries on stderr."""
    from indexer.progress import count_progress
    from service.query.evaluation import evaluate

    results: dict[str, Any] = {}
    queries = min(len(dataset.queries), limit or len(dataset.queries))
    for mode in modes:
        with count_progress(f"eval {mode}", queries, enabled=show) as advance:
            results[mode] = await evaluate(
                engine.search_context,
                dataset,
                name,
                mode,
                limit=limit,
                fusion=fusion,
                on_query=advance,
            )
    return results


def _print_scores(results: dict[str, Any]) -> None:
    """One row per mode: nDCG@10, recall@10/100, MRR@10 and latency percentiles."""
    headers = ("nDCG@10", "R@10", "R@100", "MRR@10", "p50 ms", "p95 ms")
    click.echo(f"{'mode':<8} " + " ".join(f"{h:>8}" for h in headers))
    for mode, m in results.items():
        click.echo(
            f"{mode:<8} {m['ndcg@10']:>8.4f} {m['recall@10']:>8.4f} {m['recall@100']:>8.4f} "
            f"{m['mrr@10']:>8.4f} {m['latency_ms']['p50']:>8.1f} {m['latency_ms']['p95']:>8.1f}"
        )


QUERY_COMMANDS: tuple[click.Command, ...] = (search_command, ask_command, eval_command)


def build_cli() -> click.Group:
    """The whole `ragsearch` command: ingestion and index commands, then the service's."""
    return new_group((*indexer_cli.COMMANDS, *QUERY_COMMANDS, *http_commands.COMMANDS))


def run() -> None:
    """Console entry point."""
    build_cli()(prog_name="ragsearch")


if __name__ == "__main__":
    run()
