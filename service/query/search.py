"""The search half of the pipeline: plan → retrieve (dense ∥ lexical) → fuse → select.

`search` tells the story; each stage is a function over the plan. Selecting fetches the
chunks, reranks them when a reranker runs, and keeps the top k.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement

from indexer.errors import InputError, ProviderError
from indexer.filters import MAX_DEPTH, MAX_TERMS, compile_filter
from indexer.index import Index
from indexer.json_values import check_text
from indexer.providers.base import Embedder, Embeddings, InProcessQueries, Reranker
from indexer.records import Collection, StoredChunk
from service.query.fusion import Candidate, embedder_covers, rrf, zscore
from service.query.records import (
    FUSIONS,
    MAX_TOP_K,
    MODES,
    Fusion,
    Hit,
    SearchRequest,
    SearchResult,
)
from service.query.timing import StageTimer

log = logging.getLogger("ragsearch.search")
RERANK_MAX_CANDIDATES = 50  # reranking costs grow with candidates; 50 covers any top-10
# Fused candidates fetched beyond top_k: a vector whose chunk was deleted a moment ago has no
# chunk to fetch and is dropped, and the next candidate takes its place.
DELETED_MARGIN = 5

Ranked = list[tuple[int, float]]  # (chunk id, the retriever's score), best first


@dataclass(frozen=True, slots=True)
class SearchContext:
    """What a search needs; built once per app (or CLI command) and shared."""

    index: Index
    embedder_for: Callable[[Collection], Embedder]
    reranker: Reranker | None
    candidate_k: int
    rrf_k: int
    max_query_chars: int
    fusion: Fusion = "rrf"
    weights: Mapping[str, float] = field(default_factory=lambda: {"dense": 1.0, "lexical": 1.0})
    max_filter_terms: int = MAX_TERMS
    max_filter_depth: int = MAX_DEPTH


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """One request resolved: which collection, which retrievers, how to fuse and keep."""

    query: str
    collection: Collection
    condition: ColumnElement[bool] | None
    embedder: Embedder | None  # None when no dense retrieval runs: no model is loaded for it
    retrievers: tuple[str, ...]  # "dense" and/or "lexical"
    fusion: Fusion
    candidates: int  # per retriever
    reranker: Reranker | None
    top_k: int
    warnings: tuple[str, ...]


_INVISIBLE = "".join(chr(c) for c in range(32)) + "\x7f"


def validate_query(query: str, max_chars: int) -> str:
    """The query, stripped; InputError when empty (control characters count as nothing),
    too long, or not encodable text."""
    check_text(query, "query")
    text = query.strip()
    if not text.strip(_INVISIBLE + " "):
        raise InputError("query is empty")
    if len(text) > max_chars:
        raise InputError(f"query is {len(text):,} characters; the limit is {max_chars:,}")
    return text


async def search(ctx: SearchContext, request: SearchRequest) -> SearchResult:
    """Ranked chunks for a query, with per-stage timings. Raises InputError/NotFound."""
    timer = StageTimer()
    plan = plan_search(ctx, request)
    result = SearchResult(
        hits=[],
        timings=timer.ms,
        warnings=list(plan.warnings),
        dense_used="dense" in plan.retrievers,
    )
    allowed = await _allowed_ids(ctx, plan, timer)
    if allowed is not None and len(allowed) == 0:
        timer.finish()
        return result  # fail closed: nothing matches the filter
    lists = await retrieve(ctx, plan, allowed, timer, result)
    with timer.stage("fuse"):
        fused = fuse(plan, lists, ctx.weights, ctx.rrf_k, _wanted(plan) + DELETED_MARGIN)
    result.hits = await select(ctx, plan, fused, timer, result)
    timer.finish()
    return result


def plan_search(ctx: SearchContext, request: SearchRequest) -> SearchPlan:
    """Validate the request and decide what runs. Raises InputError/NotFound."""
    query = validate_query(request.query, ctx.max_query_chars)
    if request.mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}")
    fusion = request.fusion or ctx.fusion
    if fusion not in FUSIONS:
        raise InputError(f"fusion must be one of {', '.join(FUSIONS)}")
    if not 1 <= request.top_k <= MAX_TOP_K:
        raise InputError(f"top_k must be between 1 and {MAX_TOP_K}")
    collection = ctx.index.catalog.get_collection(request.collection)
    condition = (
        compile_filter(
            request.filter, max_terms=ctx.max_filter_terms, max_depth=ctx.max_filter_depth
        )
        if request.filter
        else None
    )
    retrievers = {"hybrid": ("dense", "lexical"), "dense": ("dense",), "lexical": ("lexical",)}
    chosen = retrievers[request.mode]
    warnings: list[str] = []
    if request.mode == "hybrid" and not embedder_covers(
        collection.embedder_provider, collection.embedder_model, query
    ):
        chosen = ("lexical",)
        warnings.append(
            f"dense retrieval skipped: {collection.embedder_model} does not cover this language"
        )
    want_rerank = request.rerank if request.rerank is not None else ctx.reranker is not None
    if want_rerank and ctx.reranker is None:
        warnings.append("rerank skipped: no reranker is configured")
    return SearchPlan(
        query=query,
        collection=collection,
        condition=condition,
        # Refuses a collection it cannot embed for; a lexical search loads no model at all.
        embedder=ctx.embedder_for(collection) if "dense" in chosen else None,
        retrievers=chosen,
        fusion=fusion,
        candidates=max(ctx.candidate_k, request.top_k),
        reranker=ctx.reranker if want_rerank else None,
        top_k=request.top_k,
        warnings=tuple(warnings),
    )


async def _allowed_ids(
    ctx: SearchContext, plan: SearchPlan, timer: StageTimer
) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    """Ids of the chunks the filter admits (None: no filter)."""
    condition = plan.condition
    if condition is None:
        return None
    catalog = ctx.index.catalog
    return await timer.in_thread(
        "filter", lambda: catalog.filtered_chunk_ids(plan.collection.id, condition)
    )


async def retrieve(
    ctx: SearchContext,
    plan: SearchPlan,
    allowed: np.ndarray[Any, np.dtype[np.int64]] | None,
    timer: StageTimer,
    result: SearchResult,
) -> dict[str, Ranked]:
    """Each planned retriever's ranked candidates, the retrievers running concurrently."""

    async def dense() -> Ranked:
        embedder = plan.embedder
        assert embedder is not None  # planned together with the "dense" retriever
        # The collection was read from the catalog for this request: its revision is fresh.
        store = ctx.index.store(plan.collection, revision=plan.collection.revision)
        if isinstance(embedder, InProcessQueries):
            # A local model: embed and search on one worker thread. A trip to a thread costs
            # more GIL time than searching a small index, and every request makes it.
            def embed_and_search() -> tuple[Embeddings, Ranked]:
                with timer.stage("embed"):
                    embedded = embedder.embed_query_blocking(plan.query)
                with timer.stage("dense"):
                    found = store.search(embedded.vectors[0], plan.candidates, allowed)
                return embedded, found

            embedded, found = await asyncio.to_thread(embed_and_search)
            result.usage.append(embedded.usage)
            return found
        with timer.stage("embed"):
            embedded = await embedder.embed_query(plan.query)
        result.usage.append(embedded.usage)
        vector = embedded.vectors[0]
        return await timer.in_thread(
            "dense", lambda: store.search(vector, plan.candidates, allowed)
        )

    async def lexical() -> Ranked:
        return await timer.in_thread(
            "lexical",
            lambda: ctx.index.lexical_search(
                plan.collection, plan.query, plan.candidates, plan.condition, allowed=allowed
            ),
        )

    jobs: dict[str, Callable[[], Awaitable[Ranked]]] = {"dense": dense, "lexical": lexical}
    ranked = await asyncio.gather(*(jobs[name]() for name in plan.retrievers))
    return dict(zip(plan.retrievers, ranked, strict=True))


