"""Eight CMRC 2018 paragraphs with their questions, and an engine holding them in a collection."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from indexer.collections import create_collection
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.providers.factory import EmbedderSpec
from indexer.records import Collection
from indexer.settings import Settings
from service.query.engine import Engine

CMRC = Path(__file__).resolve().parents[2] / "data" / "cmrc_small.jsonl"
RECORDS = [json.loads(line) for line in CMRC.read_text(encoding="utf-8").splitlines()]


def engine_with_records(
    settings: Settings, spec: EmbedderSpec | None = None
) -> tuple[Engine, Collection]:
    """An engine whose collection "zh" (the default embedder, or `spec`) holds RECORDS."""
    built = Engine(settings)

    async def load() -> Collection:
        index = Index(settings, writer=True)
        try:
            collection = create_collection(index, built.embedders, "zh", spec)
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
            return collection
        finally:
            index.close()

    return built, asyncio.run(load())
