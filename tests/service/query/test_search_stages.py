"""The search stages on a small hashing-embedder collection: planning, fusion weights, timings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from indexer.collections import create_collection
from indexer.errors import InputError
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.providers.factory import EmbedderSpec
from indexer.settings import Settings
from service.query.engine import Engine
from service.query.records import SearchRequest
from service.query.search import plan_search

TEXTS = {
    "rotate.md": "Logs are rotated every night and kept for thirty days.",
    "backup.md": "Backups of the data directory run nightly; logs are copied too.",
    "deploy.md": "Deploys go out on Tuesdays after the change review.",
    "keys.md": "API keys are rotated every ninety days by the platform team.",
}
QUERY = "how often are logs rotated"


def build(settings: Settings) -> Engine:
    engine = Engine(settings)

    async def load() -> None:
        index = Index(settings, writer=True)
        try:
            spec = EmbedderSpec("hashing", "hashing", 64)
            collection = create_collection(index, engine.embedders, "docs", spec)
            items = [SourceItem(s, s, data=t.encode()) for s, t in TEXTS.items()]
            embedder = engine.embedders.for_collection(collection)
            await Ingestor(index, collection, embedder).run(items)
        finally:
            index.close()

    asyncio.run(load())
    return engine


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("stages") / "data")
    asyncio.run(build(settings).aclose())
    yield settings


def sources(engine: Engine, mode: str) -> list[str]:
    request = SearchRequest(query=QUERY, collection="docs", top_k=4, mode=mode)  # type: ignore[arg-type]
    return [h.chunk.source for h in asyncio.run(engine.search(request)).hits]


@pytest.mark.parametrize(("weights", "alone"), [((0.0, 1.0), "lexical"), ((1.0, 0.0), "dense")])
def test_search_fusion_weight_zero_leaves_the_other_retrievers_order(
    data_dir: Settings, weights: tuple[float, float], alone: str
) -> None:
    dense_weight, lexical_weight = weights
    settings = data_dir.model_copy(
        update={"dense_weight": dense_weight, "lexical_weight": lexical_weight}
    )
    engine = Engine(settings)
    try:
        hybrid = sources(engine, "hybrid")
        single = sources(engine, alone)
    finally:
        asyncio.run(engine.aclose())

    assert hybrid[: len(single)] == single


def test_search_reports_each_stage_and_the_total(data_dir: Settings) -> None:
    engine = Engine(data_dir)
    try:
        result = asyncio.run(engine.search(SearchRequest(query=QUERY, collection="docs")))
    finally:
        asyncio.run(engine.aclose())

    assert {"embed", "dense", "lexical", "fuse", "fetch", "total"} <= set(result.timings)
    assert result.timings["total"] >= max(result.timings["dense"], result.timings["lexical"])


def test_search_plan_skips_nothing_for_a_covered_language_and_checks_top_k(
    data_dir: Settings,
) -> None:
    engine = Engine(data_dir)
    try:
        plan = plan_search(engine.search_context, SearchRequest(query=QUERY, collection="docs"))
        with pytest.raises(InputError, match="top_k must be between 1 and 200"):
            plan_search(
                engine.search_context, SearchRequest(query=QUERY, collection="docs", top_k=201)
            )
    finally:
        asyncio.run(engine.aclose())

    assert plan.retrievers == ("dense", "lexical")
    assert plan.reranker is None and plan.warnings == ()
