"""Pydantic models at the HTTP boundary: request bodies and the error body for the docs.

Inside, the pipeline uses frozen dataclasses (`service.query.records`); routes convert once.
Query text is checked by the pipeline (empty → 400, too long → 400), not here, so the
message is the same over HTTP and the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from indexer.json_values import MAX_ID
from indexer.records import (
    MAX_CHUNK_TOKENS,
    MAX_DIMENSIONS,
    MAX_OVERLAP_SENTENCES,
    MIN_CHUNK_TOKENS,
)
from service.query.records import (
    ANSWER_TOP_K,
    MAX_TOP_K,
    SEARCH_TOP_K,
    AnswerRequest,
    Fusion,
    Mode,
    SearchRequest,
)

__all__ = [
    "CALLER_ERRORS",
    "ERROR_RESPONSES",
    "FILTER_DOC",
    "AnswerBody",
    "CollectionBody",
    "ErrorBody",
    "SearchBody",
    "TextDocumentBody",
    "error_responses",
    "json_error_responses",
]

FILTER_DOC = (
    "Metadata filter: `{field: value}` or operators `$eq $ne $in $gt $gte $lt $lte`, "
    "combined with `$and`/`$or`. Fields: `source`, `title`, `media_type`, `document_id` "
    "or any metadata key."
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no "0" for 0, no 0 for false


class SearchBody(_Body):
    query: str = Field(
        min_length=1, description="What to search for (English, Chinese, identifiers...)."
    )
    collection: str = Field(min_length=1, max_length=128, description="Collection to search.")
    top_k: int = Field(SEARCH_TOP_K, ge=1, le=MAX_TOP_K, description="Results to return.")
    mode: Mode = Field("hybrid", description="`hybrid` (dense + lexical), `dense` or `lexical`.")
    filter: dict[str, Any] | None = Field(None, description=FILTER_DOC)
    rerank: bool | None = Field(
        None, description="Rerank the fused candidates; default: when a reranker is configured."
    )
    fusion: Fusion | None = Field(
        None,
        description="Hybrid fusion: `rrf` or `zscore`; default: the server's setting.",
    )

    def to_request(self) -> SearchRequest:
        return SearchRequest(
            query=self.query,
            collection=self.collection,
            top_k=self.top_k,
            mode=self.mode,
            filter=self.filter,
            rerank=self.rerank,
            fusion=self.fusion,
        )


class AnswerBody(_Body):
    query: str = Field(min_length=1, description="The question.")
    collection: str = Field(min_length=1, max_length=128, description="Collection to answer from.")
    top_k: int = Field(ANSWER_TOP_K, ge=1, le=MAX_TOP_K, description="Sources to consider.")
    filter: dict[str, Any] | None = Field(None, description=FILTER_DOC)
    mode: Mode = Field("hybrid", description="Retrieval mode for the sources.")
    model: str = Field(
        "auto",
        description="`auto` routes to the chat model or, for long contexts, the long-context "
        "model; `extractive` quotes sentences; or a model name.",
    )
    scope: Literal["chunks", "documents"] = Field(
        "chunks", description="`chunks`: retrieved passages; `documents`: whole `document_ids`."
    )
    document_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list,
        max_length=100,
        description="Documents to answer from with scope `documents`.",
    )
    stream: bool = Field(
        False,
        description="Stream Server-Sent Events `sources`, `delta`..., `citations`, `done` "
        "(or `error`) instead of one JSON body.",
    )

    def to_request(self) -> AnswerRequest:
        return AnswerRequest(
            query=self.query,
            collection=self.collection,
            top_k=self.top_k,
            filter=self.filter,
            model=self.model,
            scope=self.scope,
            document_ids=tuple(self.document_ids),
            mode=self.mode,
        )


class CollectionBody(_Body):
    name: str = Field(
        min_length=1,
        max_length=128,
        description="1-128 letters, digits, `_`, `-` or `.` (not first); others are a 400.",
    )
    embedder: Literal["local", "zhipu", "hashing"] | None = Field(
        None, description="Embedding provider; default Zhipu with a key, else the local model."
    )
    model: str | None = Field(None, description="Embedding model name (or local model path).")
    dimensions: int | None = Field(
        None, ge=1, le=MAX_DIMENSIONS, description="Vector size (Zhipu embedding-3: 256-2048)."
    )
    chunk_tokens: int | None = Field(
        None, ge=MIN_CHUNK_TOKENS, le=MAX_CHUNK_TOKENS, description="Chunk size in tokens."
    )
    overlap_sentences: int | None = Field(
        None, ge=0, le=MAX_OVERLAP_SENTENCES, description="Sentences repeated between chunks."
    )


class TextDocumentBody(_Body):
    """JSON upload: a document's `text` (with its `source`), or a page to fetch by `url`."""

    source: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="Unique name in the collection (URI or path); required with `text`, "
        "default the `url`.",
    )
    text: str | None = Field(None, description="The document's text.")
    url: str | None = Field(
        None,
        max_length=2048,
        description="An http(s) page to download and ingest instead of `text` (public "
        "addresses only, size and time limited).",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Metadata, filterable in search."
    )
    filename: str | None = Field(
        None,
        description="Decides the parser by suffix (`notes.md` → Markdown); default: the "
        "source's own suffix when supported, else plain text.",
    )
    run_async: bool = Field(
        False,
        alias="async",
        description="Run as a background job: answer 202 with the job at once.",
    )

    @model_validator(mode="after")
    def _text_or_url(self) -> TextDocumentBody:
        if (self.text is None) == (self.url is None):
            raise ValueError("send either `text` (with `source`) or `url`")
        if self.text is not None and self.source is None:
            raise ValueError("`source` is required with `text`")
        return self


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine code, e.g. `not_found`, `invalid_input`.")
    message: str = Field(description="What went wrong, for a person.")


class ErrorBody(BaseModel):
    """The one error body of every route."""

    error: ErrorDetail
    request_id: str


_ERROR_DESCRIPTIONS = {
    400: "Bad input",
    401: "Missing or unknown API key",
    403: "The key lacks the scope or collection, or a keyless request from a foreign host",
    404: "Unknown collection, document or model",
    409: "Conflict, or another writer holds the lock (`locked`)",
    413: "Body too large",
    415: "Wrong content type",
    422: "Invalid request (`validation_error`) or unparseable document",
    429: "Rate limited, or the key's daily token budget is spent",
    500: "Internal error (logged under the request id)",
    503: "The model provider or the catalog is unavailable",
    507: "The disk holding the data directory is full",
}


def error_responses(*statuses: int, model: Any = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses (default: all), in the one error body."""
    chosen = statuses or tuple(_ERROR_DESCRIPTIONS)
    body = ErrorBody if model is None else model
    return {s: {"model": body, "description": _ERROR_DESCRIPTIONS[s]} for s in chosen}


def json_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error entries for a route whose success is not JSON (HTML, JavaScript): FastAPI would
    file a `model` under the route's own media type, so the JSON content is spelled out."""
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        s: {
            "description": _ERROR_DESCRIPTIONS[s],
            "content": {"application/json": {"schema": schema}},
        }
        for s in statuses
    }


ERROR_RESPONSES = error_responses()
# Routes every request reaches through the key check and the body limit.
CALLER_ERRORS = (401, 403, 413, 429, 500)