def fuse(
    plan: SearchPlan,
    lists: Mapping[str, Ranked],
    weights: Mapping[str, float],
    rrf_k: int,
    limit: int | None = None,
) -> list[Candidate]:
    """One ranking from the retrievers' lists, weighted per retriever; the best `limit`."""
    if plan.fusion == "rrf":
        return rrf(lists, weights, rrf_k, limit)
    return zscore(lists, weights, limit)


def _wanted(plan: SearchPlan) -> int:
    """How many fused candidates the selection looks at: the reranker's share, or top k."""
    return max(plan.top_k, RERANK_MAX_CANDIDATES) if plan.reranker else plan.top_k


async def select(
    ctx: SearchContext,
    plan: SearchPlan,
    fused: list[Candidate],
    timer: StageTimer,
    result: SearchResult,
) -> list[Hit]:
    """The top k: fetch the candidates' chunks, rerank them when planned, cut."""
    catalog = ctx.index.catalog
    wanted = _wanted(plan)
    keep = fused[: wanted + DELETED_MARGIN]
    ids = [c.chunk_id for c in keep]
    chunks = await timer.in_thread("fetch", lambda: catalog.chunks_by_ids(ids))
    keep = [c for c in keep if c.chunk_id in chunks]
    if plan.reranker is not None and keep:
        keep = await _rerank(plan.reranker, plan.query, keep[:wanted], chunks, timer, result)
    return [
        Hit(
            chunk=chunks[c.chunk_id],
            score=c.scores.get("rerank", c.fused),
            scores=dict(c.scores),
        )
        for c in keep[: plan.top_k]
    ]


async def _rerank(
    reranker: Reranker,
    query: str,
    keep: list[Candidate],
    chunks: Mapping[int, StoredChunk],
    timer: StageTimer,
    result: SearchResult,
) -> list[Candidate]:
    """Reorder by the reranker; on failure keep the fused order and say so."""
    try:
        with timer.stage("rerank"):
            ranked = await reranker.rerank(query, [chunks[c.chunk_id].text for c in keep])
    except ProviderError as exc:
        # The detail (URLs, provider messages) is for the server log, not for callers.
        log.warning("rerank failed, fused order kept: %s: %s", exc.code, exc.message)
        result.warnings.append("rerank failed, fused order kept: the model provider is unavailable")
        return keep
    result.usage.append(ranked.usage)
    result.reranked = True
    order: list[Candidate] = []
    for index, score in ranked.ranking:
        keep[index].scores["rerank"] = score
        order.append(keep[index])
    seen = {id(c) for c in order}
    return order + [c for c in keep if id(c) not in seen]


def documents_in_order(hits: list[Hit]) -> list[int]:
    """Document ids ranked by their best chunk (a document scores as its best chunk)."""
    seen: dict[int, None] = {}
    for hit in hits:
        seen.setdefault(hit.chunk.document_id, None)
    return list(seen)
