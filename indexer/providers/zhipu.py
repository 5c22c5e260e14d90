"""Zhipu BigModel models: Embedding-3/-2, Rerank, and GLM chat (GLM-4.6, GLM-4-Long).

Each class builds request bodies, checks the answer against the API's contract and accounts
for usage; transport, retries and error translation live in `zhipu_http.py`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Sequence
from typing import Any, TypeVar

import httpx
import numpy as np

from indexer.errors import (
    BadProviderResponse,
    InputError,
    ProviderRejected,
    ProviderUnavailable,
)
from indexer.providers.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatResult,
    Embeddings,
    RerankResult,
    Vectors,
)
from indexer.providers.zhipu_http import Json, Sleep, ZhipuTransport
from indexer.records import Usage
from indexer.settings import Settings

__all__ = [
    "ZhipuChatModel",
    "ZhipuEmbedder",
    "ZhipuReranker",
    "estimate_tokens",
]

T = TypeVar("T")

EMBEDDING_MODELS: dict[str, tuple[tuple[int, ...], int]] = {
    # model: (allowed dimensions, input token limit)
    "embedding-3": ((256, 512, 1024, 2048), 3072),
    "embedding-2": ((1024,), 512),
}
MAX_EMBED_BATCH = 64
MAX_RERANK_DOCUMENTS = 128
MAX_RERANK_CHARS = 4096
_THINKING_MODEL = re.compile(r"^glm-(4\.[5-9]|[5-9])", re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    """A conservative (high) estimate of the tokens `text` costs a Zhipu model.

    There is no offline GLM tokenizer. Zhipu's rule of thumb is ~1.5 CJK characters or
    ~4 English characters per token; we count every character from U+2E80 up (CJK, kana,
    Hangul, full-width forms, emoji) as a whole token and other text as one token per three
    characters, rounded up. Overestimating only makes chunks a little smaller; underestimating
    would send inputs the API truncates or refuses.
    """
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    narrow = len(text) - wide
    return wide + -(-narrow // 3)


def _cost(tokens: int, price_cny_per_mtok: float) -> float:
    return tokens * price_cny_per_mtok / 1e6


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadProviderResponse(f"Zhipu answer has no integer {what}")
    return value


def _tokens(answer: Json, field: str) -> int:
    usage = answer.get("usage")
    value = usage.get(field, 0) if isinstance(usage, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


async def _all_or_first_error(jobs: Sequence[Awaitable[T]]) -> list[T]:
    """Run `jobs` concurrently; on the first failure cancel the rest and raise that failure."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coroutine(job)) for job in jobs]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


async def _as_coroutine(job: Awaitable[T]) -> T:
    return await job


