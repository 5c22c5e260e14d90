"""Requests and results of the query pipeline (plain dataclasses; pydantic only at HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from indexer.records import StoredChunk, Usage

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
Fusion = Literal["rrf", "zscore"]
FUSIONS: tuple[Fusion, ...] = ("rrf", "zscore")
SEARCH_TOP_K = 10  # results a search returns unless asked for more or fewer
ANSWER_TOP_K = 8  # sources an answer considers unless asked
MAX_TOP_K = 200


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    collection: str
    top_k: int = SEARCH_TOP_K
    mode: Mode = "hybrid"
    filter: dict[str, Any] | None = None
    rerank: bool | None = None  # None: rerank when a reranker is configured
    fusion: Fusion | None = None  # None: the configured default


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: StoredChunk
    score: float
    scores: dict[str, float]


@dataclass(slots=True)
class SearchResult:
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    usage: list[Usage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reranked: bool = False
    dense_used: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": [hit_dict(h) for h in self.hits],
            "reranked": self.reranked,
            "dense_used": self.dense_used,
            "warnings": self.warnings,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "usage": [usage_dict(u) for u in self.usage],
        }


def hit_dict(hit: Hit) -> dict[str, Any]:
    c = hit.chunk
    return {
        **c.reference(),
        "text": c.text,
        "score": round(hit.score, 6),
        "scores": {k: round(v, 6) for k, v in hit.scores.items()},
        "metadata": c.metadata,
    }


def usage_dict(u: Usage) -> dict[str, Any]:
    return {
        "model": u.model,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_cost_cny": round(u.prompt_cost_cny, 6),
        "completion_cost_cny": round(u.completion_cost_cny, 6),
        "cost_cny": round(u.cost_cny, 6),
    }


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    query: str
    collection: str
    top_k: int = ANSWER_TOP_K
    filter: dict[str, Any] | None = None
    model: str = "auto"
    scope: Literal["chunks", "documents"] = "chunks"
    document_ids: tuple[int, ...] = ()
    mode: Mode = "hybrid"
    history: tuple[tuple[str, str], ...] = ()  # earlier (role, content) turns, for chat


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    chunk: StoredChunk
    snippet: str

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, **self.chunk.reference(), "snippet": self.snippet}
