"""A fake OpenAI-compatible chat server (`POST /v1/chat/completions`), plain and streamed.

Follows the shapes Ollama, vLLM, llama.cpp and OpenAI share: a `chat.completion` body, or SSE
`data: {chat.completion.chunk}` lines ending in `data: [DONE]`, with `usage` in a last chunk
of empty `choices` when `stream_options.include_usage` asks for it. It answers like the fake
Zhipu server (quotes source 1's first sentence and cites it), checks the bearer key when it
has one, records requests, and fails on demand (`fail_next` with a status).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.live_server import LiveServer
from tests.fakes.zhipu_content import fake_answer, fake_tokens


@dataclass
class FakeOpenAIState:
    api_key: str | None = "sk-test"
    answer_next: str | None = None
    fail_next: list[int] = field(default_factory=list)  # statuses of the next responses
    usage_in_stream: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.answer_next = None
        self.fail_next = []
        self.usage_in_stream = True
        self.requests = []


def create_app(state: FakeOpenAIState) -> Starlette:
    async def completions(request: Request) -> Response:
        if state.api_key and request.headers.get("authorization") != f"Bearer {state.api_key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided")
        body = await request.json()
        state.requests.append(body)
        if state.fail_next:
            status = state.fail_next.pop(0)
            return _error(status, "fake_failure", f"fake failure {status}")
        messages = body.get("messages")
        if not isinstance(messages, list) or not body.get("model"):
            return _error(400, "invalid_request_error", "model and messages are required")
        content, state.answer_next = state.answer_next or fake_answer(messages), None
        usage = {
            "prompt_tokens": sum(fake_tokens(str(m.get("content"))) for m in messages),
            "completion_tokens": fake_tokens(content),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream"):
            include = (body.get("stream_options") or {}).get("include_usage") is True
            chunks = _chunks(body["model"], content, usage if include else None, state)
            return StreamingResponse(chunks, media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


async def _chunks(
    model: str, content: str, usage: dict[str, int] | None, state: FakeOpenAIState
) -> AsyncIterator[bytes]:
    def frame(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        return f"data: {json.dumps({**data, 'choices': choices, **extra})}\n\n".encode()

    yield frame([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
    # Small pieces, so citation markers arrive split (`[`, `1]`) as real models send them.
    for start in range(0, len(content), 3):
        piece = content[start : start + 3]
        yield frame([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield frame([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage is not None and state.usage_in_stream:
        yield frame([], usage=usage)
    yield b"data: [DONE]\n\n"


class FakeOpenAI(FakeOpenAIState):
    """The fake in a background thread, on 127.0.0.1; `base_url` ends in `/v1`."""

    def __init__(self, api_key: str | None = "sk-test") -> None:
        super().__init__(api_key=api_key)
        self._live = LiveServer(create_app(self), lifespan="off", name="the fake OpenAI server")
        self.base_url = f"{self._live.url}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.stop()
