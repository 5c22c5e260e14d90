"""ZhipuEmbedder against the fake Zhipu server over real HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from indexer.errors import BadProviderResponse, InputError
from indexer.providers.base import Embedder
from indexer.providers.zhipu import ZhipuEmbedder, estimate_tokens
from indexer.settings import Settings
from tests.fakes.zhipu_server import FakeZhipu

if TYPE_CHECKING:
    from tests.fakes.fixtures import RecordedSleep

pytestmark = pytest.mark.anyio

TEXTS = [f"chunk {i} about topic {i % 7} 第{i}段" for i in range(150)]


def test_embedder_implements_protocol_with_model_limits(zhipu_settings: Settings) -> None:
    embedder = ZhipuEmbedder.from_settings(zhipu_settings, dimensions=512)
    assert isinstance(embedder, Embedder)
    assert (embedder.provider, embedder.model, embedder.dimensions) == ("zhipu", "embedding-3", 512)
    assert embedder.max_input_tokens == 3072


def test_embedder_dimensions_validated(zhipu_settings: Settings) -> None:
    with pytest.raises(InputError, match="256, 512, 1024, 2048"):
        ZhipuEmbedder.from_settings(zhipu_settings, dimensions=768)
    settings = zhipu_settings.model_copy(update={"zhipu_embedding_model": "embedding-2"})
    embedder = ZhipuEmbedder.from_settings(settings)
    assert (embedder.dimensions, embedder.max_input_tokens) == (1024, 512)


def test_token_estimate_is_conservative() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 2  # 4 chars -> ceil(4 / 3)
    assert estimate_tokens("你好") == 2
    assert estimate_tokens("你好 abc") == 2 + 2


async def test_embed_batches_of_64_with_model_dimensions_and_bearer(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    embedder = ZhipuEmbedder.from_settings(zhipu_settings, dimensions=256)
    result = await embedder.embed_documents(TEXTS)
    await embedder.aclose()

    calls = fake_zhipu.calls("/embeddings")
    assert sorted(len(c.json["input"]) for c in calls) == [22, 64, 64]
    assert all(c.json["model"] == "embedding-3" and c.json["dimensions"] == 256 for c in calls)
    assert all(c.headers["authorization"] == f"Bearer {fake_zhipu.api_key}" for c in calls)
    assert result.vectors.shape == (150, 256) and result.vectors.dtype == np.float32
    assert result.usage.prompt_tokens > 0
    assert result.usage.cost_cny == pytest.approx(result.usage.prompt_tokens * 0.5 / 1e6)


async def test_embed_maps_shuffled_answers_by_index_and_normalises(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.shuffle_data = True  # the fake answers in reverse order, not unit length
    embedder = ZhipuEmbedder.from_settings(zhipu_settings)
    docs = await embedder.embed_documents(["apple pie recipe", "tax law", "apple pie recipe"])
    query = await embedder.embed_query("apple pie")
    await embedder.aclose()

    np.testing.assert_allclose(np.linalg.norm(docs.vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(docs.vectors[0], docs.vectors[2], rtol=1e-6)
    scores = docs.vectors @ query.vectors[0]
    assert scores[0] > scores[1]


@pytest.mark.parametrize("switch", ["wrong_count_next", "wrong_dimension_next"])
async def test_embed_contract_breach_is_bad_provider_response(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, switch: str
) -> None:
    setattr(fake_zhipu, switch, 10)
    settings = zhipu_settings.model_copy(update={"zhipu_max_retries": 1})
    embedder = ZhipuEmbedder.from_settings(settings)
    with pytest.raises(BadProviderResponse, match=r"embeddings for|dimension"):
        await embedder.embed_documents(["one", "two"])
    await embedder.aclose()
    assert len(fake_zhipu.calls("/embeddings")) == 2


async def test_embed_contract_breach_once_is_retried(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.wrong_dimension_next = 1
    embedder = ZhipuEmbedder.from_settings(zhipu_settings)
    result = await embedder.embed_documents(["one", "two"])
    await embedder.aclose()
    assert result.vectors.shape == (2, 1024)


async def test_overlong_or_empty_input_rejected_before_sending(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    embedder = ZhipuEmbedder.from_settings(zhipu_settings)
    with pytest.raises(InputError, match="input 1 is about 3073 tokens"):
        await embedder.embed_documents(["fine", "长" * 3073])
    with pytest.raises(InputError, match="empty"):
        await embedder.embed_documents(["fine", "  "])
    await embedder.aclose()
    assert fake_zhipu.requests == []


async def test_failing_batch_is_retried_alone(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    settings = zhipu_settings.model_copy(update={"zhipu_max_concurrency": 1})
    embedder = ZhipuEmbedder.from_settings(settings, sleep=recorded_sleep)
    fake_zhipu.fail_next(1, status=429, code="1302")
    result = await embedder.embed_documents(TEXTS)
    await embedder.aclose()
    assert result.vectors.shape[0] == 150
    # 3 batches + 1 retry of the throttled one, not a resend of everything.
    assert len(fake_zhipu.calls("/embeddings")) == 4
    assert len(recorded_sleep.waits) == 1


async def test_concurrency_bound_respected(fake_zhipu: FakeZhipu, zhipu_settings: Settings) -> None:
    fake_zhipu.delay_seconds = 0.05
    settings = zhipu_settings.model_copy(update={"embed_batch_size": 8})
    embedder = ZhipuEmbedder.from_settings(settings, dimensions=256)
    await embedder.embed_documents([f"text {i}" for i in range(8 * 10)])
    await embedder.aclose()
    assert len(fake_zhipu.calls("/embeddings")) == 10
    assert fake_zhipu.max_in_flight == zhipu_settings.zhipu_max_concurrency
