"""Chinese questions over Chinese passages, on the embedded default (MiniLM + FTS5)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from indexer.settings import Settings
from service.query.engine import Engine
from service.query.records import AnswerRequest, SearchRequest
from tests.service.query.cmrc_small import RECORDS, engine_with_records

pytestmark = pytest.mark.slow  # loads the real MiniLM model


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A MiniLM collection (the embedded default) holding eight CMRC paragraphs."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("zh") / "data")
    built, collection = engine_with_records(settings)
    assert collection.embedder_provider == "local"
    yield built
    asyncio.run(built.aclose())


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_chinese_question_retrieves_its_passage(engine: Engine, mode: str, record: dict) -> None:
    result = asyncio.run(
        engine.search(SearchRequest(query=record["question"], collection="zh", top_k=3, mode=mode))  # type: ignore[arg-type]
    )
    assert result.hits, "something is found"
    assert result.hits[0].chunk.source == record["id"]


def test_hybrid_skips_english_only_dense_for_chinese(engine: Engine) -> None:
    question = RECORDS[0]["question"]
    result = asyncio.run(engine.search(SearchRequest(query=question, collection="zh")))
    assert result.dense_used is False
    assert any("does not cover" in w for w in result.warnings)
    english = asyncio.run(engine.search(SearchRequest(query="football player", collection="zh")))
    assert english.dense_used is True


def test_chinese_extractive_answer_quotes_the_gold_span(engine: Engine) -> None:
    record = RECORDS[0]
    body = asyncio.run(
        engine.answer(AnswerRequest(query=record["question"], collection="zh"))
    ).as_dict()
    assert body["model"] == "extractive" and body["grounded"]
    assert body["citations"][0]["source"] == record["id"]
    assert any(answer in body["answer"] for answer in record["answers"])
