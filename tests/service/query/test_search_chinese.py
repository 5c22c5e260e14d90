"""Chinese questions over Chinese passages, on the embedded default (MiniLM + FTS5)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.collections import create_collection
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.settings import Settings
from service.query.engine import Engine
from service.query.records import AnswerRequest, SearchRequest

pytestmark = pytest.mark.slow  # loads the real MiniLM model

CMRC = Path(__file__).resolve().parents[2] / "data" / "cmrc_small.jsonl"
RECORDS = [json.loads(line) for line in CMRC.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A MiniLM collection (the embedded default) holding eight CMRC paragraphs."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("zh") / "data")
    built = Engine(settings)

    async def load() -> None:
        index = Index(settings, writer=True)
        try:
            collection = create_collection(index, built.embedders, "zh")
            assert collection.embedder_provider == "local"
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
