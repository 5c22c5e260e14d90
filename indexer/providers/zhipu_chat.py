"""GLM chat completions over Zhipu, whole or streamed, within each model's limits."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from indexer.errors import (
    BadProviderResponse,
    InputError,
    ProviderError,
    ProviderModelUnavailable,
    ProviderRejected,
    ProviderUnavailable,
)
from indexer.providers.base import ChatDelta, ChatMessage, ChatOptions, ChatResult
from indexer.providers.zhipu_http import Json, Sleep, ZhipuTransport
from indexer.providers.zhipu_models import ChatLimits, chat_limits, estimate_tokens, usage_tokens
from indexer.records import Usage
from indexer.settings import Settings

__all__ = ["LONG_PROMPT_TOKENS", "ZhipuChatModel"]

T = TypeVar("T")

_THINKING_MODEL = re.compile(r"^glm-(4\.[5-9]|[5-9])", re.IGNORECASE)
# Above this many prompt tokens a request is "long": a read timeout is not re-sent (Zhipu may
# be working on it and will bill it) and the read timeout grows with the prompt.
LONG_PROMPT_TOKENS = 32_000
# Extra read-timeout seconds per prompt token: ~1 s per 4K tokens puts a 1M-token prompt at
# the SDK's 300 s (z-ai-sdk-python `ZAI_DEFAULT_TIMEOUT`).
_SECONDS_PER_PROMPT_TOKEN = 1 / 4000
# Codes by which Zhipu refuses a model to this account: unknown model, no permission, not in
# the plan.
_MODEL_REFUSED = frozenset({"1211", "1220", "1311"})


class ZhipuChatModel:
    """GLM chat completions, whole or streamed, for the chat and the long-context model.

    Defaults suited to quick RAG answers: `thinking` is disabled on models that think
    (GLM-4.5 and later) unless `options.extra["thinking"]` says otherwise; a temperature is
    kept in the (0, 1] Zhipu accepts, and 0 means greedy (`do_sample: false`); `max_tokens`
    is capped at the model's output limit (`limits`). `options.extra` fields are sent as given
    (e.g. `top_p`, `response_format`, `stop`); `stop` may hold one sequence at most.

    An answer blocked by the safety filter raises `ProviderRejected`; a cut answer
    (`finish_reason` `length` or `model_context_window_exceeded`) is reported, not raised. A
    model Zhipu does not serve to this account raises `ProviderModelUnavailable` naming the
    setting to change. The read timeout grows with the prompt up to `long_timeout_seconds`.
    """

    def __init__(
        self,
        http: ZhipuTransport,
        *,
        model: str = "glm-4.6",
        long_model: str = "glm-4-long",
        prices: dict[str, tuple[float, float]] | None = None,
        long_timeout_seconds: float = 300.0,
    ) -> None:
        self.model = model
        self.long_model = long_model
        self._http = http
        self._prices = dict(prices or {})
        self._long_timeout = max(long_timeout_seconds, http.timeout_seconds)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> ZhipuChatModel:
        """The configured chat and long chat models, with their prices and timeouts."""
        return cls(
            ZhipuTransport.from_settings(settings, transport=transport, sleep=sleep),
            model=settings.zhipu_chat_model,
            long_model=settings.zhipu_long_chat_model,
            prices=settings.zhipu_chat_prices,
            long_timeout_seconds=settings.zhipu_long_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"ZhipuChatModel(model={self.model!r}, long_model={self.long_model!r})"

    def limits(self, model: str) -> ChatLimits:
        """Context window, output cap and prices of `model` (see `zhipu_models.CHAT_MODELS`)."""
        return chat_limits(model, self._prices)

    def read_timeout(self, prompt_tokens: int) -> float:
        """Seconds to wait for the first (and each next) byte of an answer to this prompt."""
        base = self._http.timeout_seconds
        return min(self._long_timeout, base + prompt_tokens * _SECONDS_PER_PROMPT_TOKEN)

    async def complete(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        """The whole answer. A `network_error` finish is retried like a failed request."""
        body, tokens = self._body(messages, options, stream=False)
        return await self._explained(
            options.model,
            lambda: self._http.post(
                "chat/completions",
                body,
                lambda a: self._parse(a, options),
                read_timeout=self.read_timeout(tokens),
                resend_after_timeout=tokens <= LONG_PROMPT_TOKENS,
            ),
        )

    async def stream(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[ChatDelta, None]:
        """The answer in pieces; the last delta carries `finish_reason` and `usage` only.

        Failures after the first piece raise (they are not retried): the caller must then
        discard what it showed. Close the iterator (e.g. `contextlib.aclosing`) if you stop
        early, to free the connection.
        """
        body, tokens = self._body(messages, options, stream=True)
        finish: str | None = None
        usage = Usage(options.model)
        events = self._http.stream(
            "chat/completions",
            body,
            read_timeout=self.read_timeout(tokens),
            resend_after_timeout=tokens <= LONG_PROMPT_TOKENS,
        )
        try:
            async for event in events:
                if isinstance(event.get("usage"), dict):
                    usage = self._usage(event, options.model)
                choices = event.get("choices")
                if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                    continue  # usage-only chunks carry no choices
                delta = choices[0].get("delta")
                delta = delta if isinstance(delta, dict) else {}
                content = _text(delta.get("content"))
                reasoning = _text(delta.get("reasoning_content"))
                if content or reasoning:
                    yield ChatDelta(content=content, reasoning=reasoning)
                reason = choices[0].get("finish_reason")
                if isinstance(reason, str) and reason:
                    _raise_for_finish(reason)
                    finish = reason
        except ProviderError as exc:
            raise self._explain(options.model, exc) from exc
        finally:
            await events.aclose()
        if finish is None:
            raise BadProviderResponse("the Zhipu stream ended without a finish_reason")
        yield ChatDelta(finish_reason=finish, usage=usage)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    def _body(
        self, messages: Sequence[ChatMessage], options: ChatOptions, stream: bool
    ) -> tuple[Json, int]:
        if not any(m.role == "user" for m in messages):
            raise InputError("a chat request needs at least one user message")
        limits = self.limits(options.model)
        body: Json = {
            "model": options.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max(1, min(options.max_tokens, limits.max_output_tokens)),
            "stream": stream,
        }
        if _THINKING_MODEL.match(options.model):
            body["thinking"] = {"type": "disabled"}
        if options.temperature is not None:
            if options.temperature <= 0:
                body["do_sample"] = False
            else:
                body["temperature"] = min(max(options.temperature, 0.01), 1.0)
        body.update(options.extra)
        stop = body.get("stop")
        if isinstance(stop, str):
            body["stop"] = [stop]
        elif stop is not None and (not isinstance(stop, list) or len(stop) > 1):
            raise InputError("Zhipu accepts at most one stop sequence")
        return body, sum(estimate_tokens(m.content) + 4 for m in messages)

    async def _explained(self, model: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except ProviderError as exc:
            raise self._explain(model, exc) from exc

    def _explain(self, model: str, exc: ProviderError) -> ProviderError:
        """`exc`, or a clearer error when it is about this model: which setting to change."""
        setting = {
            self.long_model: "RAGSEARCH_ZHIPU_LONG_CHAT_MODEL",
            self.model: "RAGSEARCH_ZHIPU_CHAT_MODEL",
        }.get(model, "the requested model")
        if isinstance(exc, ProviderModelUnavailable) and exc.provider_code in _MODEL_REFUSED:
            hint = " with a long context window, e.g. glm-4.6 (200K)"
            error: ProviderError = ProviderModelUnavailable(
                f"Zhipu does not serve {model} to this account ({exc.message}); set {setting} "
                f"to a model your account has{hint if model == self.long_model else ''}"
            )
        elif exc.provider_code == "1261":
            window = self.limits(model).context_window
            error = ProviderRejected(
                f"the prompt is too long for {model} (context window ~{window:,} tokens): "
                f"{exc.message}"
            )
        else:
            return exc
        error.provider_code = exc.provider_code
        return error

    def _usage(self, answer: Json, model: str) -> Usage:
        prompt = usage_tokens(answer, "prompt_tokens")
        completion = usage_tokens(answer, "completion_tokens")
        prompt_cost, completion_cost = self.limits(model).cost(prompt, completion)
        return Usage(model, prompt, completion, prompt_cost, completion_cost)

    def _parse(self, answer: Json, options: ChatOptions) -> ChatResult:
        choices = answer.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or not isinstance(message, dict):
            raise BadProviderResponse("Zhipu chat answer has no choices[0].message")
        reason = choice.get("finish_reason")
        reason = reason if isinstance(reason, str) and reason else "stop"
        _raise_for_finish(reason)
        return ChatResult(
            content=_text(message.get("content")),
            model=str(answer.get("model") or options.model),
            finish_reason=reason,
            usage=self._usage(answer, options.model),
            reasoning=_text(message.get("reasoning_content")),
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _raise_for_finish(reason: str) -> None:
    if reason == "sensitive":
        raise ProviderRejected(
            "Zhipu's safety filter blocked this answer (finish_reason: sensitive); "
            "no answer can be shown"
        )
    if reason == "network_error":
        raise ProviderUnavailable(
            "Zhipu's inference failed mid-answer (finish_reason: network_error)"
        )
