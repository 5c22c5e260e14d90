"""The answer half of the pipeline: retrieve → gate → pack and choose the model → generate → cite.

`answer_events` is the one implementation; the JSON answer is the same event stream folded by
`AnswerBuilder`, so the streamed and the JSON forms cannot disagree. Citation markers are
renumbered as the text streams (`Renumbering`), so every delta already shows final numbers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field

from indexer.errors import InputError, NotFound, PayloadTooLarge
from indexer.providers.base import (
    TRUNCATED_FINISH_REASONS,
    ChatDelta,
    ChatMessage,
    ChatModel,
    ChatOptions,
)
from indexer.records import StoredChunk, Usage
from service.query.answer_records import (
    Answer,
    AnswerBuilder,
    AnswerEvent,
    CitationsEvent,
    DeltaEvent,
    DoneEvent,
    Source,
    SourcesEvent,
)
from service.query.citations import Renumbering, snippet
from service.query.display import display_text
from service.query.extractive import extractive_answer
from service.query.gate import GateDecision, GateOverrides, content_terms, decide, idf
from service.query.prompting import (
    build_messages,
    estimate_tokens,
    is_refusal,
    not_found_message,
    pack,
    prompt_tokens,
    route,
)
from service.query.records import AnswerRequest, Citation, Hit, SearchRequest
from service.query.search import SearchContext, search, validate_query

__all__ = ["EXTRACTIVE", "AnswerContext", "answer", "answer_events"]

EXTRACTIVE = "extractive"


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
    gate: GateOverrides = field(default_factory=GateOverrides)


@dataclass(slots=True)
class _Trace:
    """What every stage adds to: timings (ms), model usage and warnings."""

    timings: dict[str, float] = field(default_factory=dict)
    usage: list[Usage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Evidence:
    hits: list[Hit]
    gate: GateDecision | None  # None in whole-document mode
    grounded: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    chunks: list[StoredChunk]  # the prompt's numbered sources; empty when declining
    messages: list[ChatMessage]
    model: str
    reason: str


# --- retrieve and gate --------------------------------------------------------------------


async def gather_evidence(ctx: AnswerContext, request: AnswerRequest, trace: _Trace) -> _Evidence:
    """The candidate sources, and the gate's decision whether they can answer the question."""
    if request.scope == "documents":
        return _Evidence(_whole_documents(ctx, request), None, True)
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
    trace.timings.update({f"search.{k}": v for k, v in found.timings.items()})
    trace.usage.extend(found.usage)
    trace.warnings.extend(found.warnings)
    t0 = time.perf_counter()
    decision = await asyncio.to_thread(_gate, ctx, request, found.hits)
    trace.timings["gate"] = (time.perf_counter() - t0) * 1000
    if not decision.answer:
        trace.warnings.append(f"declined: {decision.reason}")
    return _Evidence(found.hits, decision, decision.answer)


def _gate(ctx: AnswerContext, request: AnswerRequest, hits: Sequence[Hit]) -> GateDecision:
    catalog = ctx.search.index.catalog
    collection = catalog.get_collection(request.collection)
    terms = content_terms(request.query)
    total, frequencies = catalog.document_frequencies(collection.id, [t.phrase for t in terms])
    weights = [idf(total, f) for f in frequencies]
    return decide(hits, terms, weights, ctx.gate.thresholds(collection.embedder_provider))


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


# --- pack and choose the model ------------------------------------------------------------


def choose_model(ctx: AnswerContext, request: AnswerRequest, evidence: _Evidence) -> _Plan:
    """Pack the best sources into the budget and pick the model that takes the prompt."""
    whole = request.scope == "documents"
    budget = ctx.long_window - ctx.answer_tokens if whole else ctx.context_tokens
    chunks = pack([h.chunk for h in evidence.hits], budget) if evidence.grounded else []
    if whole and len(chunks) < len(evidence.hits):
        needed = sum(estimate_tokens(h.chunk.text) for h in evidence.hits)
        raise PayloadTooLarge(
            f"the documents are ~{needed:,} tokens; with {ctx.answer_tokens:,} for the answer "
            f"they do not fit the largest window available ({ctx.long_model}, "
            f"{ctx.long_window:,} tokens)"
        )
    messages = build_messages(request.query, chunks, request.history)
    if ctx.chat is None or not chunks or request.model == EXTRACTIVE:
        reason = "no chat model configured" if ctx.chat is None else "extractive answer"
        return _Plan(chunks, messages, EXTRACTIVE, reason if chunks else "declined")
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
    if request.model not in ("auto", chosen.model):
        return _Plan(chunks, messages, request.model, "requested")
    return _Plan(chunks, messages, chosen.model, chosen.reason)


