"""ZhipuChatModel, whole and streamed, against the fake Zhipu server; and the SSE decoder."""

from __future__ import annotations

from contextlib import aclosing
from typing import TYPE_CHECKING

import httpx
import pytest

from indexer.errors import (
    BadProviderResponse,
    InputError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from indexer.providers.base import ChatDelta, ChatMessage, ChatModel, ChatOptions
from indexer.providers.zhipu import ZhipuChatModel
from indexer.providers.zhipu_http import SSEDecoder
from indexer.settings import Settings
from tests.fakes.zhipu_server import FakeZhipu

if TYPE_CHECKING:
    from tests.fakes.fixtures import RecordedSleep

pytestmark = pytest.mark.anyio

PROMPT = [
    ChatMessage("system", "Answer from the sources and cite them."),
    ChatMessage("user", "Where is Paris?\n\n[1] Paris is in France. It is large.\n[2] Other."),
]
GLM = ChatOptions(model="glm-4.6")


async def collect(model: ZhipuChatModel, options: ChatOptions = GLM) -> list[ChatDelta]:
    async with aclosing(model.stream(PROMPT, options)) as deltas:
        return [delta async for delta in deltas]


async def test_complete_answers_with_usage_and_quick_rag_params(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    assert isinstance(model, ChatModel)
    result = await model.complete(PROMPT, ChatOptions(model="glm-4.6", temperature=1.7))
    await model.aclose()

    assert result.content == "Paris is in France. [1]"
    assert (result.finish_reason, result.reasoning) == ("stop", "")
    usage = result.usage
    assert usage.model == "glm-4.6" and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    # glm-4.6: input 2 CNY, output 8 CNY per million tokens, accounted apart.
    assert usage.prompt_cost_cny == pytest.approx(usage.prompt_tokens * 2.0 / 1e6)
    assert usage.completion_cost_cny == pytest.approx(usage.completion_tokens * 8.0 / 1e6)
    sent = fake_zhipu.calls("/chat/completions")[0].json
    assert sent["thinking"] == {"type": "disabled"}
    assert sent["temperature"] == 1.0 and sent["stream"] is False
    assert sent["messages"][0] == {"role": "system", "content": PROMPT[0].content}


async def test_long_model_gets_no_thinking_greedy_and_its_own_price(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    options = ChatOptions(model="glm-4-long", temperature=0, extra={"stop": "\n\n"})
    result = await model.complete(PROMPT, options)
    await model.aclose()
    sent = fake_zhipu.calls("/chat/completions")[0].json
    assert "thinking" not in sent and "temperature" not in sent
    assert sent["do_sample"] is False and sent["stop"] == ["\n\n"]
    assert result.usage.cost_cny == pytest.approx(result.usage.total_tokens * 1.0 / 1e6)


async def test_more_than_one_stop_or_no_user_message_refused_before_sending(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    with pytest.raises(InputError, match="one stop"):
        await model.complete(PROMPT, ChatOptions(model="glm-4.6", extra={"stop": ["a", "b"]}))
    with pytest.raises(InputError, match="user message"):
        await model.complete(PROMPT[:1], GLM)
    await model.aclose()
    assert fake_zhipu.requests == []


async def test_length_is_reported_not_raised(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    result = await model.complete(PROMPT, ChatOptions(model="glm-4.6", max_tokens=2))
    await model.aclose()
    assert result.finish_reason == "length"


async def test_sensitive_finish_is_a_refusal(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    fake_zhipu.finish_reason_next = "sensitive"
    with pytest.raises(ProviderRejected, match="safety filter blocked this answer"):
        await model.complete(PROMPT, GLM)
    fake_zhipu.finish_reason_next = "sensitive"
    with pytest.raises(ProviderRejected, match="safety filter"):
        await collect(model)
    await model.aclose()
    assert len(fake_zhipu.requests) == 2


async def test_network_error_finish_is_retried_by_complete(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings, sleep=recorded_sleep)
    fake_zhipu.finish_reason_next = "network_error"
    result = await model.complete(PROMPT, GLM)
    await model.aclose()
    assert result.content.endswith("[1]") and len(fake_zhipu.requests) == 2


async def test_stream_yields_content_in_order_then_finish_and_usage(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    deltas = await collect(model)
    await model.aclose()

    *pieces, last = deltas
    assert "".join(d.content for d in pieces) == "Paris is in France. [1]"
    assert all(d.finish_reason is None and d.usage is None for d in pieces)
    assert last.finish_reason == "stop" and last.content == ""
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert fake_zhipu.calls("/chat/completions")[0].json["stream"] is True


async def test_stream_keeps_reasoning_apart_when_thinking_enabled(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    options = ChatOptions(model="glm-4.6", extra={"thinking": {"type": "enabled"}})
    deltas = await collect(model, options)
    await model.aclose()
    reasoning = [d for d in deltas if d.reasoning]
    assert reasoning and all(d.content == "" for d in reasoning)
    assert deltas.index(reasoning[-1]) < min(i for i, d in enumerate(deltas) if d.content)
    assert "".join(d.content for d in deltas) == "Paris is in France. [1]"


@pytest.mark.parametrize("abort", [False, True])
async def test_stream_cut_halfway_raises(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, abort: bool
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    fake_zhipu.cut_stream_after(2, abort=abort)
    with pytest.raises(ProviderUnavailable, match=r"interrupted|before it was complete"):
        await collect(model)
    await model.aclose()


async def test_stream_stalled_between_chunks_times_out(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    settings = zhipu_settings.model_copy(update={"zhipu_timeout_seconds": 0.2})
    model = ZhipuChatModel.from_settings(settings)
    fake_zhipu.stall_stream_after(2, seconds=1.0)
    with pytest.raises(ProviderTimeout, match="stalled"):
        await collect(model)
    await model.aclose()


async def test_stream_network_error_finish_midway_raises_after_the_first_piece(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    fake_zhipu.finish_reason_next = "network_error"
    shown: list[str] = []
    with pytest.raises(ProviderUnavailable, match="network_error"):
        async with aclosing(model.stream(PROMPT, GLM)) as deltas:
            async for delta in deltas:
                shown.append(delta.content)
    await model.aclose()
    assert shown == ["Paris "] and len(fake_zhipu.requests) == 1


async def test_stream_inband_error_frame_raises_mapped_error(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings)
    fake_zhipu.inband_error_next = {"code": "1301", "message": "内容不安全"}
    with pytest.raises(ProviderRejected, match=r"safety filter refused.*1301.*内容不安全"):
        await collect(model)
    await model.aclose()


async def test_stream_open_failure_is_retried(
    fake_zhipu: FakeZhipu, zhipu_settings: Settings, recorded_sleep: RecordedSleep
) -> None:
    model = ZhipuChatModel.from_settings(zhipu_settings, sleep=recorded_sleep)
    fake_zhipu.fail_next(1, status=503, code="1234")
    deltas = await collect(model)
    await model.aclose()
    assert deltas[-1].finish_reason == "stop" and len(recorded_sleep.waits) == 1


def decode(lines: list[str]) -> list[str]:
    decoder = SSEDecoder()
    return [payload for line in lines for payload in decoder.feed(line)]


def test_sse_decoder_follows_the_event_stream_rules() -> None:
    lines = [": ping", "", 'data: {"a": 1}', "", 'data:{"b": 2}', "", "event: x"]
    lines += ["data: line one", "data: line two", "id: 7", "", "", "data: [DONE]", ""]
    assert decode(lines) == ['{"a": 1}', '{"b": 2}', "line one\nline two", "[DONE]"]


def test_sse_decoder_reports_an_unterminated_event() -> None:
    decoder = SSEDecoder()
    assert list(decoder.feed("data: [DONE]")) == []
    assert decoder.pending() == "[DONE]"


async def test_stream_without_finish_reason_is_bad_response(zhipu_settings: Settings) -> None:
    # A contract breach the fake does not produce: served by an httpx transport instead.
    body = 'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    model = ZhipuChatModel.from_settings(zhipu_settings, transport=httpx.MockTransport(handler))
    with pytest.raises(BadProviderResponse, match="without a finish_reason"):
        await collect(model)
    await model.aclose()
