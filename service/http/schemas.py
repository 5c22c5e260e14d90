"""Pydantic models at the HTTP boundary: request bodies and the error body for the docs.

Inside, the pipeline uses frozen dataclasses (`service.query.records`); routes convert once.
Query text is checked by the pipeline (empty → 400, too long → 400), not here, so the
message is the same over HTTP and the CLI.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    "FILTER_DOC",
    "AnswerBody",
    "CollectionBody",
    "ErrorBody",
    "SearchBody",
    "TextDocumentBody",
]

FILTER_DOC = (
    "Metadata filter: `{field: value}` or operators `$eq $ne $in $gt $gte $lt $lte`, "
    "combined with `$and`/`$or`. Fields: `source`, `title`, `media_type`, `document_id` "
    "or any metadata key."
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchBody(_Body):
    query: str = Field(description="What to search for (English, Chinese, identifiers...).")
    collection: str = Field(description="Collection to search.")
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
    query: str = Field(description="The question.")
    collection: str = Field(description="Collection to answer from.")
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
    document_ids: list[int] = Field(
        default_factory=list, description="Documents to answer from with scope `documents`."
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
    name: str = Field(description="1-128 letters, digits, `_`, `-` or `.`.")
    embedder: Literal["local", "zhipu", "hashing"] | None = Field(
        None, description="Embedding provider; default Zhipu with a key, else the local model."
    )
    model: str | None = Field(None, description="Embedding model name (or local model path).")
    dimensions: int | None = Field(
        None, ge=1, le=8192, description="Vector size (Zhipu embedding-3: 256-2048)."
    )
    chunk_tokens: int | None = Field(None, ge=16, le=8192, description="Chunk size in tokens.")
    overlap_sentences: int | None = Field(
        None, ge=0, le=20, description="Sentences repeated between chunks."
    )


class TextDocumentBody(_Body):
    source: str = Field(
        min_length=1, max_length=2048, description="Unique name in the collection (URI or path)."
    )
    text: str = Field(description="The document's text.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Metadata, filterable in search."
    )
    filename: str | None = Field(
        None,
        description="Decides the parser by suffix (`notes.md` → Markdown); default: the "
        "source's own suffix when supported, else plain text.",
    )


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine code, e.g. `not_found`, `invalid_input`.")
    message: str = Field(description="What went wrong, for a person.")


class ErrorBody(BaseModel):
    """The one error body of every route."""

    error: ErrorDetail
    request_id: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Bad input",
        401: "Missing or unknown API key",
        403: "The key lacks the scope or collection",
        404: "Unknown collection or document",
        413: "Body too large",
        415: "Wrong content type",
        429: "Rate limited",
    }.items()
}
