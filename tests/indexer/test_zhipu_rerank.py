"""ZhipuReranker against the fake Zhipu server."""

from __future__ import annotations

import httpx
import pytest

from indexer.providers.base import Reranker
from indexer.providers.zhipu import ZhipuReranker
from indexer.settings import Settings
from tests.fakes.zhipu_server import FakeZhipu

pytestmark = pytest.mark.anyio


async def test_rerank_sorts_by_score_and_keeps_top_n(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    reranker = ZhipuReranker.from_settings(zhipu_settings)
    assert isinstance(reranker, Reranker)
    docs = ["cats and dogs", "the capital of france is paris", "france", "nothing here"]
    result = await reranker.rerank("capital of france", docs, top_n=2)
    await reranker.aclose()

    assert [index for index, _ in result.ranking] == [1, 2]
    assert result.ranking[0][1] > result.ranking[1][1]
    (call,) = fake_zhipu.calls("/rerank")
    assert call.json["model"] == "rerank" and call.json["top_n"] == 2
    assert result.usage.prompt_tokens > 0
    assert result.usage.cost_cny == pytest.approx(result.usage.prompt_tokens * 0.8 / 1e6)


async def test_rerank_over_128_documents_split_and_merged(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    docs = [f"filler document number {i}" for i in range(200)]
    docs[150] = "solar panel efficiency"
    docs[3] = "solar panel"
    reranker = ZhipuReranker.from_settings(zhipu_settings)
    result = await reranker.rerank("solar panel efficiency", docs)
    await reranker.aclose()

    calls = fake_zhipu.calls("/rerank")
    assert sorted(len(c.json["documents"]) for c in calls) == [72, 128]
    assert len(result.ranking) == 200
    assert [index for index, _ in result.ranking[:2]] == [150, 3]
    scores = [score for _, score in result.ranking]
    assert scores == sorted(scores, reverse=True)


async def test_rerank_cuts_query_and_documents_to_4096_chars(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    reranker = ZhipuReranker.from_settings(zhipu_settings)
    result = await reranker.rerank("q " * 3000, ["long " * 2000, "short"])
    await reranker.aclose()
    (call,) = fake_zhipu.calls("/rerank")
    assert len(call.json["query"]) == 4096
    assert [len(d) for d in call.json["documents"]] == [4096, 5]
    assert len(result.ranking) == 2


async def test_rerank_nothing_makes_no_call(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    reranker = ZhipuReranker.from_settings(zhipu_settings)
    result = await reranker.rerank("query", [])
    await reranker.aclose()
    assert result.ranking == [] and fake_zhipu.requests == []


def test_fake_rerank_answers_best_first_like_the_real_api(fake_zhipu: FakeZhipu) -> None:
    body = {"model": "rerank", "query": "solar panel", "documents": ["a", "solar", "solar panel"]}
    answer = httpx.post(
        fake_zhipu.base_url + "/rerank",
        json=body,
        headers={"Authorization": f"Bearer {fake_zhipu.api_key}"},
    ).json()
    assert [r["index"] for r in answer["results"]] == [2, 1, 0]
