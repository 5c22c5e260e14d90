"""Frozen records passed between pipeline stages. No I/O handles live here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class Section:
    """A structural unit of a parsed document: a paragraph, list, table or page block.

    `start`/`end` are character offsets of `text` inside `ParsedDocument.text`, so that
    `doc.text[s.start:s.end] == s.text` always holds.
    """

    text: str
    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    kind: str = "text"  # one of SECTION_KINDS: how chunking may cut and join it


SECTION_KINDS = frozenset({"text", "heading", "list", "table", "code"})


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A document turned into text plus structure, ready to chunk."""

    text: str
    sections: tuple[Section, ...]
    media_type: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A chunk before it has an id: text, span and context for citations."""

    ordinal: int
    text: str
    start: int
    end: int
    heading_path: tuple[str, ...]
    page: int | None
    tokens: int
    # Text the chunk needs to be understood but that is not inside its span: the header
    # rows of a table whose body was split across chunks.
    context: str = ""

    @property
    def embed_text(self) -> str:
        """What the embedder sees: the heading path and any context give a chunk its setting."""
        head = " > ".join(self.heading_path)
        parts = [p for p in (head, self.context, self.text) if p]
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model call consumed, with its estimated cost per direction (input and
    output tokens are priced differently)."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_cost_cny: float = 0.0
    completion_cost_cny: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_cny(self) -> float:
        return self.prompt_cost_cny + self.completion_cost_cny


@dataclass(frozen=True, slots=True)
class FailedSource:
    source: str
    error: str
    provider: bool = False  # the model provider failed, not the file


@dataclass(slots=True)
class IngestReport:
    """What one ingest run did. Mutable while the run builds it; serialised by `as_dict`."""

    collection: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    tokens: int = 0
    cost_cny: float = 0.0
    seconds: float = 0.0
    failed: list[FailedSource] = field(default_factory=list)
    # Files met while walking a directory that were not read, with the reason: no parser
    # reads them, a link leaves the directory, or not a regular file (FIFO, device).
    skipped: list[FailedSource] = field(default_factory=list)
    error: str | None = None  # why the run stopped early (a full disk), if it did

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
            "tokens": self.tokens,
            "cost_cny": round(self.cost_cny, 6),
            "seconds": round(self.seconds, 3),
            "failed": [{"source": f.source, "error": f.error} for f in self.failed],
            "skipped": [{"source": f.source, "error": f.error} for f in self.skipped],
            **({"error": self.error} if self.error is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class Collection:
    """A named set of documents sharing one embedder (fixed at creation) and chunking setup."""

    id: int
    name: str
    embedder_provider: str
    embedder_model: str
    dimensions: int
    chunk_tokens: int
    overlap_sentences: int
    revision: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "embedder": self.embedder_provider,
            "model": self.embedder_model,
            "dimensions": self.dimensions,
            "chunk_tokens": self.chunk_tokens,
            "overlap_sentences": self.overlap_sentences,
        }

    @property
    def cache_model_key(self) -> str:
        """Embedding-cache key part: vectors from different providers never mix."""
        return f"{self.embedder_provider}:{self.embedder_model}"


@dataclass(frozen=True, slots=True)
class Document:
    id: int
    collection_id: int
    source: str
    title: str | None
    media_type: str
    content_sha256: str
    metadata: dict[str, Any]
    size_bytes: int
    chunk_count: int
    created_at: str
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        """What the CLI (`documents --json`) and HTTP (`GET .../documents`) show of it."""
        return {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "chunks": self.chunk_count,
            "media_type": self.media_type,
            "metadata": self.metadata,
            "size_bytes": self.size_bytes,
            "sha256": self.content_sha256,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """What a new collection is made of: its name, embedder (fixed for life) and chunking."""

    name: str
    embedder_provider: str
    embedder_model: str
    dimensions: int
    chunk_tokens: int
    overlap_sentences: int


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document about to be written, before the catalog gives it an id."""

    source: str
    title: str | None
    media_type: str
    content_sha256: str
    metadata: dict[str, Any]
    size_bytes: int


class WrittenDocument(NamedTuple):
    """What writing one document did: its id, its new chunk ids in order, the ids it replaced.

    A named tuple rather than a dataclass so `doc_id, ids, removed = ...` keeps working.
    """

    document_id: int
    chunk_ids: list[int]
    removed_ids: list[int]


@dataclass(frozen=True, slots=True)
class NewChunk:
    """A chunk ready to be written: its draft plus the cache key of its vector."""

    draft: ChunkDraft
    embed_sha256: str
    lexical_text: str


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back for search results and citations."""

    id: int
    document_id: int
    ordinal: int
    text: str
    start: int
    end: int
    heading_path: tuple[str, ...]
    page: int | None
    source: str
    title: str | None
    metadata: dict[str, Any]

    def reference(self) -> dict[str, Any]:
        """Where the chunk comes from: what search results and citations show."""
        return {
            "chunk_id": self.id,
            "document_id": self.document_id,
            "source": self.source,
            "title": self.title,
            "heading_path": list(self.heading_path),
            "page": self.page,
            "span": {"start": self.start, "end": self.end},
        }


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """An API key about to be stored: only the sha256 of its secret is kept."""

    name: str
    prefix: str
    key_sha256: str
    scopes: tuple[str, ...]
    collections: tuple[str, ...] | None  # None: every collection
    allowed_origins: tuple[str, ...] = ()
    rate_per_minute: float | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    collections: tuple[str, ...] | None
    allowed_origins: tuple[str, ...]
    rate_per_minute: float | None
    created_at: str
    revoked_at: str | None

    @property
    def is_widget(self) -> bool:
        return bool(self.allowed_origins)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "kind": "widget" if self.is_widget else "api",
            "scopes": list(self.scopes),
            "collections": None if self.collections is None else list(self.collections),
            "allowed_origins": list(self.allowed_origins),
            "rate_per_minute": self.rate_per_minute,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }
