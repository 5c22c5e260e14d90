"""The OpenAI-compatible surface: `/v1/models` and `/v1/chat/completions` (`/v1/tools`: `tools`).

Any OpenAI client (or chatbot front end) can talk to ragsearch by pointing its base URL here.
The model name selects the collection: `ragsearch:<collection>`, or plain `ragsearch` with
the collection named by the `collection` extension field, or else the one collection the
caller can read (several readable collections make plain `ragsearch` ambiguous: a 400).
The last user message is the question; earlier turns rewrite a follow-up into a standalone
query (`service.query.followup`) and reach the answer prompt as history. Citations are `[n]`
markers in the text and an extension field `citations`. Errors use OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, with the status of the error.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from indexer.errors import Forbidden, InputError, ModelNotFound, NotFound, RagsearchError
from indexer.json_values import check_text
from service.http.budget import TokenBudget
from service.http.deps import EngineDep, Principal, PrincipalDep, authorize
from service.http.errors import (
    INTERNAL_MESSAGE,
    public_error,
    retry_after_headers,
    validation_message,
)
from service.http.schemas import FILTER_DOC, error_responses
from service.query.answer_records import Answer, AnswerBuilder, AnswerEvent, DeltaEvent
from service.query.engine import Engine
from service.query.followup import Rewrite, standalone_query
from service.query.prompting import estimate_tokens
from service.query.records import ANSWER_TOP_K, MAX_TOP_K, AnswerRequest

__all__ = [
    "MODEL_PREFIX",
    "ChatCompletionBody",
    "collection_for_model",
    "openai_error_body",
    "router",
]

log = logging.getLogger("ragsearch.http")

MODEL_PREFIX = "ragsearch"
_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}
_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "model_context_window_exceeded": "length",
    "sensitive": "content_filter",
}


def openai_error_body(status: int, message: str, code: str) -> dict[str, Any]:
    """OpenAI's error body for an HTTP status, message and machine code."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, RequestValidationError):
        body = openai_error_body(400, validation_message(exc.errors()), "validation_error")
        return JSONResponse(body, status_code=400)
    assert isinstance(exc, RagsearchError)
    status, code, message = public_error(exc, uuid.uuid4().hex)
    body = openai_error_body(status, message, code)
    return JSONResponse(body, status_code=status, headers=retry_after_headers(exc))


class OpenAIRoute(APIRoute):
    """A route whose errors (its dependencies' and validation's too) use OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (RagsearchError, RequestValidationError) as exc:
                return _error_response(exc)

        return handle


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape, which OpenAI clients parse."""

    error: OpenAIErrorDetail


router = APIRouter(
    route_class=OpenAIRoute,
    tags=["openai-compatible"],
    responses=error_responses(
        400, 401, 403, 404, 413, 415, 429, 500, 503, 507, model=OpenAIErrorBody
    ),
)


# --- request bodies --------------------------------------------------------------------


