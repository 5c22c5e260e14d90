"""GLM chat within each model's limits, against the fake Zhipu server over real HTTP:
output caps, context windows, unavailable models, long-prompt timeouts, per-direction prices."""

from __future__ import annotations

from contextlib import aclosing
from typing import TYPE_CHECKING

import httpx
import pytest

from indexer.errors import ProviderModelUnavailable, ProviderRejected, ProviderTimeout
from indexer.providers.base import ChatDelta, ChatMessage, ChatOptions
from indexer.providers.zhipu import ZhipuChatModel
from indexer.providers.zhipu_models import CHAT_MODELS, chat_limits
from indexer.settings import Settings
from tests.fakes.zhipu_content import fake_tokens
from tests.fakes.zhipu_server import FakeZhipu

if TYPE_CHECKING:
    from tests.fakes.fixtures import RecordedSleep

pytestmark = pytest.mark.anyio

PROMPT = [ChatMessage("user", "Where is Paris?\n\n[1] Paris is in France. It is large.")]
# ~34K estimated tokens: a "long" prompt (over 32K), well inside glm-4.6's window.
LONG_PROMPT = [ChatMessage("user", "Summarise. [1] " + "The build compiles module. " * 3800)]


async def collect(model: ZhipuChatModel, options: ChatOptions) -> list[ChatDelta]:
    async with aclosing(model.stream(PROMPT, options)) as deltas:
        return [delta async for delta in deltas]


def test_limits_table_has_documented_windows_and_output_caps() -> None:
    assert (CHAT_MODELS["glm-4.6"].context_window, CHAT_MODELS["glm-4.6"].max_output_tokens) == (
        200_000,
        131_072,
    )
    assert CHAT_MODELS["glm-4-long"].max_output_tokens == 4_095
    assert CHAT_MODELS["glm-4-long"].context_window >= 1_000_000
    glm46 = chat_limits("GLM-4.6")
    assert glm46.output_price == 4 * glm46.input_price  # output costs ~4x input
    assert chat_limits("glm-4.6", {"glm-4.6": (1.0, 3.0)}).cost(1_000_000, 2_000_000) == (1, 6)


@pytest.mark.parametrize(("model", "sent"), [("glm-4-long", 4_095), ("glm-4.6", 131_072)])
async def test_max_tokens_is_capped_at_the_models_output_limit(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, model: str, sent: int
) -> None:
    chat = ZhipuChatModel.from_settings(zhipu_settings)
    result = await chat.complete(PROMPT, ChatOptions(model=model, max_tokens=500_000))
    await chat.aclose()
    assert result.finish_reason == "stop"
    assert fake_zhipu.calls("/chat/completions")[0].json["max_tokens"] == sent


def test_fake_refuses_max_tokens_over_the_models_limit_and_unknown_models(
    fake_zhipu: FakeZhipu,
) -> None:
    headers = {"Authorization": f"Bearer {fake_zhipu.api_key}"}
    url = fake_zhipu.base_url + "/chat/completions"
    body = {"model": "glm-4-long", "messages": [{"role": "user", "content": "hi"}]}
    over = httpx.post(url, json={**body, "max_tokens": 4096}, headers=headers)
    unknown = httpx.post(url, json={**body, "model": "glm-9-imaginary"}, headers=headers)
    warm = httpx.post(url, json={**body, "temperature": 1.0}, headers=headers)
    assert (over.status_code, over.json()["error"]["code"]) == (400, "1210")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "1211")
    assert warm.status_code == 200  # temperature 1.0 is GLM-4.6's documented default


@pytest.mark.parametrize("stream", [False, True])
async def test_context_window_exceeded_is_a_cut_answer_passed_through(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, stream: bool
) -> None:
    prompt_tokens = fake_tokens(PROMPT[0].content)
    fake_zhipu.context_windows = {"glm-4.6": prompt_tokens + 2}
    chat = ZhipuChatModel.from_settings(zhipu_settings)
    options = ChatOptions(model="glm-4.6", max_tokens=100)
    if stream:
        *pieces, last = await collect(chat, options)
        finish, text = last.finish_reason, "".join(p.content for p in pieces)
    else:
        result = await chat.complete(PROMPT, options)
        finish, text = result.finish_reason, result.content
    await chat.aclose()
    assert finish == "model_context_window_exceeded"
    assert text and not text.endswith("[1]")  # cut, not the whole answer


