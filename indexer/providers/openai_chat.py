"""A `ChatModel` for any OpenAI-compatible `/chat/completions` endpoint.

Ollama, vLLM, llama.cpp's server, LM Studio and OpenAI itself speak this protocol. The base URL
is the one their clients take (e.g. `http://localhost:11434/v1`); the key is optional (local
servers need none). Streams ask for `stream_options.include_usage` so the last chunk carries
token counts; a server that sends none gets its usage estimated, never reported as zero.
Failures map onto the one error tree: 401/403 `ProviderAuthError`, 429 `RateLimited`,
5xx and connection errors `ProviderUnavailable`, timeouts `ProviderTimeout`, other 4xx
`ProviderRejected`, a body that breaks the protocol `BadProviderResponse`. Retryable failures
before the first byte are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

import httpx

from indexer.errors import (
    BadProviderResponse,
    InputError,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from indexer.providers.base import ChatDelta, ChatMessage, ChatOptions, ChatResult
from indexer.records import Usage
from indexer.settings import Settings

__all__ = ["OpenAIChatModel", "estimate_tokens"]

Json = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]
_FAILED_FINISH = {"content_filter": "the server's content filter blocked this answer"}


def estimate_tokens(text: str) -> int:
    """Conservative token estimate: a CJK character as one token, other text 1 per 3 chars."""
    cjk = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return cjk + (len(text) - cjk + 2) // 3


class OpenAIChatModel:
    """Chat completions, whole or streamed, from an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_seconds: float = 120.0,
        connect_timeout_seconds: float = 8.0,
        max_retries: int = 2,
        backoff_seconds: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.model = model
        self.long_model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
            transport=transport,
        )
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> OpenAIChatModel:
        if not settings.chat_base_url or not settings.chat_model:
            raise InputError("RAGSEARCH_CHAT_BASE_URL and RAGSEARCH_CHAT_MODEL are both needed")
        key = settings.chat_api_key.get_secret_value() if settings.chat_api_key else None
        return cls(
            settings.chat_base_url,
            model=settings.chat_model,
            api_key=key or None,
            timeout_seconds=settings.chat_timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r}, base_url={str(self._client.base_url)!r})"

    async def complete(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        """The whole answer."""
        body = self._body(messages, options, stream=False)
        response = await self._send(body, stream=False)
        try:
            answer = response.json()
        except ValueError as exc:
            raise BadProviderResponse("the chat server answered with malformed JSON") from exc
        choice = _first_choice(answer)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise BadProviderResponse("the chat answer has no choices[0].message")
        content = _text(message.get("content"))
        reason = _finish(choice.get("finish_reason")) or "stop"
        usage = self._usage(answer.get("usage"), options.model, messages, content)
        return ChatResult(content, str(answer.get("model") or options.model), reason, usage)

    async def stream(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[ChatDelta, None]:
        """The answer in pieces; the last delta carries `finish_reason` and `usage` only."""
        body = self._body(messages, options, stream=True)
        response = await self._send(body, stream=True)
        finish: str | None = None
        reported: Any = None
        parts: list[str] = []
        try:
            async for event in _events(response):
                if isinstance(event.get("error"), dict):
                    message = str(event["error"].get("message") or "stream failed")
                    raise ProviderUnavailable(f"the chat server failed mid-answer: {message}")
                reported = event.get("usage") or reported
                choices = event.get("choices")
                if not isinstance(choices, list) or not choices:
                    continue
                choice = choices[0] if isinstance(choices[0], dict) else {}
                delta = choice.get("delta")
                content = _text(delta.get("content")) if isinstance(delta, dict) else ""
                if content:
                    parts.append(content)
                    yield ChatDelta(content=content)
                finish = _finish(choice.get("finish_reason")) or finish
        except httpx.TimeoutException as exc:
            raise ProviderTimeout("the chat server timed out mid-answer") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"the chat stream broke: {exc}") from exc
        finally:
            await response.aclose()
        if finish is None:
            raise BadProviderResponse("the chat stream ended without a finish_reason")
        usage = self._usage(reported, options.model, messages, "".join(parts))
        yield ChatDelta(finish_reason=finish, usage=usage)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, messages: Sequence[ChatMessage], options: ChatOptions, stream: bool) -> Json:
        if not any(m.role == "user" for m in messages):
            raise InputError("a chat request needs at least one user message")
        body: Json = {
            "model": options.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": options.max_tokens,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if options.temperature is not None:
            body["temperature"] = options.temperature
        body.update(options.extra)
        return body

    async def _send(self, body: Json, *, stream: bool) -> httpx.Response:
        """POST with retries of retryable failures; the response is open when streaming."""
        for attempt in range(self._max_retries + 1):
            try:
                request = self._client.build_request("POST", "chat/completions", json=body)
                response = await self._client.send(request, stream=stream)
                if response.status_code < 400:
                    return response
                await response.aread()
                await response.aclose()
                error: ProviderError = _status_error(response)
            except httpx.TimeoutException as exc:
                error = ProviderTimeout("the chat server did not answer in time")
                error.__cause__ = exc
            except httpx.TransportError as exc:
                error = ProviderUnavailable(f"the chat server is unreachable: {exc}")
                error.__cause__ = exc
            if not error.retryable or attempt == self._max_retries:
                raise error
            await self._sleep(self._backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _usage(
        self, reported: Any, model: str, messages: Sequence[ChatMessage], answer: str
    ) -> Usage:
        if isinstance(reported, dict):
            prompt, completion = reported.get("prompt_tokens"), reported.get("completion_tokens")
            if isinstance(prompt, int) and isinstance(completion, int):
                return Usage(model, prompt, completion)
        prompt_estimate = sum(estimate_tokens(m.content) + 4 for m in messages)
        return Usage(model, prompt_estimate, estimate_tokens(answer))


def _status_error(response: httpx.Response) -> ProviderError:
    try:
        detail = response.json().get("error", {})
        message = str(detail.get("message") if isinstance(detail, dict) else detail)
    except (ValueError, AttributeError):
        message = response.text[:200] or response.reason_phrase
    text = f"the chat server answered {response.status_code}: {message}"
    status = response.status_code
    if status in (401, 403):
        return ProviderAuthError(text)
    if status == 429:
        return RateLimited(text)
    if status >= 500:
        return ProviderUnavailable(text)
    return ProviderRejected(text)


async def _events(response: httpx.Response) -> AsyncGenerator[Json, None]:
    """The JSON objects of an SSE body (`data:` lines), until `[DONE]`."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, `:` comments, `event:` lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise BadProviderResponse("the chat stream sent malformed JSON") from exc
        if isinstance(event, dict):
            yield event


def _first_choice(answer: Any) -> Json:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadProviderResponse("the chat answer has no choices")
    first: Json = choices[0]
    return first


def _finish(reason: Any) -> str | None:
    if not isinstance(reason, str) or not reason:
        return None
    if reason in _FAILED_FINISH:
        raise ProviderRejected(_FAILED_FINISH[reason])
    return reason


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