# --- generate -----------------------------------------------------------------------------


async def generate(
    ctx: AnswerContext, request: AnswerRequest, plan: _Plan
) -> AsyncIterator[ChatDelta]:
    """The answer text in pieces, with raw `[n]` markers; the last piece says how it ended."""
    if not plan.chunks:
        yield ChatDelta(content=not_found_message(request.query), finish_reason="declined")
        return
    if plan.model == EXTRACTIVE or ctx.chat is None:
        quoted = extractive_answer(request.query, plan.chunks)
        if quoted:
            yield ChatDelta(content=quoted, finish_reason="stop")
        else:
            yield ChatDelta(content=not_found_message(request.query), finish_reason="declined")
        return
    options = ChatOptions(model=plan.model, max_tokens=ctx.answer_tokens)
    async for delta in ctx.chat.stream(plan.messages, options):
        yield delta


# --- the story ----------------------------------------------------------------------------


async def answer_events(
    ctx: AnswerContext, request: AnswerRequest
) -> AsyncGenerator[AnswerEvent, None]:
    """Events `sources`, `delta`*, `citations`, `done`. Errors propagate to the caller."""
    started = time.perf_counter()
    validate_query(request.query, ctx.search.max_query_chars)
    trace = _Trace()
    evidence = await gather_evidence(ctx, request, trace)
    t0 = time.perf_counter()
    plan = choose_model(ctx, request, evidence)
    trace.timings["pack"] = (time.perf_counter() - t0) * 1000
    # What the prompt numbered [1]..[n]; when declining, the closest hits instead.
    listed = plan.chunks if plan.chunks else [h.chunk for h in evidence.hits]
    yield SourcesEvent(
        model=plan.model,
        route=plan.reason,
        grounded=evidence.grounded,
        sources=tuple(Source(n, c) for n, c in enumerate(listed, start=1)),
        gate=evidence.gate,
    )

    t0 = time.perf_counter()
    renumbering = Renumbering(len(plan.chunks))
    parts: list[str] = []
    finish = "stop"
    async for delta in generate(ctx, request, plan):
        if delta.content:
            shown = renumbering.feed(delta.content)
            if shown:
                parts.append(shown)
                yield DeltaEvent(shown)
        if delta.finish_reason:
            finish = delta.finish_reason
        if delta.usage is not None:
            trace.usage.append(delta.usage)
    rest = renumbering.flush()
    if rest:
        parts.append(rest)
        yield DeltaEvent(rest)
    trace.timings["generate"] = (time.perf_counter() - t0) * 1000

    text = "".join(parts)
    grounded = evidence.grounded and finish != "declined"
    if grounded and not renumbering.order and is_refusal(text):
        grounded = False
        trace.warnings.append("the model found no answer in the sources")
    if finish in TRUNCATED_FINISH_REASONS:
        trace.warnings.append(f"the answer was cut short (finish_reason: {finish})")
    citations = _citations(renumbering.order, plan.chunks)
    yield CitationsEvent(text, citations)
    trace.timings["total"] = (time.perf_counter() - started) * 1000
    yield DoneEvent(
        answer=text,
        model=plan.model,
        grounded=grounded,
        finish_reason="stop" if finish == "declined" else finish,
        warnings=tuple(trace.warnings),
        timings=trace.timings,
        usage=tuple(trace.usage),
    )


def _citations(order: Sequence[int], sources: Sequence[StoredChunk]) -> tuple[Citation, ...]:
    return tuple(
        Citation(n=i, chunk=sources[orig - 1], snippet=snippet(display_text(sources[orig - 1])))
        for i, orig in enumerate(order, start=1)
    )


async def answer(ctx: AnswerContext, request: AnswerRequest) -> Answer:
    """The whole answer: the same event stream, folded."""
    builder = AnswerBuilder()
    async for event in answer_events(ctx, request):
        builder.add(event)
    return builder.answer()
