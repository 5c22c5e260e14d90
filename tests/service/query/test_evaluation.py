"""Retrieval evaluation: the BEIR loader, the metrics, and a run over a tiny dataset."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from indexer.collections import create_collection
from indexer.errors import InputError
from indexer.index import Index
from indexer.ingest import Ingestor
from indexer.providers.factory import EmbedderSpec
from indexer.settings import Settings
from service.query.engine import Engine
from service.query.evaluation import (
    corpus_items,
    evaluate,
    load_dataset,
    mrr_at,
    ndcg_at,
    recall_at,
)

TINY = Path(__file__).resolve().parents[2] / "data" / "beir_tiny"


def test_load_dataset_keeps_judged_queries_and_positive_qrels() -> None:
    dataset = load_dataset(TINY)

    assert dataset.name == "beir_tiny"
    assert dataset.queries == {"q1": "when do deploys go out", "q2": "how long are logs kept"}
    assert dataset.qrels == {"q1": {"d3": 1}, "q2": {"d1": 1}}
    items = list(corpus_items(dataset))
    assert [i.source for i in items] == ["beir:d1", "beir:d2", "beir:d3", "beir:d4"]
    assert items[0].data.decode().startswith("# Log rotation\n\n")


def test_load_dataset_refuses_a_folder_that_is_not_beir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a BEIR folder"):
        load_dataset(tmp_path)


def test_metrics_on_a_known_ranking() -> None:
    ranked = ["a", "b", "c"]
    relevant = {"b": 1, "z": 1}

    assert mrr_at(ranked, relevant, 10) == 0.5
    assert recall_at(ranked, relevant, 10) == 0.5
    assert recall_at(ranked, relevant, 1) == 0.0
    assert ndcg_at(ranked, relevant, 10) == pytest.approx((1 / 1.5849625) / (1 + 1 / 1.5849625))
    assert ndcg_at(["b", "z"], relevant, 10) == pytest.approx(1.0)


def test_evaluate_scores_each_query_on_a_real_collection(settings: Settings) -> None:
    dataset = load_dataset(TINY)
    engine = Engine(settings)

    async def run() -> dict[str, object]:
        index = Index(settings, writer=True)
        try:
            spec = EmbedderSpec("hashing", "hashing", 64)
            target = create_collection(index, engine.embedders, "tiny", spec)
            embedder = engine.embedders.for_collection(target)
            await Ingestor(index, target, embedder).run(corpus_items(dataset))
        finally:
            index.close()
        return await evaluate(engine.search_context, dataset, "tiny", "lexical")

    try:
        scores = asyncio.run(run())
    finally:
        asyncio.run(engine.aclose())

    assert scores["queries"] == 2
    assert scores["mrr@10"] == 1.0 and scores["recall@10"] == 1.0  # lexical finds both first
    assert set(scores["latency_ms"]) == {"p50", "p95"}  # type: ignore[arg-type]
