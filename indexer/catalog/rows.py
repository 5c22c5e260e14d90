"""Rows in and out of the catalog: records to and from table rows, and batched `IN (...)`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from indexer.providers.base import Vectors
from indexer.records import ApiKey, Collection, Document, NewChunk, NewDocument, StoredChunk

SQL_VARS = 500  # rows per IN (...) batch: well under SQLite's variable limit

DOCUMENT_VALUES = (
    "title",
    "media_type",
    "content_sha256",
    "metadata",
    "size_bytes",
    "chunk_count",
    "updated_at",
)


def now() -> datetime:
    return datetime.now(UTC)


def batches(items: Sequence[Any], size: int = SQL_VARS) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def api_key_from(m: Any) -> ApiKey:
    collections = m["collections"]
    return ApiKey(
        id=int(m["id"]),
        name=m["name"],
        prefix=m["prefix"],
        scopes=tuple(m["scopes"] or ()),
        collections=None if collections is None else tuple(collections),
        allowed_origins=tuple(m["allowed_origins"] or ()),
        rate_per_minute=None if m["rate_per_minute"] is None else float(m["rate_per_minute"]),
        created_at=_iso(m["created_at"]),
        revoked_at=None if m["revoked_at"] is None else _iso(m["revoked_at"]),
    )


def document_values(
    doc: NewDocument, new_chunks: Sequence[NewChunk], at: datetime, prefix: str = ""
) -> dict[str, Any]:
    """The `documents` columns a write sets, keyed with `prefix` for bound parameters."""
    values = {
        "title": doc.title,
        "media_type": doc.media_type,
        "content_sha256": doc.content_sha256,
        "metadata": doc.metadata,
        "size_bytes": doc.size_bytes,
        "chunk_count": len(new_chunks),
        "updated_at": at,
    }
    return {f"{prefix}{k}": v for k, v in values.items()}


def chunk_rows(
    collection_id: int, per_document: Sequence[tuple[int, Sequence[NewChunk]]]
) -> list[dict[str, Any]]:
    """The `chunks` rows for several documents' new chunks, in order."""
    return [
        {
            "document_id": document_id,
            "collection_id": collection_id,
            "ordinal": c.draft.ordinal,
            "text": c.draft.text,
            "char_start": c.draft.start,
            "char_end": c.draft.end,
            "heading_path": list(c.draft.heading_path),
            "page": c.draft.page,
            "tokens": c.draft.tokens,
            "embed_sha256": c.embed_sha256,
        }
        for document_id, new_chunks in per_document
        for c in new_chunks
    ]


def decode_vectors(blobs: Sequence[bytes], dimensions: int) -> Vectors:
    if not blobs:
        return np.zeros((0, dimensions), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimensions)


def collection_from(m: Any) -> Collection:
    return Collection(
        id=int(m["id"]),
        name=m["name"],
        embedder_provider=m["embedder_provider"],
        embedder_model=m["embedder_model"],
        dimensions=int(m["dimensions"]),
        chunk_tokens=int(m["chunk_tokens"]),
        overlap_sentences=int(m["overlap_sentences"]),
        revision=int(m["revision"]),
    )


def document_from(m: Any) -> Document:
    meta = m["metadata"]
    if isinstance(meta, str):
        meta = json.loads(meta)
    return Document(
        id=int(m["id"]),
        collection_id=int(m["collection_id"]),
        source=m["source"],
        title=m["title"],
        media_type=m["media_type"],
        content_sha256=m["content_sha256"],
        metadata=dict(meta or {}),
        size_bytes=int(m["size_bytes"]),
        chunk_count=int(m["chunk_count"]),
        created_at=_iso(m["created_at"]),
        updated_at=_iso(m["updated_at"]),
    )


def stored_chunk_from(m: Any) -> StoredChunk:
    """A chunk row joined with its document's source, title and metadata."""
    return StoredChunk(
        id=int(m["id"]),
        document_id=int(m["document_id"]),
        ordinal=int(m["ordinal"]),
        text=m["text"],
        start=int(m["char_start"]),
        end=int(m["char_end"]),
        heading_path=tuple(m["heading_path"] or ()),
        page=m["page"],
        source=m["source"],
        title=m["title"],
        metadata=dict(m["metadata"] or {}),
    )