class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts are understood."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessageBody(BaseModel):
    """One message of the conversation, as OpenAI clients send it."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(part.type != "text" for part in self.content):
            raise InputError("only text message content is supported")
        return "".join(part.text or "" for part in self.content)


class ChatCompletionBody(BaseModel):
    """OpenAI's chat request, plus the extension fields `collection`, `filter`, `top_k`.

    `temperature`, `max_tokens`, `user` and other OpenAI options are accepted for
    compatibility; the answer pipeline's own settings decide generation.
    """

    model_config = ConfigDict(extra="ignore")
    model: str = Field(
        MODEL_PREFIX, description="`ragsearch:<collection>`, or `ragsearch` (see `collection`)."
    )
    messages: list[ChatMessageBody] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=1, description="Only one choice is produced.")
    user: str | None = None
    collection: str | None = Field(None, description="Collection for model `ragsearch`.")
    filter: dict[str, Any] | None = Field(None, description=FILTER_DOC)
    top_k: int = Field(ANSWER_TOP_K, ge=1, le=MAX_TOP_K, description="Sources to consider.")
    sources_footer: bool = Field(
        False,
        description="Append a short `Sources:` list to the message content, for clients "
        "that keep only `message.content`.",
    )


# --- the model name ----------------------------------------------------------------------


def _readable(principal: Principal, names: list[str]) -> list[str]:
    visible = []
    for name in names:
        try:
            authorize(principal, "read", name)
        except Forbidden:
            continue
        visible.append(name)
    return visible


def collection_for_model(
    model: str, collection: str | None, principal: Principal, names: list[str]
) -> str:
    """The collection a chat request targets (see the module docstring for the rules)."""
    if model.startswith(MODEL_PREFIX + ":"):
        named = model.removeprefix(MODEL_PREFIX + ":")
        if not named:
            raise ModelNotFound(f"model {model!r} names no collection")
        if collection is not None and collection != named:
            raise InputError(f"model {model!r} and collection {collection!r} disagree")
        return named
    if model != MODEL_PREFIX:
        raise ModelNotFound(
            f"model {model!r} does not exist: use {MODEL_PREFIX!r} or "
            f"'{MODEL_PREFIX}:<collection>' (GET /v1/models lists them)"
        )
    if collection is not None:
        return collection
    visible = _readable(principal, names)
    if len(visible) == 1:
        return visible[0]
    if not visible:
        raise NotFound("no collection is available; create one and add documents first")
    shown = ", ".join(visible[:10])
    raise InputError(
        f"model {MODEL_PREFIX!r} is ambiguous with {len(visible)} collections ({shown}): "
        f"use '{MODEL_PREFIX}:<collection>' or the `collection` field"
    )


def _collection_names(engine: Engine) -> list[str]:
    return [c.name for c in engine.index.catalog.list_collections()]


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "ragsearch"}


@router.get("/v1/models", summary="Models: one per readable collection, plus `ragsearch`")
async def list_models(principal: PrincipalDep, engine: EngineDep) -> dict[str, Any]:
    authorize(principal, "read")
    visible = _readable(principal, _collection_names(engine))
    ids = [MODEL_PREFIX, *(f"{MODEL_PREFIX}:{name}" for name in visible)]
    return {"object": "list", "data": [_model_card(i) for i in ids]}


@router.get("/v1/models/{model_id}", summary="One model")
async def get_model(
    model_id: str,
    principal: PrincipalDep,
    engine: EngineDep,
) -> dict[str, Any]:
    authorize(principal, "read")
    if model_id != MODEL_PREFIX:
        name = collection_for_model(model_id, None, principal, [])
        if name not in _readable(principal, _collection_names(engine)):
            raise ModelNotFound(f"model {model_id!r} does not exist")
    return _model_card(model_id)


# --- chat completions ------------------------------------------------------------------


def _conversation(messages: list[ChatMessageBody]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The question (last user message) and the user/assistant turns before it."""
    texts = [(m.role, m.text()) for m in messages]
    for i, (_, text) in enumerate(texts):
        check_text(text, f"messages[{i}].content")
    last = max((i for i, (role, _) in enumerate(texts) if role == "user"), default=None)
    if last is None:
        raise InputError("messages need at least one user message (the question)")
    question = texts[last][1]
    if not question.strip():
        raise InputError("the last user message is empty")
    history = tuple((r, t) for r, t in texts[:last] if r in ("user", "assistant") and t.strip())
    return question, history


def _usage(answered: Answer, question: str, rewrite: Rewrite) -> dict[str, Any]:
    """Tokens of the chat: the answer model's own count, plus the follow-up rewrite's.

    The extractive answerer calls no model: its prompt (the question) and completion (the
    answer) are estimated as a chat model would count them.
    """
    calls = [u for u in answered.usage if u.model == answered.model]
    prompt = sum(u.prompt_tokens for u in calls)
    completion = sum(u.completion_tokens for u in calls)
    if not calls:
        prompt, completion = estimate_tokens(question), estimate_tokens(answered.answer)
    if rewrite.usage is not None:
        prompt += rewrite.usage.prompt_tokens
        completion += rewrite.usage.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def sources_footer(answered: Answer) -> str:
    """A short "Sources:" list for clients that keep only `message.content`."""
    if not answered.citations:
        return ""
    lines = [
        f"[{c.n}] {c.chunk.title or c.chunk.source} — {c.chunk.source}" for c in answered.citations
    ]
    return "\n\nSources:\n" + "\n".join(lines)