class ZhipuEmbedder:
    """Zhipu Embedding-3 (256/512/1024/2048 dims, 3072 tokens) or Embedding-2 (1024, 512).

    Returns unit-length float32 vectors in input order. Inputs go in batches of at most 64,
    run concurrently under the transport's concurrency bound; a failing batch is retried on
    its own. An input over the model's token limit (by `count_tokens`) is refused with
    `InputError` before anything is sent.
    """

    provider = "zhipu"

    def __init__(
        self,
        http: ZhipuTransport,
        *,
        model: str = "embedding-3",
        dimensions: int | None = None,
        batch_size: int = MAX_EMBED_BATCH,
        price_cny_per_mtok: float = 0.5,
    ) -> None:
        if model not in EMBEDDING_MODELS:
            raise InputError(f"unknown Zhipu embedding model {model!r}; use embedding-3 or -2")
        allowed, limit = EMBEDDING_MODELS[model]
        dims = dimensions if dimensions is not None else allowed[-1]
        if dims not in allowed:
            choices = ", ".join(map(str, allowed))
            raise InputError(f"{model} supports dimensions {choices}, not {dims}")
        self.model = model
        self.dimensions = dims
        self.max_input_tokens = limit
        self._http = http
        self._batch_size = max(1, min(batch_size, MAX_EMBED_BATCH))
        self.max_batch_inputs = self._batch_size  # one request each: a failure loses one batch
        self._price = price_cny_per_mtok

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        dimensions: int | None = None,
        *,
        model: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> ZhipuEmbedder:
        """The configured embedding model; `model` and `dimensions` override the settings
        (e.g. to match an existing collection). Embedding-2 is always 1024."""
        model = model or settings.zhipu_embedding_model
        if dimensions is None and model == "embedding-3":
            dimensions = settings.zhipu_embedding_dimensions
        return cls(
            ZhipuTransport.from_settings(settings, transport=transport, sleep=sleep),
            model=model,
            dimensions=dimensions,
            batch_size=settings.embed_batch_size,
            price_cny_per_mtok=settings.price_embedding_cny_per_mtok,
        )

    def __repr__(self) -> str:
        return f"ZhipuEmbedder(model={self.model!r}, dimensions={self.dimensions})"

    def count_tokens(self, text: str) -> int:
        """A conservative estimate (see `estimate_tokens`): Zhipu has no offline tokenizer."""
        return estimate_tokens(text)

    async def embed_documents(self, texts: Sequence[str]) -> Embeddings:
        """Embed `texts`; raises the error of the first batch that failed after its retries."""
        for i, text in enumerate(texts):
            self._check_input(i, text)
        if not texts:
            return Embeddings(np.zeros((0, self.dimensions), np.float32), Usage(self.model))
        size = self._batch_size
        batches = [texts[start : start + size] for start in range(0, len(texts), size)]
        results = await _all_or_first_error([self._embed_batch(batch) for batch in batches])
        tokens = sum(batch_tokens for _, batch_tokens in results)
        vectors = np.concatenate([batch_vectors for batch_vectors, _ in results])
        usage = Usage(self.model, prompt_tokens=tokens, cost_cny=_cost(tokens, self._price))
        return Embeddings(vectors, usage)

    async def embed_query(self, text: str) -> Embeddings:
        """Embed one query; same vector space as `embed_documents`."""
        return await self.embed_documents([text])

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    def _check_input(self, i: int, text: str) -> None:
        if not text.strip():
            raise InputError(f"input {i} is empty; Zhipu embeds only non-empty text")
        tokens = self.count_tokens(text)
        if tokens > self.max_input_tokens:
            raise InputError(
                f"input {i} is about {tokens} tokens; {self.model} accepts at most "
                f"{self.max_input_tokens} per input (split it into smaller chunks)"
            )

    async def _embed_batch(self, batch: Sequence[str]) -> tuple[Vectors, int]:
        body: Json = {"model": self.model, "input": list(batch)}
        if self.model == "embedding-3":
            body["dimensions"] = self.dimensions
        return await self._http.post("embeddings", body, lambda a: self._parse(a, len(batch)))

    def _parse(self, answer: Json, expected: int) -> tuple[Vectors, int]:
        data = answer.get("data")
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else "no"
            raise BadProviderResponse(f"Zhipu returned {got} embeddings for {expected} inputs")
        vectors = np.empty((expected, self.dimensions), np.float32)
        seen: set[int] = set()
        for item in data:
            index = _int(item.get("index") if isinstance(item, dict) else None, "index")
            vector = item.get("embedding")
            if not 0 <= index < expected or index in seen:
                raise BadProviderResponse(f"Zhipu returned a bad or repeated index {index}")
            if not isinstance(vector, list) or len(vector) != self.dimensions:
                got = len(vector) if isinstance(vector, list) else "no"
                raise BadProviderResponse(
                    f"Zhipu returned a {got}-dimension vector; expected {self.dimensions}"
                )
            seen.add(index)
            try:
                vectors[index] = vector
            except (TypeError, ValueError) as exc:
                raise BadProviderResponse("Zhipu returned a vector with non-numbers") from exc
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise BadProviderResponse("Zhipu returned a zero or non-finite vector")
        return vectors / norms, _tokens(answer, "prompt_tokens")


