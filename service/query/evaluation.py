"""Retrieval evaluation on a BEIR-layout folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.errors import InputError
from indexer.ingest import SourceItem
from service.query.records import MAX_TOP_K, Fusion, Mode, SearchRequest
from service.query.search import SearchContext, documents_in_order, search

SOURCE_PREFIX = "beir:"


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    corpus_path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_dataset(folder: Path, split: str = "test") -> Dataset:
    corpus = folder / "corpus.jsonl"
    queries_path = folder / "queries.jsonl"
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for needed in (corpus, queries_path, qrels_path):
        if not needed.exists():
            raise InputError(f"not a BEIR folder: {needed} is missing")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle):
            parts = line.rstrip("\n").split("\t")
            if line_no == 0 and parts[0] == "query-id":
                continue
            if len(parts) >= 3 and int(parts[2]) > 0:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries: dict[str, str] = {}
    with queries_path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    return Dataset(folder.name, corpus, queries, qrels)


def corpus_items(dataset: Dataset) -> Iterator[SourceItem]:
    """Each corpus record as a Markdown document whose H1 is its title."""
    with dataset.corpus_path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            title = (record.get("title") or "").strip()
            body = record.get("text") or ""
            text = f"# {title}\n\n{body}" if title else body
            yield SourceItem(
                source=f"{SOURCE_PREFIX}{record['_id']}",
                filename=f"{record['_id']}.md",
                data=text.encode("utf-8"),
                metadata={"beir_id": record["_id"]},
            )


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(
        (2 ** relevant.get(doc, 0) - 1) / math.log2(i + 2) for i, doc in enumerate(ranked[:k])
    )
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**rel - 1) / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (i + 1)
    return 0.0


async def evaluate(
    ctx: SearchContext,
    dataset: Dataset,
    collection: str,
    mode: Mode,
    *,
    limit: int | None = None,
    fusion: Fusion | None = None,
    on_query: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """nDCG@10, recall@10/100, MRR@10 and latency percentiles of one mode.

    `on_query` is called after each query (progress)."""
    sums = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    latencies: list[float] = []
    catalog = ctx.index.catalog
    ids = list(dataset.queries)[:limit]
    collection_id = catalog.get_collection(collection).id
    beir_ids: dict[int, str] = {
        doc.id: doc.source.removeprefix(SOURCE_PREFIX)
        for doc in catalog.list_documents(collection_id)
    }
    for query_id in ids:
        started = time.perf_counter()
        result = await search(
            ctx,
            SearchRequest(
                query=dataset.queries[query_id],
                collection=collection,
                top_k=MAX_TOP_K,
                mode=mode,
                fusion=fusion,
            ),
        )
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = [beir_ids[d] for d in documents_in_order(result.hits)]
        relevant = dataset.qrels[query_id]
        sums["ndcg@10"] += ndcg_at(ranked, relevant, 10)
        sums["recall@10"] += recall_at(ranked, relevant, 10)
        sums["recall@100"] += recall_at(ranked, relevant, 100)
        sums["mrr@10"] += mrr_at(ranked, relevant, 10)
        if on_query is not None:
            on_query()
    n = max(1, len(ids))
    latencies.sort()
    out: dict[str, Any] = {k: round(v / n, 4) for k, v in sums.items()}
    out["queries"] = len(ids)
    out["latency_ms"] = {
        "p50": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2) if latencies else 0.0,
    }
    return out
