"""Shared by the chatbot-integration tests: a small English and Chinese corpus, and a live server.

The corpus is built so that a follow-up needs the earlier turn: "how long are they kept?"
alone matches the backups document best (it says "kept" most), while the conversation is
about logs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from indexer.collections import create_collection
from indexer.index import Index
from indexer.ingest import SourceItem
from indexer.providers.factory import EmbedderCache, EmbedderSpec
from indexer.settings import Settings

DOCS = {
    "logs.md": "# Logs\n\nLogs are rotated every night at midnight by the log rotator. "
    "Rotated logs are kept for 7 days before they are deleted. Log files are compressed "
    "when they are rotated.\n",
    "backups.md": "# Backups\n\nHow long are backups kept? Backups are kept for 30 days. "
    "Long-term backups are kept for a year in cold storage, and every backup is kept "
    "encrypted.\n",
    "widget.md": "# Chat widget\n\nThe chat widget shows numbered citations with snippets. "
    "Site owners add the widget script to any page.\n",
    "日志.md": "# 日志\n\n日志每天什么时候轮转？日志每天午夜轮转一次。"
    "轮转后的日志保留七天，然后删除。\n",
    "备份.md": "# 备份\n\n备份保留三十天。长期备份在冷存储中保留一年，每个备份都加密保留。\n",
}
OTHER_DOCS = {"secret.md": "# Payroll\n\nThe payroll export runs on the first of the month.\n"}


def build_corpus(settings: Settings) -> None:
    """Collections `docs` (DOCS) and `other` (OTHER_DOCS), both with the hashing embedder."""
    from indexer.ingest import Ingestor

    async def fill(index: Index, embedders: EmbedderCache) -> None:
        for name, files in (("docs", DOCS), ("other", OTHER_DOCS)):
            spec = EmbedderSpec("hashing", "hashing", 256)
            collection = create_collection(index, embedders, name, spec)
            items = [
                SourceItem(source=f"https://docs.example/{f}", filename=f, data=t.encode())
                for f, t in files.items()
            ]
            report = await Ingestor(index, collection, embedders.for_collection(collection)).run(
                items
            )
            assert not report.failed, report.failed
        await embedders.aclose()

    index = Index(settings, writer=True)
    try:
        asyncio.run(fill(index, EmbedderCache(settings)))
    finally:
        index.close()


def source_names(citations: list[dict[str, Any]]) -> list[str]:
    """The file names cited, in citation order."""
    return [Path(c["source"]).name for c in citations]
