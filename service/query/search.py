"""The search half of the pipeline: retrieve (dense ∥ lexical) → fuse → rerank → top-n."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from indexer.catalog import Catalog
from indexer.errors import InputError, ProviderError
from indexer.filters import compile_filter
from indexer.index import Index
from indexer.providers.base import Embedder, Reranker
from indexer.records import Collection
from service.query.fusion import Candidate, embedder_covers, rrf, zscore
from service.query.records import FUSIONS, MODES, Fusion, Hit, SearchRequest, SearchResult

T = TypeVar("T")
RERANK_MAX_CANDIDATES = 50  # reranking costs grow with candidates; 50 covers any top-10


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


def validate_query(query: str, max_chars: int) -> str:
    text = query.strip()
    if not text:
        raise InputError("query is empty")
    if len(text) > max_chars:
        raise InputError(f"query is {len(text):,} characters; the limit is {max_chars:,}")
    return text


async def _timed(timings: dict[str, float], stage: str, func: Callable[[], T]) -> T:
    started = time.perf_counter()
    try:
        return await asyncio.to_thread(func)
    finally:
        timings[stage] = (time.perf_counter() - started) * 1000


async def search(ctx: SearchContext, request: SearchRequest) -> SearchResult:
    """Ranked chunks for a query, with per-stage timings. Raises InputError/NotFound."""
    started = time.perf_counter()
    query = validate_query(request.query, ctx.max_query_chars)
    if request.mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}")
    fusion = request.fusion or ctx.fusion
    if fusion not in FUSIONS:
        raise InputError(f"fusion must be one of {', '.join(FUSIONS)}")
    if not 1 <= request.top_k <= 200:
        raise InputError("top_k must be between 1 and 200")
    catalog: Catalog = ctx.index.catalog
    collection = catalog.get_collection(request.collection)
    condition = compile_filter(request.filter) if request.filter else None
    embedder = ctx.embedder_for(collection)
    timings: dict[str, float] = {}
    result = SearchResult(hits=[], timings=timings)

    use_dense = request.mode in ("hybrid", "dense")
    use_lexical = request.mode in ("hybrid", "lexical")
    if request.mode == "hybrid" and not embedder_covers(
        collection.embedder_provider, collection.embedder_model, query
    ):
        use_dense = False
        result.warnings.append(
            f"dense retrieval skipped: {collection.embedder_model} does not cover this language"
        )
    result.dense_used = use_dense
    k = max(ctx.candidate_k, request.top_k)

    allowed = None
    if condition is not None:
        allowed = await _timed(
            timings, "filter", lambda: catalog.filtered_chunk_ids(collection.id, condition)
        )
        if len(allowed) == 0:
            timings["total"] = (time.perf_counter() - started) * 1000
            return result  # fail closed: nothing matches the filter

    async def dense() -> list[tuple[int, float]]:
        t0 = time.perf_counter()
        embedded = await embedder.embed_query(query)
        timings["embed"] = (time.perf_counter() - t0) * 1000
        result.usage.append(embedded.usage)
        store = ctx.index.store(collection)
        return await _timed(timings, "dense", lambda: store.search(embedded.vectors[0], k, allowed))

    async def lexical() -> list[tuple[int, float]]:
        return await _timed(
            timings,
            "lexical",
            lambda: ctx.index.lexical_search(collection, query, k, condition),
        )

    jobs: dict[str, Any] = {}
    if use_dense:
        jobs["dense"] = dense()
    if use_lexical:
        jobs["lexical"] = lexical()
    lists = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))

    t0 = time.perf_counter()
    weights = {"dense": 1.0, "lexical": 1.0}
    fused = rrf(lists, weights, ctx.rrf_k) if fusion == "rrf" else zscore(lists, weights)
    timings["fuse"] = (time.perf_counter() - t0) * 1000

    want_rerank = request.rerank if request.rerank is not None else ctx.reranker is not None
    reranker = ctx.reranker if want_rerank else None
    if want_rerank and reranker is None:
        result.warnings.append("rerank skipped: no reranker is configured")
    # Over-fetch a little: a vector whose chunk was deleted a moment ago is dropped below.
    keep = fused[: max(request.top_k, RERANK_MAX_CANDIDATES) if reranker else request.top_k + 5]
    ids = [c.chunk_id for c in keep]
    chunks = await _timed(timings, "fetch", lambda: catalog.chunks_by_ids(ids))
    keep = [c for c in keep if c.chunk_id in chunks]
    if reranker is not None and keep:
        keep = await _rerank(reranker, query, keep, chunks, result)

    for cand in keep[: request.top_k]:
        score = cand.scores.get("rerank", cand.fused)
        result.hits.append(Hit(chunk=chunks[cand.chunk_id], score=score, scores=dict(cand.scores)))
    timings["total"] = (time.perf_counter() - started) * 1000
    return result


async def _rerank(
    reranker: Reranker,
    query: str,
    keep: list[Candidate],
    chunks: dict[int, Any],
    result: SearchResult,
) -> list[Candidate]:
    """Reorder by the reranker; on failure keep the fused order and say so."""
    t0 = time.perf_counter()
    try:
        ranked = await reranker.rerank(query, [chunks[c.chunk_id].text for c in keep])
    except ProviderError as exc:
        result.warnings.append(f"rerank failed, fused order kept: {exc.message}")
        return keep
    finally:
        result.timings["rerank"] = (time.perf_counter() - t0) * 1000
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
