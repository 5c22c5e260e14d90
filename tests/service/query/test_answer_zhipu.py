"""Answers on the Zhipu path, over real HTTP against the fake server: routing, rerank, citations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.collections import create_collection
from indexer.errors import PayloadTooLarge, ProviderModelUnavailable, ProviderRejected
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.settings import Settings
from service.http.app import create_app
from service.query.engine import Engine
from service.query.records import AnswerRequest, SearchRequest
from tests.fakes.zhipu_server import FakeZhipu

DOCS = {
    "incidents.md": "# Incidents\n\nA SEV-1 incident needs a postmortem within five working days. "
    "The postmortem lists the timeline and the root cause.",
    "leave.md": "# Leave\n\nEmployees get fifteen days of paid leave a year. "
    "Leave is requested two weeks ahead.",
    "builds.md": "# Builds\n\nThe staging cluster is rebuilt every night at 02:00 UTC. "
    + " ".join(f"Build step {i} compiles module {i} of the monorepo." for i in range(400)),
}


def _load(settings: Settings) -> None:
    async def run() -> None:
        engine = Engine(settings)
        index = Index(settings, writer=True)
        try:
            collection = create_collection(index, engine.embedders, "kb")
            items = [
                SourceItem(source=name, filename=name, data=text.encode())
                for name, text in DOCS.items()
            ]
            report = await Ingestor(
                index, collection, engine.embedders.for_collection(collection)
            ).run(items)
            assert report.failed == []
        finally:
            index.close()
            await engine.aclose()

    asyncio.run(run())


def _answer(settings: Settings, request: AnswerRequest) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        engine = Engine(settings)
        try:
            return (await engine.answer(request)).as_dict()
        finally:
            await engine.aclose()

    return asyncio.run(run())


def _chat_models(fake: FakeZhipu) -> list[str]:
    return [c.json["model"] for c in fake.calls("/chat/completions")]


@pytest.fixture
def kb(zhipu_settings: Settings, fake_zhipu: FakeZhipu) -> Settings:
    _load(zhipu_settings)
    fake_zhipu.reset()
    return zhipu_settings


def test_answer_routes_normal_context_to_glm46(kb: Settings, fake_zhipu: FakeZhipu) -> None:
    body = _answer(
        kb, AnswerRequest(query="When is a postmortem due after a SEV-1 incident?", collection="kb")
    )
    assert body["model"] == "glm-4.6"
    assert _chat_models(fake_zhipu) == ["glm-4.6"]
    sent = fake_zhipu.calls("/chat/completions")[0].json
    assert sent["thinking"] == {"type": "disabled"}
    assert body["citations"], "the answer cites its source"
    source_ids = {s["chunk_id"] for s in body["sources"]}
    assert {c["chunk_id"] for c in body["citations"]} <= source_ids
    assert "[1]" in body["answer"]
    assert [u["model"] for u in body["usage"]].count("glm-4.6") == 1


def test_answer_routes_oversized_context_to_glm4_long(kb: Settings, fake_zhipu: FakeZhipu) -> None:
    small_window = kb.model_copy(
        update={
            "chat_context_window": 1500,
            "answer_max_tokens": 500,
            "answer_context_tokens": 50_000,
        }
    )
    body = _answer(
        small_window,
        AnswerRequest(query="Which build step compiles module 7?", collection="kb", top_k=20),
    )
    assert body["model"] == "glm-4-long"
    assert "exceeds" in body["route"]
    assert _chat_models(fake_zhipu) == ["glm-4-long"]


def test_answer_whole_documents_go_to_glm4_long(kb: Settings, fake_zhipu: FakeZhipu) -> None:
    index = Index(kb)
    try:
        collection = index.catalog.get_collection("kb")
        doc = index.catalog.find_document_by_source(collection.id, "builds.md")
        assert doc is not None
    finally:
        index.close()
    body = _answer(
        kb,
        AnswerRequest(
            query="Summarise the build steps",
            collection="kb",
            scope="documents",
            document_ids=(doc.id,),
        ),
    )
    assert body["model"] == "glm-4-long"
    prompt = fake_zhipu.calls("/chat/completions")[0].json["messages"][-1]["content"]
    assert "Build step 399 compiles module 399" in prompt  # the whole document, not a chunk


def test_search_uses_zhipu_rerank_and_degrades_when_it_fails(
    kb: Settings, fake_zhipu: FakeZhipu
) -> None:
    async def run(settings: Settings) -> Any:
        engine = Engine(settings)
        try:
            return await engine.search(
                SearchRequest(query="paid leave days", collection="kb", top_k=3)
            )
        finally:
            await engine.aclose()

    ranked = asyncio.run(run(kb))
    assert ranked.reranked and ranked.hits[0].chunk.source == "leave.md"
    assert "rerank" in ranked.hits[0].scores
    fake_zhipu.reset()
    fake_zhipu.fail_next(10, status=400, code="1214", path="/rerank")  # not retryable
    degraded = asyncio.run(run(kb))
    assert not degraded.reranked
    assert any("rerank failed" in w for w in degraded.warnings)
    assert degraded.hits, "the fused order is kept"


def test_answer_sensitive_output_is_refused_clearly(kb: Settings, fake_zhipu: FakeZhipu) -> None:
    fake_zhipu.finish_reason_next = "sensitive"
    with pytest.raises(ProviderRejected, match=r"(?i)sensitive|safety"):
        _answer(
            kb,
            AnswerRequest(
                query="When is a postmortem due after a SEV-1 incident?", collection="kb"
            ),
        )


def test_answer_weak_evidence_says_so_without_calling_the_model(
    kb: Settings, fake_zhipu: FakeZhipu, tmp_path: Path
) -> None:
    body = _answer(kb, AnswerRequest(query="What is the airspeed of a swallow?", collection="kb"))
    assert "does not contain" in body["answer"]
    assert body["citations"] == [] and body["sources"], "closest sources are still listed"
    assert _chat_models(fake_zhipu) == []


def _whole_builds(settings: Settings) -> AnswerRequest:
    index = Index(settings)
    try:
        collection = index.catalog.get_collection("kb")
        doc = index.catalog.find_document_by_source(collection.id, "builds.md")
        assert doc is not None
    finally:
        index.close()
    return AnswerRequest(
        query="Summarise the build steps",
        collection="kb",
        scope="documents",
        document_ids=(doc.id,),
    )


def test_whole_documents_over_every_window_are_413_with_sizes(
    kb: Settings, fake_zhipu: FakeZhipu
) -> None:
    small = kb.model_copy(update={"long_context_window": 3000})
    with pytest.raises(PayloadTooLarge, match=r"~[\d,]+ tokens.*glm-4-long.*3,000 tokens"):
        _answer(small, _whole_builds(small))
    assert _chat_models(fake_zhipu) == []
    with TestClient(create_app(small)) as client:
        request = _whole_builds(small)
        response = client.post(
            "/v1/answer",
            json={
                "query": request.query,
                "collection": "kb",
                "scope": "documents",
                "document_ids": list(request.document_ids),
            },
        )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


def test_long_model_not_served_says_which_setting_and_another_long_model_works(
    kb: Settings, fake_zhipu: FakeZhipu
) -> None:
    fake_zhipu.unavailable_models = {"glm-4-long"}
    with pytest.raises(ProviderModelUnavailable, match="RAGSEARCH_ZHIPU_LONG_CHAT_MODEL"):
        _answer(kb, _whole_builds(kb))
    assert _chat_models(fake_zhipu) == ["glm-4-long"], "refused once, never retried"

    fake_zhipu.reset()
    fake_zhipu.unavailable_models = {"glm-4-long"}
    other = kb.model_copy(update={"zhipu_long_chat_model": "glm-4.5"})
    body = _answer(other, _whole_builds(other))
    assert body["model"] == "glm-4.5" and _chat_models(fake_zhipu) == ["glm-4.5"]


def test_context_window_exceeded_answer_is_reported_as_cut(
    kb: Settings, fake_zhipu: FakeZhipu
) -> None:
    fake_zhipu.finish_reason_next = "model_context_window_exceeded"
    body = _answer(
        kb, AnswerRequest(query="When is a postmortem due after a SEV-1 incident?", collection="kb")
    )
    assert body["finish_reason"] == "model_context_window_exceeded"
    assert any("cut short" in w for w in body["warnings"])


def test_metrics_count_cost_by_model_and_direction(kb: Settings, fake_zhipu: FakeZhipu) -> None:
    with TestClient(create_app(kb)) as client:
        answer = client.post(
            "/v1/answer",
            json={"query": "When is a postmortem due after a SEV-1 incident?", "collection": "kb"},
        ).json()
        text = client.get("/metrics").text
    (usage,) = [u for u in answer["usage"] if u["model"] == "glm-4.6"]
    assert usage["completion_cost_cny"] == pytest.approx(usage["completion_tokens"] * 8 / 1e6)
    assert usage["prompt_cost_cny"] == pytest.approx(usage["prompt_tokens"] * 2 / 1e6)
    for kind in ("prompt", "completion"):
        line = next(
            line
            for line in text.splitlines()
            if line.startswith(f'ragsearch_model_cost_cny_total{{kind="{kind}",model="glm-4.6"}}')
        )
        assert float(line.split()[-1]) == pytest.approx(usage[f"{kind}_cost_cny"], abs=1e-6)
