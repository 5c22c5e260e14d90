"""Zhipu BigModel models: Embedding-3/-2 and Rerank (GLM chat lives in `zhipu_chat.py`).

Each class builds request bodies, checks the answer against the API's contract and accounts
for usage; transport, retries and error translation live in `zhipu_http.py`, model limits and
prices in `zhipu_models.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import httpx
import numpy as np

from indexer.errors import BadProviderResponse, InputError, ProviderError
from indexer.providers.base import Embeddings, RerankResult, Vectors
from indexer.providers.zhipu_chat import ZhipuChatModel
from indexer.providers.zhipu_codes import TOO_LONG_CODES
from indexer.providers.zhipu_http import Json, Sleep, ZhipuTransport
from indexer.providers.zhipu_models import (
    EMBEDDING_MODELS,
    MAX_EMBED_BATCH,
    estimate_tokens,
    usage_tokens,
)
from indexer.records import Usage
from indexer.settings import Settings

__all__ = [
    "ZhipuChatModel",
    "ZhipuEmbedder",
    "ZhipuReranker",
    "estimate_tokens",
    "token_batches",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RERANK_DOCUMENTS = 128
MAX_RERANK_CHARS = 4096


def _cost(tokens: int, price_cny_per_mtok: float) -> float:
    return tokens * price_cny_per_mtok / 1e6


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadProviderResponse(f"Zhipu answer has no integer {what}")
    return value


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


def token_batches(tokens: Sequence[int], max_inputs: int, max_tokens: int) -> list[range]:
    """Consecutive index ranges of at most `max_inputs` items and `max_tokens` summed tokens
    (an item over `max_tokens` on its own goes alone)."""
    batches: list[range] = []
    start, total = 0, 0
    for i, count in enumerate(tokens):
        if i > start and (i - start >= max_inputs or total + count > max_tokens):
            batches.append(range(start, i))
            start, total = i, 0
        total += count
    if start < len(tokens):
        batches.append(range(start, len(tokens)))
    return batches


class ZhipuEmbedder:
    """Zhipu Embedding-3 (256/512/1024/2048 dims, 3072 tokens) or Embedding-2 (1024, 512).

    Returns unit-length float32 vectors in input order. Inputs go in batches of at most 64
    and at most `batch_tokens` estimated tokens in all (Zhipu bounds a request's whole array,
    8K tokens in its docs), run concurrently under the transport's concurrency bound; a failing
    batch is retried on its own, and a batch Zhipu still refuses as too long is split in halves
    and sent again. An input over the model's token limit (by `count_tokens`) is refused with
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
        batch_tokens: int = 8000,
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
        self._batch_tokens = max(1, batch_tokens)
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
            batch_tokens=settings.zhipu_embed_batch_tokens,
            price_cny_per_mtok=settings.price_embedding_cny_per_mtok,
        )

    def __repr__(self) -> str:
        return f"ZhipuEmbedder(model={self.model!r}, dimensions={self.dimensions})"

    def count_tokens(self, text: str) -> int:
        """A conservative estimate (see `estimate_tokens`): Zhipu has no offline tokenizer."""
        return estimate_tokens(text)

    async def embed_documents(self, texts: Sequence[str]) -> Embeddings:
        """Embed `texts`; raises the error of the first batch that failed after its retries."""
        tokens = [self._check_input(i, text) for i, text in enumerate(texts)]
        if not texts:
            return Embeddings(np.zeros((0, self.dimensions), np.float32), Usage(self.model))
        batches = token_batches(tokens, self._batch_size, self._batch_tokens)
        results = await _all_or_first_error(
            [self._embed_or_split([texts[i] for i in batch]) for batch in batches]
        )
        used = sum(batch_tokens for _, batch_tokens in results)
        vectors = np.concatenate([batch_vectors for batch_vectors, _ in results])
        usage = Usage(self.model, prompt_tokens=used, prompt_cost_cny=_cost(used, self._price))
        return Embeddings(vectors, usage)

    async def embed_query(self, text: str) -> Embeddings:
        """Embed one query; same vector space as `embed_documents`."""
        return await self.embed_documents([text])

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    def _check_input(self, i: int, text: str) -> int:
        if not text.strip():
            raise InputError(f"input {i} is empty; Zhipu embeds only non-empty text")
        tokens = self.count_tokens(text)
        if tokens > self.max_input_tokens:
            raise InputError(
                f"input {i} is about {tokens} tokens; {self.model} accepts at most "
                f"{self.max_input_tokens} per input (split it into smaller chunks)"
            )
        return tokens

    async def _embed_or_split(self, batch: Sequence[str]) -> tuple[Vectors, int]:
        try:
            return await self._embed_batch(batch)
        except ProviderError as exc:
            if len(batch) < 2 or exc.provider_code not in TOO_LONG_CODES:
                raise
            # Our estimate is conservative, but Zhipu's tokenizer has the last word. Halves
            # run one after the other: a refusal that is not about length stops at the first.
            log.warning("Zhipu refused %d inputs as too long; splitting: %s", len(batch), exc)
            half = len(batch) // 2
            first = await self._embed_or_split(batch[:half])
            second = await self._embed_or_split(batch[half:])
            return np.concatenate([first[0], second[0]]), first[1] + second[1]

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
        return vectors / norms, usage_tokens(answer, "prompt_tokens")


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
        usage = Usage(self.model, prompt_tokens=tokens, prompt_cost_cny=_cost(tokens, self._price))
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
        return ranking, usage_tokens(answer, "prompt_tokens")
