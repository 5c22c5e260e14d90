"""The three narrow model interfaces. Zhipu and the embedded local models implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from indexer.records import Usage

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Unit-length float32 vectors, one row per input, in input order."""

    vectors: Vectors
    usage: Usage


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit-length vectors of a fixed dimension."""

    provider: str  # "local", "zhipu" or "hashing": stored with the collection
    model: str
    dimensions: int
    max_input_tokens: int  # the model's real input limit; chunks are sized under it
    # Inputs per embed_documents call: a remote API's per-request limit (so one failed request
    # loses one batch), or "as many as you like" for a local model that batches internally.
    max_batch_inputs: int

    def count_tokens(self, text: str) -> int:
        """Tokens `text` costs this model (exact where a tokenizer exists, else conservative).

        Must be sub-additive where text is cut at whitespace, `count(a + b) <= count(a) +
        count(b)`: the chunker sizes a chunk from the counts of its sentences and the
        whitespace between them.
        """
        ...

    async def embed_documents(self, texts: Sequence[str]) -> Embeddings: ...

    async def embed_query(self, text: str) -> Embeddings: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class InProcessQueries(Protocol):
    """An embedder whose query embedding is computation in this process, not a remote call:
    a caller already off the event loop embeds on its own thread (the search embeds and
    searches the vectors in one trip to a worker thread)."""

    def embed_query_blocking(self, text: str) -> Embeddings: ...


@dataclass(frozen=True, slots=True)
class RerankResult:
    """`ranking` holds (input index, score) pairs, best first."""

    ranking: list[tuple[int, float]]
    usage: Usage


@runtime_checkable
class Reranker(Protocol):
    model: str

    async def rerank(
        self, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult: ...

    async def aclose(self) -> None: ...


Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


# Finish reasons of an answer that was cut short: reported with a warning, never as a clean
# success (Zhipu's `model_context_window_exceeded` means the context filled up mid-answer).
TRUNCATED_FINISH_REASONS = frozenset({"length", "model_context_window_exceeded"})


@dataclass(frozen=True, slots=True)
class ChatResult:
    content: str
    model: str
    finish_reason: str
    usage: Usage
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One piece of a streamed answer. The last one carries `finish_reason` and `usage`."""

    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class ChatOptions:
    model: str
    max_tokens: int = 2048
    temperature: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class ChatModel(Protocol):
    async def complete(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> ChatResult: ...

    def stream(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[ChatDelta]: ...

    async def aclose(self) -> None: ...
