"""`POST /v1/search` and `POST /v1/answer` (JSON, or Server-Sent Events when streaming)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from indexer.errors import RagsearchError
from service.http.auth import check_answer_choice
from service.http.budget import TokenBudget
from service.http.deps import EngineDep, MetricsDep, PrincipalDep, authorize, require_json
from service.http.errors import INTERNAL_MESSAGE, error_body, public_error, request_id
from service.http.metrics import Metrics
from service.http.schemas import ERROR_RESPONSES, AnswerBody, SearchBody
from service.query.answer_records import AnswerEvent, DoneEvent

__all__ = ["router", "sse_event"]

log = logging.getLogger("ragsearch.http")

router = APIRouter(
    prefix="/v1", tags=["search"], responses=ERROR_RESPONSES, dependencies=[Depends(require_json)]
)

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/search")
async def search(
    body: SearchBody,
    engine: EngineDep,
    principal: PrincipalDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Ranked chunks for a query: dense and lexical retrieval, fused, filtered, reranked.

    Each result has `chunk_id`, `document_id`, `source`, `title`, `text`, `span`, `score` and
    per-retriever `scores` (`dense`, `lexical`, `rerank` when they ran); the response adds
    per-stage `timings` (ms), model `usage` and `warnings` (e.g. dense retrieval skipped for
    a language the embedder does not cover). Needs the `read` scope on the collection.
    """
    authorize(principal, "read", body.collection)
    result = await engine.search(body.to_request())
    out = result.as_dict()
    metrics.observe_timings(result.timings, total="search")
    metrics.observe_usage(out["usage"])
    return out


@router.post(
    "/answer",
    responses={
        200: {
            "description": "The answer as JSON, or an event stream with `stream: true`.",
            "content": {"application/json": {}, "text/event-stream": {}},
        }
    },
)
async def answer(
    body: AnswerBody,
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
    metrics: MetricsDep,
) -> Any:
    """A cited answer from the collection's best sources.

    JSON: `answer` with `[n]` markers, `citations` (chunk id, document, title, source, span,
    snippet), `sources`, `model` and `route` (which model and why), `grounded` (false when
    the sources are too weak to answer from: the answer then says so, `sources` lists the
    closest ones and `warnings` says why), `gate` (the decline gate's signals and reason),
    `timings`, `usage`, `warnings`.

    With `stream: true`, Server-Sent Events: `sources`, then `delta` pieces of text, then
    `citations` and `done` (whose fields equal the JSON answer). Bad input is refused before
    the stream starts; a failure during it ends the stream with one `error` event carrying
    the error body. Needs the `read` scope on the collection; `scope: "documents"` needs
    the `documents` scope, and a `model` other than `auto`/`extractive` the `admin` scope
    (or the model in `RAGSEARCH_KEY_MODELS`). 429 once the key's daily token budget is spent.
    """
    authorize(principal, "read", body.collection)
    check_answer_choice(principal, body.model, body.scope, engine.settings.key_models)
    budget: TokenBudget = request.app.state.token_budget
    catalog = engine.index.catalog
    await budget.check(catalog, principal)
    if not body.stream:
        result = (await engine.answer(body.to_request())).as_dict()
        _observe_answer(metrics, result)
        await budget.charge(catalog, principal, result.get("usage", []))
        return result
    events = engine.answer_events(body.to_request())
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    stream = _sse(
        first,
        events,
        request_id(request.scope),
        metrics,
        partial(budget.charge, catalog, principal),
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event: `event: NAME`, a one-line JSON `data:`, a blank line."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _sse(
    first: AnswerEvent,
    events: AsyncGenerator[AnswerEvent, None],
    rid: str,
    metrics: Metrics,
    charge: Callable[[list[dict[str, Any]]], Awaitable[None]],
) -> AsyncIterator[bytes]:
    try:
        yield sse_event(first.name, first.as_dict())
        async for event in events:
            data = event.as_dict()
            if isinstance(event, DoneEvent):
                _observe_answer(metrics, data)
                await charge(data.get("usage", []))
            yield sse_event(event.name, data)
    except RagsearchError as exc:
        _, code, message = public_error(exc, rid)
        yield sse_event("error", error_body(code, message, rid))
    except Exception:
        log.exception("answer stream failed in request %s", rid)
        yield sse_event("error", error_body("internal_error", INTERNAL_MESSAGE, rid))
    finally:
        await events.aclose()


def _observe_answer(metrics: Metrics, body: dict[str, Any]) -> None:
    metrics.observe_timings(body.get("timings", {}), total="answer")
    metrics.observe_usage(body.get("usage", []))