class _Chat:
    """One chat completion request, resolved: who, which collection, what to retrieve."""

    def __init__(
        self, body: ChatCompletionBody, question: str, collection: str, rewrite: Rewrite
    ) -> None:
        self.body = body
        self.question = question
        self.collection = collection
        self.rewrite = rewrite
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def frame(self, **fields: Any) -> dict[str, Any]:
        return {"id": self.id, "created": self.created, "model": self.body.model, **fields}

    def extension(self, answered: Answer) -> dict[str, Any]:
        """The `ragsearch` field: how the answer was made."""
        warnings = list(answered.warnings)
        if self.rewrite.warning:
            warnings.append(self.rewrite.warning)
        return {
            "collection": self.collection,
            "query": self.rewrite.query,
            "rewrite": self.rewrite.method,
            "answer_model": answered.model,
            "route": answered.route,
            "grounded": answered.grounded,
            "gate": None if answered.gate is None else answered.gate.as_dict(),
            "warnings": warnings,
            "timings": {k: round(v, 3) for k, v in answered.timings.items()},
            "answer": answered.answer,
        }

    def footer(self, answered: Answer) -> str:
        return sources_footer(answered) if self.body.sources_footer else ""

    def completion(self, answered: Answer) -> dict[str, Any]:
        finish = _FINISH_REASONS.get(answered.finish_reason, "stop")
        content = answered.answer + self.footer(answered)
        message = {"role": "assistant", "content": content}
        return self.frame(
            object="chat.completion",
            choices=[{"index": 0, "message": message, "finish_reason": finish}],
            usage=_usage(answered, self.question, self.rewrite),
            system_fingerprint=None,
            citations=[c.as_dict() for c in answered.citations],
            sources=[s.as_dict() for s in answered.sources],
            ragsearch=self.extension(answered),
        )

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        data = self.frame(object="chat.completion.chunk", choices=[choice], **extra)
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _stream_error(exc: Exception) -> str:
    """The error chunk ending a started stream; unexpected errors are logged, never shown."""
    if isinstance(exc, RagsearchError):
        status, code, message = public_error(exc, uuid.uuid4().hex)
        error = openai_error_body(status, message, code)
    else:
        log.error("chat completion stream failed", exc_info=exc)
        error = openai_error_body(500, INTERNAL_MESSAGE, "internal_error")
    return f"data: {json.dumps(error, ensure_ascii=False)}\n\n"


async def _stream(
    chat: _Chat,
    first: AnswerEvent,
    events: AsyncGenerator[AnswerEvent, None],
    charge: Callable[[list[dict[str, Any]]], Awaitable[None]],
) -> AsyncIterator[str]:
    """OpenAI chunks: the role, each delta, then a final chunk with finish, usage, citations.

    Deltas carry the final citation numbers (the pipeline renumbers as it streams), so the
    concatenated deltas equal `ragsearch.answer`, and `citations` matches both.
    """
    yield chat.chunk({"role": "assistant", "content": ""})
    builder = AnswerBuilder()
    try:
        builder.add(first)
        async for event in events:
            builder.add(event)
            if isinstance(event, DeltaEvent) and event.text:
                yield chat.chunk({"content": event.text})
    except Exception as exc:  # the stream has started: the error goes in it, as /v1/answer's
        yield _stream_error(exc)
        return
    finally:
        await events.aclose()
    answered = builder.answer()
    usage = _usage(answered, chat.question, chat.rewrite)
    await charge([usage])  # a streamed answer costs the key's daily budget as a whole one does
    footer = chat.footer(answered)
    if footer:
        yield chat.chunk({"content": footer})
    yield chat.chunk(
        {},
        _FINISH_REASONS.get(answered.finish_reason, "stop"),
        usage=usage,
        citations=[c.as_dict() for c in answered.citations],
        sources=[s.as_dict() for s in answered.sources],
        ragsearch=chat.extension(answered),
    )
    yield "data: [DONE]\n\n"


@router.post(
    "/v1/chat/completions",
    summary="OpenAI-compatible chat: a cited answer from a collection",
    response_model=None,
)
async def chat_completions(
    body: ChatCompletionBody,
    http_request: Request,
    principal: PrincipalDep,
    engine: EngineDep,
) -> JSONResponse | StreamingResponse:
    """The answer as a `chat.completion` (or `chat.completion.chunk` SSE with `stream`).

    Citation markers are numbered in order of first use, the same in every streamed delta,
    the non-streamed content, the last chunk's `ragsearch.answer` and `citations`. With the
    extension field `sources_footer`, the content ends with a short `Sources:` list.
    """
    authorize(principal, "read")
    question, history = _conversation(body.messages)
    collection = collection_for_model(
        body.model, body.collection, principal, _collection_names(engine)
    )
    authorize(principal, "read", collection)
    budget: TokenBudget = http_request.app.state.token_budget
    await budget.check(engine.index.catalog, principal)
    engine.index.catalog.get_collection(collection)  # NotFound before any model call
    rewrite = await standalone_query(question, history, engine.chat, engine.chat_model_name)
    request = AnswerRequest(
        query=rewrite.query,
        collection=collection,
        top_k=body.top_k,
        filter=body.filter,
        history=history,
    )
    chat = _Chat(body, question, collection, rewrite)
    if not body.stream:
        answered = await engine.answer(request)
        await budget.charge(engine.index.catalog, principal, [_usage(answered, question, rewrite)])
        return JSONResponse(chat.completion(answered))
    events = engine.answer_events(request)
    try:
        first = await anext(events)  # validation and retrieval errors surface as a 4xx here
    except BaseException:
        await events.aclose()
        raise
    return StreamingResponse(
        _stream(chat, first, events, partial(budget.charge, engine.index.catalog, principal)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