async def test_prompt_over_the_window_is_rejected_with_the_window(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.context_windows = {"glm-4.6": 5}
    chat = ZhipuChatModel.from_settings(zhipu_settings)
    with pytest.raises(ProviderRejected, match=r"too long for glm-4.6 \(context window ~200,000"):
        await chat.complete(PROMPT, ChatOptions(model="glm-4.6"))
    await chat.aclose()
    assert len(fake_zhipu.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_long_model_not_served_names_the_setting_to_change(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, stream: bool
) -> None:
    fake_zhipu.unavailable_models = {"glm-4-long"}
    chat = ZhipuChatModel.from_settings(zhipu_settings)
    options = ChatOptions(model="glm-4-long")
    with pytest.raises(ProviderModelUnavailable) as info:
        if stream:
            await collect(chat, options)
        else:
            await chat.complete(PROMPT, options)
    await chat.aclose()
    message = info.value.message
    assert "glm-4-long" in message and "RAGSEARCH_ZHIPU_LONG_CHAT_MODEL" in message
    assert "1211" in message and info.value.provider_code == "1211"
    assert info.value.status == 502 and not info.value.retryable
    assert len(fake_zhipu.requests) == 1


async def test_chat_model_outside_the_plan_names_the_chat_model_setting(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.fail_next(1, status=403, code="1311", path="/chat/completions")
    chat = ZhipuChatModel.from_settings(zhipu_settings)
    with pytest.raises(ProviderModelUnavailable, match="set RAGSEARCH_ZHIPU_CHAT_MODEL to a"):
        await chat.complete(PROMPT, ChatOptions(model="glm-4.6"))
    await chat.aclose()
    assert len(fake_zhipu.requests) == 1


async def test_long_chat_model_setting_names_another_model(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.unavailable_models = {"glm-4-long"}
    settings = zhipu_settings.model_copy(update={"zhipu_long_chat_model": "glm-4.5"})
    chat = ZhipuChatModel.from_settings(settings)
    result = await chat.complete(PROMPT, ChatOptions(model=chat.long_model))
    await chat.aclose()
    assert result.model == "glm-4.5" and result.finish_reason == "stop"


def test_read_timeout_grows_with_the_prompt_up_to_the_long_timeout(
    zhipu_settings: Settings,
) -> None:
    settings = zhipu_settings.model_copy(
        update={"zhipu_timeout_seconds": 60.0, "zhipu_long_timeout_seconds": 300.0}
    )
    chat = ZhipuChatModel.from_settings(settings)
    assert chat.read_timeout(1_000) == pytest.approx(60.25)
    assert chat.read_timeout(200_000) == pytest.approx(110.0)
    assert chat.read_timeout(1_000_000) == 300.0


async def test_long_prompt_waits_longer_than_the_base_timeout(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    fake_zhipu.delay_seconds = 0.4
    settings = zhipu_settings.model_copy(
        update={"zhipu_timeout_seconds": 0.1, "zhipu_long_timeout_seconds": 5.0}
    )
    chat = ZhipuChatModel.from_settings(settings)
    result = await chat.complete(LONG_PROMPT, ChatOptions(model="glm-4.6"))
    await chat.aclose()
    assert result.finish_reason == "stop" and len(fake_zhipu.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_long_prompt_read_timeout_is_not_resent(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep, stream: bool
) -> None:
    fake_zhipu.delay_seconds = 0.6
    settings = zhipu_settings.model_copy(
        update={"zhipu_timeout_seconds": 0.1, "zhipu_long_timeout_seconds": 0.2}
    )
    chat = ZhipuChatModel.from_settings(settings, sleep=recorded_sleep)
    options = ChatOptions(model="glm-4.6")
    with pytest.raises(ProviderTimeout, match=r"not re-sent.*may already be processing") as info:
        if stream:
            async with aclosing(chat.stream(LONG_PROMPT, options)) as deltas:
                _ = [delta async for delta in deltas]
        else:
            await chat.complete(LONG_PROMPT, options)
    await chat.aclose()
    assert "RAGSEARCH_ZHIPU_LONG_TIMEOUT_SECONDS" in info.value.message
    assert len(fake_zhipu.calls("/chat/completions")) == 1 and recorded_sleep.waits == []


async def test_short_prompt_read_timeout_is_still_retried(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    fake_zhipu.delay_seconds = 0.5
    settings = zhipu_settings.model_copy(
        update={"zhipu_timeout_seconds": 0.1, "zhipu_max_retries": 1}
    )
    chat = ZhipuChatModel.from_settings(settings, sleep=recorded_sleep)
    with pytest.raises(ProviderTimeout, match="2 tries"):
        await chat.complete(PROMPT, ChatOptions(model="glm-4.6"))
    await chat.aclose()
    assert len(fake_zhipu.calls("/chat/completions")) == 2


async def test_prices_are_per_model_and_direction_and_can_be_overridden(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    settings = zhipu_settings.model_copy(update={"zhipu_chat_prices": {"glm-4-long": (3.0, 7.0)}})
    chat = ZhipuChatModel.from_settings(settings)
    long = await chat.complete(PROMPT, ChatOptions(model="glm-4-long"))
    await chat.aclose()
    usage = long.usage
    assert usage.prompt_cost_cny == pytest.approx(usage.prompt_tokens * 3.0 / 1e6)
    assert usage.completion_cost_cny == pytest.approx(usage.completion_tokens * 7.0 / 1e6)
    assert usage.cost_cny == pytest.approx(usage.prompt_cost_cny + usage.completion_cost_cny)
