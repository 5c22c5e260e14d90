"""Embedding batches within Zhipu's real token limits, against the fake over real HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from indexer.errors import ProviderRejected
from indexer.providers.zhipu import ZhipuEmbedder, estimate_tokens, token_batches
from indexer.settings import Settings
from tests.fakes.zhipu_content import fake_tokens
from tests.fakes.zhipu_server import FakeZhipu

if TYPE_CHECKING:
    from tests.fakes.fixtures import RecordedSleep

pytestmark = pytest.mark.anyio

# 64 chunks of ~500 estimated tokens: 32K tokens in all, four times the documented 8K.
LONG = [f"chunk {i}: " + "retrieval augmented search " * 55 for i in range(64)]


def test_token_batches_bound_count_and_total() -> None:
    assert token_batches([3, 3, 3, 3, 3], 64, 6) == [range(0, 2), range(2, 4), range(4, 5)]
    assert token_batches([1] * 5, 2, 100) == [range(0, 2), range(2, 4), range(4, 5)]
    assert token_batches([10, 1, 1], 64, 5) == [range(0, 1), range(1, 3)]  # oversize goes alone
    assert token_batches([], 64, 8000) == []


async def test_long_chunks_go_in_batches_under_the_array_token_limit(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    embedder = ZhipuEmbedder.from_settings(zhipu_settings, dimensions=256)
    result = await embedder.embed_documents(LONG)
    await embedder.aclose()

    calls = fake_zhipu.calls("/embeddings")
    assert len(calls) > 1 and sum(len(c.json["input"]) for c in calls) == 64
    for call in calls:
        assert sum(estimate_tokens(t) for t in call.json["input"]) <= 8000
        assert sum(fake_tokens(t) for t in call.json["input"]) <= 8192
    assert result.vectors.shape == (64, 256)


async def test_batch_refused_as_too_long_is_split_and_retried_in_order(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    # As if our estimate were too low: no client-side bound, so the fake refuses the array.
    settings = zhipu_settings.model_copy(update={"zhipu_embed_batch_tokens": 10**9})
    embedder = ZhipuEmbedder.from_settings(settings, dimensions=256, sleep=recorded_sleep)
    result = await embedder.embed_documents(LONG)
    alone = await embedder.embed_documents([LONG[37]])
    await embedder.aclose()

    sizes = [len(c.json["input"]) for c in fake_zhipu.calls("/embeddings")]
    assert sizes[0] == 64 and 32 in sizes and sizes.count(64) == 1
    assert recorded_sleep.waits == []  # a refusal is not retried as is, only split
    np.testing.assert_allclose(result.vectors[37], alone.vectors[0], rtol=1e-6)


async def test_refusal_that_is_not_about_length_stops_at_the_first_single_input(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.fail_next(10, status=400, code="1214", path="/embeddings")
    embedder = ZhipuEmbedder.from_settings(zhipu_settings, dimensions=256)
    with pytest.raises(ProviderRejected, match="1214") as info:
        await embedder.embed_documents([f"text {i}" for i in range(8)])
    await embedder.aclose()
    # 8 -> 4 -> 2 -> 1: one request per level, never all 15 of a full split.
    assert [len(c.json["input"]) for c in fake_zhipu.calls("/embeddings")] == [8, 4, 2, 1]
    assert info.value.provider_code == "1214"


async def test_single_input_refused_as_too_long_is_reported(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.embedding_array_tokens = 10
    embedder = ZhipuEmbedder.from_settings(zhipu_settings, dimensions=256)
    with pytest.raises(ProviderRejected, match=r"Zhipu rejected a request parameter.*1214"):
        await embedder.embed_documents(["a text longer than ten tokens, by the fake's count"])
    await embedder.aclose()
    assert len(fake_zhipu.calls("/embeddings")) == 1
