"""The answer half of the pipeline: search → check evidence → pack → route → generate → cite.

`answer_events` is the one implementation; the JSON answer is the same event stream consumed
to its end, so the streamed and the JSON forms cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from indexer.errors import InputError, NotFound, PayloadTooLarge
from indexer.providers.base import TRUNCATED_FINISH_REASONS, ChatModel, ChatOptions
from indexer.records import StoredChunk, Usage
from service.query.citations import snippet, validate_citations
from service.query.extractive import coverage, extractive_answer
from service.query.prompting import (
    build_messages,
    estimate_tokens,
    not_found_message,
    pack,
    prompt_tokens,
    route,
)
from service.query.records import AnswerRequest, Citation, Hit, SearchRequest, usage_dict
from service.query.search import SearchContext, search, validate_query

EXTRACTIVE = "extractive"
Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AnswerContext:
    search: SearchContext
    chat: ChatModel | None  # None: the embedded extractive answerer
    chat_model: str
    long_model: str
    chat_window: int
    long_window: int
    answer_tokens: int
    context_tokens: int
    min_evidence: float


def evidence(question: str, hits: Sequence[Hit]) -> float:
    """How well the best sources support an answer, 0..1.

    A reranker's score when there is one; otherwise the better of the dense cosine and the
    share of question terms the source contains (RRF scores are ranks, not evidence).
    """
    best = 0.0
    for hit in hits[:3]:
        if "rerank" in hit.scores:
            best = max(best, hit.scores["rerank"])
            continue
        best = max(best, hit.scores.get("dense", 0.0), coverage(question, hit.chunk.text))
    return best


async def _sources(
    ctx: AnswerContext,
    request: AnswerRequest,
    timings: dict[str, float],
    usage: list[Usage],
    warnings: list[str],
) -> tuple[list[Hit], bool]:
    """The candidate sources and whether they are strong enough to answer from."""
    if request.scope == "documents":
        return _whole_documents(ctx, request), True
    found = await search(
        ctx.search,
        SearchRequest(
            query=request.query,
            collection=request.collection,
            top_k=request.top_k,
            mode=request.mode,
            filter=request.filter,
        ),
    )
    timings.update({f"search.{k}": v for k, v in found.timings.items()})
    usage.extend(found.usage)
    warnings.extend(found.warnings)
    grounded = bool(found.hits) and evidence(request.query, found.hits) >= ctx.min_evidence
    return found.hits, grounded


def _whole_documents(ctx: AnswerContext, request: AnswerRequest) -> list[Hit]:
    if not request.document_ids:
        raise InputError("scope 'documents' needs document_ids")
    catalog = ctx.search.index.catalog
    collection = catalog.get_collection(request.collection)
    hits = []
    for document_id in request.document_ids:
        doc = catalog.get_document(collection.id, document_id)
        text = catalog.document_text(doc.id)
        first = catalog.document_chunk_ids([doc.id])
        if not first:
            raise NotFound(f"document {document_id} has no text")
        chunk = StoredChunk(
            id=first[0],
            document_id=doc.id,
            ordinal=0,
            text=text,
            start=0,
            end=len(text),
            heading_path=(),
            page=None,
            source=doc.source,
            title=doc.title,
            metadata=doc.metadata,
        )
        hits.append(Hit(chunk=chunk, score=1.0, scores={}))
    return hits


def _citations(answer: str, sources: Sequence[StoredChunk]) -> tuple[str, list[Citation]]:
    final, order = validate_citations(answer, len(sources))
    cites = [
        Citation(n=i, chunk=sources[orig - 1], snippet=snippet(sources[orig - 1].text))
        for i, orig in enumerate(order, start=1)
    ]
    return final, cites


async def answer_events(ctx: AnswerContext, request: AnswerRequest) -> AsyncIterator[Event]:
    """Events `sources`, `delta`*, `citations`, `done`. Errors propagate to the caller."""
    started = time.perf_counter()
    validate_query(request.query, ctx.search.max_query_chars)
    timings: dict[str, float] = {}
    usage: list[Usage] = []
    warnings: list[str] = []
    hits, grounded = await _sources(ctx, request, timings, usage, warnings)

    t0 = time.perf_counter()
    whole = request.scope == "documents"
    budget = ctx.long_window - ctx.answer_tokens if whole else ctx.context_tokens
    chunks = pack([h.chunk for h in hits], budget) if grounded else []
    if whole and len(chunks) < len(hits):
        needed = sum(estimate_tokens(h.chunk.text) for h in hits)
        raise PayloadTooLarge(
            f"the documents are ~{needed:,} tokens; with {ctx.answer_tokens:,} for the answer "
            f"they do not fit the largest window available ({ctx.long_model}, "
            f"{ctx.long_window:,} tokens)"
        )
    messages = build_messages(request.query, chunks, request.history)
    model, reason = EXTRACTIVE, "no chat model configured"
    if ctx.chat is not None and chunks and request.model != EXTRACTIVE:
        chosen = route(
            prompt_tokens(messages),
            answer_tokens=ctx.answer_tokens,
            chat_model=ctx.chat_model,
            chat_window=ctx.chat_window,
            long_model=ctx.long_model,
            long_window=ctx.long_window,
            whole_documents=whole,
        )
        if chosen is None:
            raise PayloadTooLarge(
                f"the prompt is ~{prompt_tokens(messages):,} tokens plus {ctx.answer_tokens:,} "
                f"for the answer; the largest window available ({ctx.long_model}) is "
                f"{ctx.long_window:,} tokens"
            )
        model, reason = chosen.model, chosen.reason
        if request.model not in ("auto", model):
            model, reason = request.model, "requested"
    timings["pack"] = (time.perf_counter() - t0) * 1000
    yield (
        "sources",
        {
            "model": model,
            "route": reason,
            "grounded": grounded,
            # What the prompt numbered [1]..[n] (a prefix of the hits); when the evidence is
            # too weak to answer, the closest hits instead.
            "sources": [
                _source_dict(i, h.chunk)
                for i, h in enumerate(hits[: len(chunks)] if grounded else hits, start=1)
            ],
        },
    )

    t0 = time.perf_counter()
    text_parts: list[str] = []
    finish = "stop"
    if not chunks:
        text_parts.append(not_found_message(request.query))
        yield "delta", {"text": text_parts[-1]}
    elif model == EXTRACTIVE or ctx.chat is None:
        quoted = extractive_answer(request.query, chunks) or not_found_message(request.query)
        grounded = grounded and quoted != not_found_message(request.query)
        text_parts.append(quoted)
        yield "delta", {"text": quoted}
    else:
        options = ChatOptions(model=model, max_tokens=ctx.answer_tokens)
        async for delta in ctx.chat.stream(messages, options):
            if delta.content:
                text_parts.append(delta.content)
                yield "delta", {"text": delta.content}
            if delta.finish_reason:
                finish = delta.finish_reason
            if delta.usage is not None:
                usage.append(delta.usage)
        if finish in TRUNCATED_FINISH_REASONS:
            warnings.append(f"the answer was cut short (finish_reason: {finish})")
    timings["generate"] = (time.perf_counter() - t0) * 1000

    final, citations = _citations("".join(text_parts), chunks)
    yield "citations", {"answer": final, "citations": [c.as_dict() for c in citations]}
    timings["total"] = (time.perf_counter() - started) * 1000
    yield (
        "done",
        {
            "answer": final,
            "model": model,
            "grounded": grounded,
            "finish_reason": finish,
            "warnings": warnings,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "usage": [usage_dict(u) for u in usage],
        },
    )


def _source_dict(n: int, chunk: StoredChunk) -> dict[str, Any]:
    return {
        "n": n,
        "chunk_id": chunk.id,
        "document_id": chunk.document_id,
        "source": chunk.source,
        "title": chunk.title,
        "snippet": snippet(chunk.text),
    }


async def answer(ctx: AnswerContext, request: AnswerRequest) -> dict[str, Any]:
    """The JSON answer: the same event stream, consumed and merged."""
    body: dict[str, Any] = {}
    async for event, data in answer_events(ctx, request):
        if event == "sources":
            body["sources"] = data["sources"]
            body["route"] = data["route"]
        elif event in ("citations", "done"):
            body.update(data)
    return body
