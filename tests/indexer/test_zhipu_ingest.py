"""Ingest with Zhipu Embedding-3 over real HTTP against the fake server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indexer.collections import create_collection
from indexer.errors import Conflict
from indexer.index import Index
from indexer.ingest import Ingestor, discover
from indexer.providers.factory import EmbedderCache, EmbedderSpec
from indexer.records import IngestReport
from indexer.settings import Settings
from service.cli import build_cli
from tests.fakes.zhipu_content import fake_tokens
from tests.fakes.zhipu_server import FakeZhipu


def _write_docs(folder: Path, count: int, paragraphs: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        body = "\n\n".join(
            f"Document {i} paragraph {p} talks about topic {i * 7 + p} in detail."
            for p in range(paragraphs)
        )
        (folder / f"doc{i:03}.md").write_text(f"# Doc {i}\n\n{body}\n", encoding="utf-8")
    return folder


def _ingest(settings: Settings, folder: Path, name: str = "kb") -> IngestReport:
    async def run() -> IngestReport:
        embedders = EmbedderCache(settings)
        index = Index(settings, writer=True)
        try:
            found = index.catalog.find_collection(name)
            collection = found or create_collection(index, embedders, name)
            ingestor = Ingestor(index, collection, embedders.for_collection(collection))
            return await ingestor.run(discover([folder]))
        finally:
            await embedders.aclose()
            index.close()

    return asyncio.run(run())


def _status(settings: Settings) -> list[tuple[int, int, bool]]:
    index = Index(settings)
    try:
        return [
            (s.chunks, s.vectors, s.consistent)
            for s in (index.status(c) for c in index.catalog.list_collections())
        ]
    finally:
        index.close()


def test_zhipu_ingest_sends_only_valid_requests(
    zhipu_settings: Settings, fake_zhipu: FakeZhipu, tmp_path: Path
) -> None:
    # Paragraphs of ~140 tokens against a 512-token budget: several chunks per document.
    docs = _write_docs(tmp_path / "docs", 40, paragraphs=12)
    report = _ingest(zhipu_settings, docs)
    assert report.failed == [] and report.added == 40
    calls = fake_zhipu.calls("/embeddings")
    assert calls, "embeddings were requested"
    assert sum(len(c.json["input"]) for c in calls) == report.embedded
    for call in calls:
        assert 1 <= len(call.json["input"]) <= 64
        assert call.json["model"] == "embedding-3"
        assert call.json["dimensions"] == zhipu_settings.zhipu_embedding_dimensions
        assert call.headers["authorization"] == f"Bearer {fake_zhipu.api_key}"
    index = Index(zhipu_settings)
    try:
        collection = index.catalog.get_collection("kb")
        assert (collection.embedder_provider, collection.dimensions) == ("zhipu", 1024)
        store = index.store(collection)
        assert store.dimensions == 1024 and len(store) == report.chunks
    finally:
        index.close()
    assert report.tokens > 0 and report.cost_cny > 0


@pytest.mark.parametrize("batch_tokens", [None, 10**9])
def test_zhipu_ingest_of_full_size_chunks_stays_under_the_array_limit(
    zhipu_settings: Settings, fake_zhipu: FakeZhipu, tmp_path: Path, batch_tokens: int | None
) -> None:
    # Chunks near the 512-token default: 64 of them are ~4x the 8K tokens a request may carry.
    # With no client-side bound (10**9) the fake refuses the arrays and the client splits them.
    docs = _write_docs(tmp_path / "docs", 40, paragraphs=40)
    settings = zhipu_settings
    if batch_tokens is not None:
        settings = settings.model_copy(update={"zhipu_embed_batch_tokens": batch_tokens})
    report = _ingest(settings, docs)
    assert report.failed == [] and report.embedded == report.chunks > 64
    arrays = [c.json["input"] for c in fake_zhipu.calls("/embeddings")]
    over = [a for a in arrays if sum(fake_tokens(t) for t in a) > 8192]
    if batch_tokens is None:
        assert over == [], "no request over the limit"
    else:
        assert over and len(over[0]) == 64, "refused, then split"
        assert sum(len(a) for a in arrays if a not in over) == report.embedded


def test_zhipu_ingest_rerun_makes_no_embedding_calls(
    zhipu_settings: Settings, fake_zhipu: FakeZhipu, tmp_path: Path
) -> None:
    docs = _write_docs(tmp_path / "docs", 5)
    _ingest(zhipu_settings, docs)
    fake_zhipu.reset()
    again = _ingest(zhipu_settings, docs)
    assert again.unchanged == 5 and again.embedded == 0
    assert fake_zhipu.calls("/embeddings") == []


def test_zhipu_rate_limit_1302_is_retried_and_ingest_completes(
    zhipu_settings: Settings, fake_zhipu: FakeZhipu, tmp_path: Path
) -> None:
    docs = _write_docs(tmp_path / "docs", 3)
    fake_zhipu.fail_next(2, status=429, code="1302")
    report = _ingest(zhipu_settings, docs)
    assert report.failed == [] and report.added == 3
    # At least one refusal, then success (the fake is shared by the session: a request left
    # over from an earlier test may take one of the two queued faults).
    assert len(fake_zhipu.calls("/embeddings")) >= 2


def test_zhipu_arrears_1113_is_not_retried_and_says_so(
    zhipu_settings: Settings, fake_zhipu: FakeZhipu, tmp_path: Path
) -> None:
    docs = _write_docs(tmp_path / "docs", 1)
    fake_zhipu.fail_next(10, status=429, code="1113")
    report = _ingest(zhipu_settings, docs)
    assert report.added == 0 and len(report.failed) == 1
    assert "arrears" in report.failed[0].error
    assert len(fake_zhipu.calls("/embeddings")) == 1  # never retried


def test_zhipu_wrong_key_tells_the_user_and_hides_the_key(
    fake_zhipu: FakeZhipu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _write_docs(tmp_path / "docs", 1)
    monkeypatch.setenv("ZHIPUAI_API_KEY", "wrong-id.wrong-secret")
    monkeypatch.setenv("RAGSEARCH_ZHIPU_BASE_URL", fake_zhipu.base_url)
    result = CliRunner().invoke(
        build_cli(),
        ["--data-dir", str(tmp_path / "data"), "ingest", str(docs), "-c", "kb", "--json"],
    )
    assert result.exit_code == 1
    assert "ZHIPUAI_API_KEY" in result.output
    assert "wrong-secret" not in result.output
    assert len(fake_zhipu.calls("/embeddings")) == 1


def test_zhipu_outage_loses_nothing_and_rerun_finishes_the_rest(
    zhipu_settings: Settings, fake_zhipu: FakeZhipu, tmp_path: Path
) -> None:
    # 130 single-chunk documents: three embedding batches (64 + 64 + 2).
    docs = _write_docs(tmp_path / "docs", 130, paragraphs=1)
    html = "<html><body>502 Bad Gateway</body></html>"
    # Retries of a 502 are tested on the client; here one batch fails for good (no retries
    # left) while the other batches succeed.
    settings = zhipu_settings.model_copy(
        update={"zhipu_max_concurrency": 1, "zhipu_max_retries": 0}
    )
    fake_zhipu.fail_next(1, status=502, body=html, content_type="text/html")
    first = _ingest(settings, docs)
    assert first.failed, "the failed batch is reported"
    assert all("embedding failed" in f.error and "502" in f.error for f in first.failed)
    assert len(first.failed) == 64  # exactly one batch
    assert first.added + len(first.failed) == 130
    assert first.added > 0
    assert _status(settings) == [(first.chunks, first.chunks, True)]

    fake_zhipu.reset()
    second = _ingest(settings, docs)
    assert second.failed == []
    assert second.unchanged == first.added  # what landed is kept, not redone
    assert second.added == len(first.failed)
    assert second.embedded == len(first.failed)  # only the missing vectors are bought
    sent = sum(len(c.json["input"]) for c in fake_zhipu.calls("/embeddings"))
    assert sent == len(first.failed)


def test_zhipu_collection_dimension_cannot_change(
    zhipu_settings: Settings, fake_zhipu: FakeZhipu, tmp_path: Path
) -> None:
    docs = _write_docs(tmp_path / "docs", 1)
    _ingest(zhipu_settings, docs)
    result = CliRunner().invoke(
        build_cli(),
        [
            "--data-dir",
            str(zhipu_settings.data_dir),
            "ingest",
            str(docs),
            "-c",
            "kb",
            "--dimensions",
            "2048",
        ],
        env={
            "ZHIPUAI_API_KEY": fake_zhipu.api_key,
            "RAGSEARCH_ZHIPU_BASE_URL": fake_zhipu.base_url,
        },
    )
    assert result.exit_code == Conflict.exit_code
    assert "1024" in result.output and "2048" in result.output
    index = Index(zhipu_settings, writer=True)
    try:
        collection = index.catalog.get_collection("kb")
        wrong = EmbedderCache(zhipu_settings).get(EmbedderSpec("zhipu", "embedding-3", 512))
        with pytest.raises(Conflict, match="cannot take vectors"):
            Ingestor(index, collection, wrong)
        assert np.isclose(collection.dimensions, 1024)
    finally:
        index.close()
