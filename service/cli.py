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
    open_index,
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
    from service.query.records import Fusion, Mode

__all__ = ["build_cli", "run"]


@asynccontextmanager
async def engine_for(settings: Settings) -> AsyncIterator[Engine]:
    from service.query.engine import Engine

    engine = Engine(settings)
    try:
        yield engine
    finally:
        await engine.aclose()


def _filter(raw: str | None) -> dict[str, Any] | None:
    """`--filter '{"team": "ops"}'`: the same JSON filter as HTTP's `filter`."""
    import json

    from indexer.errors import InputError

    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"--filter: not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise InputError('--filter: expected a JSON object, e.g. \'{"team": "ops"}\'')
    return value


_FILTER_HELP = (
    'Metadata filter as JSON, as in HTTP: \'{"team": "ops"}\', '
    '\'{"year": {"$gte": 2024}}\', \'{"$or": [...]}\'.'
)


@click.command("search")
@click.argument("query")
@click.option("-c", "--collection", required=True, help="Collection to search.")
@click.option("-k", "--top-k", default=SEARCH_TOP_K, show_default=True, help="Results to return.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--filter", "filter_json", default=None, metavar="JSON", help=_FILTER_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (as HTTP).")
@pass_app
@reports_errors
def search_command(
    app: AppContext,
    query: str,
    collection: str,
    top_k: int,
    mode: Mode,
    filter_json: str | None,
    as_json: bool,
) -> None:
    """Ranked chunks for QUERY, each with its fused score and the score of each retriever.

    `--json` prints what `POST /v1/search` answers: results (with heading path, page, span,
    `score` and `scores` per retriever), timings per stage, usage and warnings.
    """
    from service.query.records import SearchRequest

    request = SearchRequest(
        query=query,
        collection=collection,
        top_k=top_k,
        mode=mode,
        filter=_filter(filter_json),
    )

    async def run() -> Any:
        async with engine_for(app.settings) as engine:
            return await engine.search(request)

    body = asyncio.run(run()).as_dict()
    if as_json:
        emit_json(body)
        return
    for warning in body["warnings"]:
        click.echo(f"note: {warning}", err=True)
    if not body["results"]:
        click.echo("no results", err=True)
    for rank, r in enumerate(body["results"], start=1):
        scores = " ".join(f"{k} {v:.4f}" for k, v in r["scores"].items())
        where = " › ".join(r["heading_path"]) or (r["title"] or "")
        page = f" (page {r['page']})" if r["page"] is not None else ""
        click.echo(f"{rank}. [{r['score']:.4f}; {scores}] {where} — {r['source']}{page}")
        text = " ".join(r["text"].split())
        click.echo(f"   {text[:200]}{'…' if len(text) > 200 else ''}")
    timings = ", ".join(f"{k} {v:.1f}" for k, v in body["timings"].items())
    click.echo(f"(ms: {timings})", err=True)


@click.command("ask")
@click.argument("question")
@click.option("-c", "--collection", required=True, help="Collection to answer from.")
@click.option("-k", "--top-k", default=ANSWER_TOP_K, show_default=True, help="Sources to consider.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--filter", "filter_json", default=None, metavar="JSON", help=_FILTER_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (as HTTP).")
@pass_app
@reports_errors
def ask_command(
    app: AppContext,
    question: str,
    collection: str,
    top_k: int,
    mode: Mode,
    filter_json: str | None,
    as_json: bool,
) -> None:
    """A cited answer to QUESTION from the collection.

    `--json` prints what `POST /v1/answer` answers: answer, citations (with heading path,
    page, span), the prompt's sources, model and route, grounded, timings, usage, warnings.
    """
    from service.query.records import AnswerRequest

    request = AnswerRequest(
        query=question,
        collection=collection,
        top_k=top_k,
        mode=mode,
        filter=_filter(filter_json),
    )

    async def run() -> Answer:
        async with engine_for(app.settings) as engine:
            return await engine.answer(request)

    body = asyncio.run(run()).as_dict()  # exactly what POST /v1/answer returns
    if as_json:
        emit_json(body)
        return
    for warning in body.get("warnings", []):
        click.echo(f"note: {warning}", err=True)
    click.echo(body["answer"])
    if body["citations"]:
        click.echo("")
    for c in body["citations"]:
        click.echo(f"[{c['n']}] {c['title'] or ''} — {c['source']}")
    route = f" — {body['route']}" if body.get("route") else ""
    click.echo(f"(model: {body['model']}{route})", err=True)


@click.command("show")
@click.argument("document")
@click.option("-c", "--collection", required=True, help="Collection holding the document.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout (as HTTP).")
@pass_app
@reports_errors
def show_command(app: AppContext, document: str, collection: str, as_json: bool) -> None:
    """A document's facts, metadata, text and chunks (heading path, page, span).

    DOCUMENT is the id `ragsearch documents` shows, or its source (a file path is resolved
    as `ingest` stored it). `--json` prints `{document, chunks}` as the HTTP routes give them.
    """
    from service.query.document_view import document_view

    with open_index(app.settings, writer=False) as index:
        view = document_view(index.catalog, collection, document)
    if as_json:
        emit_json(view)
        return
    doc, chunks = view["document"], view["chunks"]
    click.echo(f"{doc['title'] or doc['source']}")
    click.echo(f"  id {doc['id']} · {doc['media_type']} · {doc['size_bytes']} bytes")
    click.echo(f"  source {doc['source']}")
    for key, value in doc["metadata"].items():
        click.echo(f"  {key}: {value}")
    click.echo(f"\n--- text ---\n{doc['text']}\n\n--- {len(chunks)} chunks ---")
    for c in chunks:
        where = " › ".join(c["heading_path"])
        page = f" · page {c['page']}" if c["page"] is not None else ""
        span = c["span"]
        click.echo(
            f"#{c['ordinal']} (id {c['chunk_id']}) {where}{page} · {span['start']}–{span['end']}"
        )
        click.echo(f"  {' '.join(c['text'].split())}")


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

    with writing(settings, "ingest the eval corpus") as index:
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


QUERY_COMMANDS: tuple[click.Command, ...] = (
    search_command,
    ask_command,
    show_command,
    eval_command,
)


def build_cli() -> click.Group:
    """The whole `ragsearch` command: ingestion and index commands, then the service's."""
    return new_group((*indexer_cli.COMMANDS, *QUERY_COMMANDS, *http_commands.COMMANDS))


def run() -> None:
    """Console entry point."""
    build_cli()(prog_name="ragsearch")


if __name__ == "__main__":
    run()
