"""A fake Zhipu BigModel server: the real request/response shapes, fault switches, a record.

`FakeZhipu` runs a Starlette app under uvicorn on 127.0.0.1 (a real socket) in a background
thread. It validates requests the way the real API does (bearer key, model names and 1211 for
unknown ones, batch, per-input and whole-array token limits, each chat model's `max_tokens`
and context window, temperature 0-1), answers deterministically (rerank results best first;
a chat stream without keep-alive comments, a failure mid-stream as a `finish_reason`),
records every request and measures how many were in flight at once. Fault switches make the
next answers fail in the ways Zhipu fails.

Run it in the foreground for manual testing or benchmarks:

    python -m tests.fakes.zhipu_server --port 8765 --api-key test.key [--delay 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.live_server import LiveServer
from tests.fakes.zhipu_content import (
    CHAT_MODELS,
    EMBEDDING_ARRAY_TOKENS,
    EMBEDDING_DIMENSIONS,
    EMBEDDING_LIMITS,
    MESSAGES,
    THINKING_MODELS,
    fake_answer,
    fake_embedding,
    fake_tokens,
    rerank_score,
    vector_json,
)

__all__ = ["FakeState", "FakeZhipu", "create_app"]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Fault:
    status: int
    code: str | None
    body: str | None
    content_type: str
    retry_after: float | None
    path: str | None = None  # only requests to this endpoint (e.g. "/rerank"); None: any


class FakeError(Exception):
    def __init__(self, status: int, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.status, self.code = status, code
        self.message = message or MESSAGES.get(code, "error")

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": self.code, "message": self.message}}, status_code=self.status
        )


@dataclass
class FakeState:
    """What the fake has seen and how it should misbehave next. Thread-safe enough for tests."""

    api_key: str = "test-id.test-secret"
    delay_seconds: float = 0.0
    shuffle_data: bool = True
    malformed_json_next: int = 0
    wrong_count_next: int = 0
    wrong_dimension_next: int = 0
    finish_reason_next: str | None = None
    # Not documented for the chat stream, but the official SDK's stream parser raises on one
    # (z-ai-sdk-python src/zai/core/_streaming.py); off unless a test asks for it.
    inband_error_next: dict[str, str] | None = None
    answer_next: str | None = None  # the next chat answer's text, instead of a quote
    embedding_array_tokens: int = EMBEDDING_ARRAY_TOKENS
    unavailable_models: set[str] = field(default_factory=set)  # answered with 1211
    context_windows: dict[str, int] = field(default_factory=dict)  # overrides, to test limits
    requests: list[RecordedRequest] = field(default_factory=list)
    max_in_flight: int = 0
    in_flight: int = 0
    _faults: list[Fault] = field(default_factory=list)
    _cut_after: int | None = None
    _cut_abort: bool = False
    _stall_after: int | None = None
    _stall_seconds: float = 0.0
    generation: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget requests and clear every fault switch (the key stays). A request still in
        flight from before (a client that timed out) no longer sees the switches."""
        with self._lock:
            self.generation += 1
            self.delay_seconds = 0.0
            self.shuffle_data = True
            self.malformed_json_next = self.wrong_count_next = self.wrong_dimension_next = 0
            self.finish_reason_next = None
            self.inband_error_next = None
            self.answer_next = None
            self.embedding_array_tokens = EMBEDDING_ARRAY_TOKENS
            self.unavailable_models = set()
            self.context_windows = {}
            self.requests = []
            self.max_in_flight = 0
            self._faults = []
            self._cut_after = self._stall_after = None
            self._cut_abort = False

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 429,
        code: str | None = "1302",
        body: str | None = None,
        content_type: str = "application/json",
        retry_after: float | None = None,
        path: str | None = None,
    ) -> None:
        """The next `n` requests (to `path`, if given) fail with `status` and the Zhipu error
        `code` (or a raw `body`)."""
        with self._lock:
            self._faults += [Fault(status, code, body, content_type, retry_after, path)] * n

    def cut_stream_after(self, n_chunks: int, *, abort: bool = False) -> None:
        """The next stream stops after `n_chunks` chunks without `[DONE]`; `abort` drops the
        connection mid-body instead of ending it cleanly."""
        self._cut_after, self._cut_abort = n_chunks, abort

    def stall_stream_after(self, n_chunks: int, seconds: float) -> None:
        """The next stream goes silent for `seconds` after `n_chunks` chunks."""
        self._stall_after, self._stall_seconds = n_chunks, seconds

    def calls(self, path: str) -> list[RecordedRequest]:
        """Recorded requests to `path` (e.g. "/embeddings")."""
        return [r for r in self.requests if r.path.endswith(path)]

    def _take(self, attr: str) -> bool:
        with self._lock:
            if getattr(self, attr):
                setattr(self, attr, int(getattr(self, attr)) - 1)
                return True
            return False

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.path is None or path.endswith(fault.path):
                    return self._faults.pop(i)
            return None

    def _enter(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _require(ok: bool, code: str = "1214", message: str | None = None) -> None:
    if not ok:
        raise FakeError(400, code, message)


def create_app(state: FakeState) -> Starlette:
    """The ASGI app serving `/embeddings`, `/rerank` and `/chat/completions` from `state`."""

    async def handle(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        generation = state.generation
        state._enter(RecordedRequest(request.url.path, dict(request.headers), body))
        streaming = False
        try:
            if state.delay_seconds:
                await asyncio.sleep(state.delay_seconds)
            if generation != state.generation:
                raise FakeError(503, "1234")  # its client is gone; leave the new switches be
            fault = state._next_fault(request.url.path)
            if fault is not None:
                return _fault_response(fault)
            _check_auth(request.headers.get("authorization"), state.api_key)
            _require(isinstance(body, dict), "1210")
            if state._take("malformed_json_next"):
                return Response('{"data": [', media_type="application/json")
            path = request.url.path.rsplit("/", 1)[-1]
            if path == "embeddings":
                return _embeddings(state, body)
            if path == "rerank":
                return JSONResponse(_rerank(body))
            answer = _chat(state, body)
            if body.get("stream"):
                streaming = True
                return StreamingResponse(_sse(state, answer), media_type="text/event-stream")
            return JSONResponse(answer.completion())
        except FakeError as exc:
            return exc.response()
        finally:
            if not streaming:
                state._leave()

    paths = ["/embeddings", "/rerank", "/chat/completions"]
    routes = [Route(p, handle, methods=["POST"]) for p in paths]
    routes += [Route("/api/paas/v4" + p, handle, methods=["POST"]) for p in paths]
    return Starlette(routes=routes)


def _fault_response(fault: Fault) -> Response:
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    if fault.body is not None:
        content = fault.body
    else:
        code = fault.code or str(fault.status)
        content = json.dumps({"error": {"code": code, "message": MESSAGES.get(code, "错误")}})
    return Response(content, fault.status, headers, media_type=fault.content_type)


def _check_auth(header: str | None, key: str) -> None:
    if not header or not header.startswith("Bearer "):
        raise FakeError(401, "1001")
    if header.removeprefix("Bearer ") != key:
        raise FakeError(401, "1002")


def _embeddings(state: FakeState, body: dict[str, Any]) -> Response:
    model = body.get("model")
    _require(model in EMBEDDING_LIMITS and model not in state.unavailable_models, "1211")
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    _require(isinstance(texts, list) and 0 < len(texts) <= 64, message="input: 1 to 64 items")
    _require(all(isinstance(t, str) and t for t in texts), message="input must be text")
    limit = EMBEDDING_LIMITS[model]
    _require(all(fake_tokens(t) <= limit for t in texts), message=f"input over {limit} tokens")
    total = sum(fake_tokens(t) for t in texts)
    _require(total <= state.embedding_array_tokens, message="input 数组总长度超过限制")
    if model == "embedding-3":
        dims = body.get("dimensions", 2048)
        _require(dims in EMBEDDING_DIMENSIONS, message="dimensions must be 256/512/1024/2048")
    else:
        _require(body.get("dimensions", 1024) == 1024, message="embedding-2 is 1024 dimensions")
        dims = 1024
    sizes = [dims] * len(texts)
    if state._take("wrong_dimension_next"):
        sizes[0] -= 1
    order = list(range(len(texts)))
    if state._take("wrong_count_next"):
        order.pop()
    if state.shuffle_data:
        order.reverse()
    data = ",".join(
        f'{{"index":{i},"object":"embedding","embedding":'
        f"{vector_json(fake_embedding(texts[i], dims), sizes[i])}}}"
        for i in order
    )
    tokens = sum(fake_tokens(t) for t in texts)
    usage = {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
    head = json.dumps({"model": model, "object": "list", "usage": usage})
    return Response(head[:-1] + f',"data":[{data}]}}', media_type="application/json")


def _rerank(body: dict[str, Any]) -> dict[str, Any]:
    _require(body.get("model") == "rerank", "1211")
    query, documents = body.get("query"), body.get("documents")
    _require(isinstance(query, str) and 0 < len(query) <= 4096, message="query: 1-4096 chars")
    _require(isinstance(documents, list) and 0 < len(documents) <= 128, message="documents: 1-128")
    _require(all(isinstance(d, str) and len(d) <= 4096 for d in documents), message="doc > 4096")
    top_n = body.get("top_n", 0)
    _require(isinstance(top_n, int) and 0 <= top_n <= len(documents), message="bad top_n")
    scores = [rerank_score(query, d) for d in documents]
    keep = sorted(range(len(documents)), key=lambda i: -scores[i])[: top_n or len(documents)]
    tokens = fake_tokens(query) * len(documents) + sum(fake_tokens(d) for d in documents)
    return {
        "id": "fake-rerank",
        "request_id": "fake",
        "created": int(time.time()),
        # Best first, as the real API answers.
        "results": [{"index": i, "relevance_score": scores[i]} for i in keep],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


@dataclass
class ChatAnswer:
    model: str
    content: str
    reasoning: str
    finish_reason: str
    prompt_tokens: int
    inband_error: dict[str, str] | None = None

    @property
    def usage(self) -> dict[str, Any]:
        completion = fake_tokens(self.content) + fake_tokens(self.reasoning)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        return {
            "id": "fake-chat",
            "request_id": "fake",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }


def _chat(state: FakeState, body: dict[str, Any]) -> ChatAnswer:
    model = body.get("model")
    _require(model in CHAT_MODELS and model not in state.unavailable_models, "1211")
    window, max_output = CHAT_MODELS[model]
    window = state.context_windows.get(model, window)
    messages = body.get("messages")
    _require(isinstance(messages, list) and bool(messages), message="messages is empty")
    _require(
        all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages),
        message="message content must be a string",
    )
    roles = {m.get("role") for m in messages}
    _require(roles <= {"system", "user", "assistant", "tool"}, message="unknown role")
    _require("user" in roles, message="a user message is required")
    stop = body.get("stop")
    _require(stop is None or (isinstance(stop, list) and len(stop) <= 1), message="stop: 1 item")
    temperature = body.get("temperature")
    _require(temperature is None or 0.0 <= temperature <= 1.0, message="temperature: 0-1")
    thinking = body.get("thinking")
    _require(thinking is None or model in THINKING_MODELS, "1210", "model does not think")
    thinks = model in THINKING_MODELS and (thinking or {}).get("type") != "disabled"
    max_tokens = body.get("max_tokens")
    _require(
        max_tokens is None or (isinstance(max_tokens, int) and 1 <= max_tokens <= max_output),
        "1210",
        f"max_tokens 参数非法 (1-{max_output})",
    )
    prompt_tokens = sum(fake_tokens(m["content"]) for m in messages)
    _require(prompt_tokens <= window, "1261")
    content, state.answer_next = state.answer_next or fake_answer(messages), None
    finish = "stop"
    room = window - prompt_tokens
    if isinstance(max_tokens, int) and fake_tokens(content) > min(max_tokens, room):
        finish = "length" if max_tokens <= room else "model_context_window_exceeded"
        content = content[: min(max_tokens, room) * 4]
    forced = state.finish_reason_next
    state.finish_reason_next = None
    inband, state.inband_error_next = state.inband_error_next, None
    return ChatAnswer(
        model=model,
        content="" if forced == "sensitive" else content,
        reasoning="Looking for the answer in source [1]." if thinks else "",
        finish_reason=forced or finish,
        prompt_tokens=prompt_tokens,
        inband_error=inband,
    )


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


async def _sse(state: FakeState, answer: ChatAnswer) -> AsyncIterator[bytes]:
    cut, abort, state._cut_after = state._cut_after, state._cut_abort, None
    stall, state._stall_after = state._stall_after, None
    try:
        for i, chunk in enumerate(_chunks(answer)):
            if i == cut:
                if abort:
                    raise ConnectionAbortedError("fake: stream cut")
                return
            if i == stall:
                await asyncio.sleep(state._stall_seconds)
            yield b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
    finally:
        state._leave()


def _chunks(answer: ChatAnswer) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, **extra}
        return {"id": "fake-chat", "created": 0, "model": answer.model, "choices": [choice]}

    for piece in _pieces(answer.reasoning):
        yield chunk({"role": "assistant", "reasoning_content": piece})
    content = _pieces(answer.content)
    for i, piece in enumerate(content):
        if answer.inband_error is not None and i == 1:
            yield {"error": answer.inband_error}
            return
        if answer.finish_reason == "network_error" and i == 1:
            break  # inference failed mid-answer: the stream ends with that finish_reason
        yield chunk({"role": "assistant", "content": piece})
        if i == 0:
            yield {"id": "fake-chat", "created": 0, "model": answer.model, "choices": []}
    last = chunk({"role": "assistant", "content": ""}, finish_reason=answer.finish_reason)
    yield {**last, "usage": answer.usage}


class FakeZhipu(FakeState):
    """The fake server in a background thread; use as a context manager or `start`/`stop`."""

    def __init__(self, api_key: str = "test-id.test-secret", port: int = 0) -> None:
        super().__init__(api_key=api_key)
        self._live = LiveServer(create_app(self), port=port, lifespan="off", name="fake Zhipu")
        self.port: int = self._live.port
        self.base_url = f"{self._live.url}/api/paas/v4"

    def start(self) -> FakeZhipu:
        """Serve in the background; returns once the socket accepts requests."""
        self._live.start()
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._live.stop()

    def __enter__(self) -> FakeZhipu:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the fake in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default="test-id.test-secret")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument(
        "--array-tokens",
        type=int,
        default=EMBEDDING_ARRAY_TOKENS,
        help="most tokens in one /embeddings request (raise it to replay older clients)",
    )
    args = parser.parse_args(argv)
    state = FakeState(
        api_key=args.api_key,
        delay_seconds=args.delay,
        embedding_array_tokens=args.array_tokens,
    )
    print(f"fake Zhipu on http://{args.host}:{args.port}/api/paas/v4", flush=True)
    uvicorn.run(
        create_app(state), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