class ZhipuReranker:
    """Zhipu Rerank: scores documents against a query, best first.

    Query and documents are cut to 4096 characters (the API's limit); more than 128 documents
    are split over several concurrent calls whose scores are merged, since each call scores
    documents independently of the others.
    """

    def __init__(
        self, http: ZhipuTransport, *, model: str = "rerank", price_cny_per_mtok: float = 0.8
    ) -> None:
        self.model = model
        self._http = http
        self._price = price_cny_per_mtok

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> ZhipuReranker:
        """The configured rerank model."""
        return cls(
            ZhipuTransport.from_settings(settings, transport=transport, sleep=sleep),
            model=settings.zhipu_rerank_model,
            price_cny_per_mtok=settings.price_rerank_cny_per_mtok,
        )

    def __repr__(self) -> str:
        return f"ZhipuReranker(model={self.model!r})"

    async def rerank(
        self, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        """(input index, score) pairs sorted by score, best first; `top_n` keeps the best n
        (None or 0: all)."""
        if top_n is not None and top_n < 0:
            raise InputError("top_n must be positive")
        if not documents:
            return RerankResult([], Usage(self.model))
        query = query[:MAX_RERANK_CHARS]
        step = MAX_RERANK_DOCUMENTS
        groups = [
            (start, [d[:MAX_RERANK_CHARS] for d in documents[start : start + step]])
            for start in range(0, len(documents), step)
        ]
        # The best n overall are among the best n of each group, so each call asks for n.
        results = await _all_or_first_error(
            [self._rerank_group(query, start, group, top_n or 0) for start, group in groups]
        )
        ranking = sorted(
            (pair for pairs, _ in results for pair in pairs), key=lambda p: (-p[1], p[0])
        )
        tokens = sum(group_tokens for _, group_tokens in results)
        usage = Usage(self.model, prompt_tokens=tokens, cost_cny=_cost(tokens, self._price))
        return RerankResult(ranking[:top_n] if top_n else ranking, usage)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def _rerank_group(
        self, query: str, offset: int, documents: list[str], top_n: int
    ) -> tuple[list[tuple[int, float]], int]:
        top_n = min(top_n, len(documents))
        body: Json = {
            "model": self.model,
            "query": query,
            "documents": documents,
            "top_n": top_n,
            "return_documents": False,
            "return_raw_scores": False,
        }
        expected = top_n or len(documents)
        return await self._http.post(
            "rerank", body, lambda a: self._parse(a, offset, len(documents), expected)
        )

    @staticmethod
    def _parse(
        answer: Json, offset: int, count: int, expected: int
    ) -> tuple[list[tuple[int, float]], int]:
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != expected:
            got = len(results) if isinstance(results, list) else "no"
            raise BadProviderResponse(f"Zhipu rerank returned {got} results; expected {expected}")
        pairs: dict[int, float] = {}
        for item in results:
            index = _int(item.get("index") if isinstance(item, dict) else None, "index")
            score = item.get("relevance_score")
            if not 0 <= index < count or index in pairs:
                raise BadProviderResponse(f"Zhipu rerank returned a bad or repeated index {index}")
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise BadProviderResponse("Zhipu rerank returned a result without a score")
            pairs[index] = float(score)
        ranking = [(offset + index, score) for index, score in pairs.items()]
        return ranking, _tokens(answer, "prompt_tokens")


class ZhipuChatModel:
    """GLM chat completions, whole or streamed, for the chat and the long-context model.

    Defaults suited to quick RAG answers: `thinking` is disabled on models that think
    (GLM-4.5 and later) unless `options.extra["thinking"]` says otherwise; a temperature is
    clamped to the 0.01-0.99 Zhipu accepts, and 0 means greedy (`do_sample: false`).
    `options.extra` fields are sent as given (e.g. `top_p`, `response_format`, `stop`);
    `stop` may hold one sequence at most. An answer blocked by the safety filter raises
    `ProviderRejected`; `finish_reason == "length"` is reported, not raised.
    """

    def __init__(
        self,
        http: ZhipuTransport,
        *,
        model: str = "glm-4.6",
        long_model: str = "glm-4-long",
        price_cny_per_mtok: float = 2.0,
        long_price_cny_per_mtok: float = 1.0,
    ) -> None:
        self.model = model
        self.long_model = long_model
        self._http = http
        self._prices = {model: price_cny_per_mtok, long_model: long_price_cny_per_mtok}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> ZhipuChatModel:
        """The configured chat and long chat models, with their prices."""
        return cls(
            ZhipuTransport.from_settings(settings, transport=transport, sleep=sleep),
            model=settings.zhipu_chat_model,
            long_model=settings.zhipu_long_chat_model,
            price_cny_per_mtok=settings.price_chat_cny_per_mtok,
            long_price_cny_per_mtok=settings.price_long_chat_cny_per_mtok,
        )

    def __repr__(self) -> str:
        return f"ZhipuChatModel(model={self.model!r}, long_model={self.long_model!r})"

    async def complete(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        """The whole answer. A `network_error` finish is retried like a failed request."""
        body = self._body(messages, options, stream=False)
        return await self._http.post("chat/completions", body, lambda a: self._parse(a, options))

    async def stream(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[ChatDelta, None]:
        """The answer in pieces; the last delta carries `finish_reason` and `usage` only.

        Failures after the first piece raise (they are not retried): the caller must then
        discard what it showed. Close the iterator (e.g. `contextlib.aclosing`) if you stop
        early, to free the connection.
        """
        body = self._body(messages, options, stream=True)
        finish: str | None = None
        usage = Usage(options.model)
        async for event in self._http.stream("chat/completions", body):
            if isinstance(event.get("usage"), dict):
                usage = self._usage(event, options.model)
            choices = event.get("choices")
            if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                continue  # keep-alive and usage-only chunks carry no choices
            delta = choices[0].get("delta")
            delta = delta if isinstance(delta, dict) else {}
            content, reasoning = _text(delta.get("content")), _text(delta.get("reasoning_content"))
            if content or reasoning:
                yield ChatDelta(content=content, reasoning=reasoning)
            reason = choices[0].get("finish_reason")
            if isinstance(reason, str) and reason:
                _raise_for_finish(reason)
                finish = reason
        if finish is None:
            raise BadProviderResponse("the Zhipu stream ended without a finish_reason")
        yield ChatDelta(finish_reason=finish, usage=usage)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    def _body(self, messages: Sequence[ChatMessage], options: ChatOptions, stream: bool) -> Json:
        if not any(m.role == "user" for m in messages):
            raise InputError("a chat request needs at least one user message")
        body: Json = {
            "model": options.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": options.max_tokens,
            "stream": stream,
        }
        if _THINKING_MODEL.match(options.model):
            body["thinking"] = {"type": "disabled"}
        if options.temperature is not None:
            if options.temperature <= 0:
                body["do_sample"] = False
            else:
                body["temperature"] = min(max(options.temperature, 0.01), 0.99)
        body.update(options.extra)
        stop = body.get("stop")
        if isinstance(stop, str):
            body["stop"] = [stop]
        elif stop is not None and (not isinstance(stop, list) or len(stop) > 1):
            raise InputError("Zhipu accepts at most one stop sequence")
        return body

    def _usage(self, answer: Json, model: str) -> Usage:
        prompt = _tokens(answer, "prompt_tokens")
        completion = _tokens(answer, "completion_tokens")
        price = self._prices.get(model, self._prices[self.model])
        return Usage(model, prompt, completion, _cost(prompt + completion, price))

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
