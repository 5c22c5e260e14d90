"""A document as the console, `GET .../documents/{id}` and `ragsearch show` present it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexer.catalog import Catalog
from indexer.errors import NotFound
from indexer.ingest import source_for_path
from indexer.records import Document, StoredChunk

__all__ = ["chunk_info", "document_view", "find_document"]


def chunk_info(c: StoredChunk) -> dict[str, Any]:
    """A chunk with where it sits: ordinal, heading path, page and character span."""
    return {
        "chunk_id": c.id,
        "ordinal": c.ordinal,
        "text": c.text,
        "heading_path": list(c.heading_path),
        "page": c.page,
        "span": {"start": c.start, "end": c.end},
    }


def find_document(catalog: Catalog, collection_id: int, document: str) -> Document:
    """The document by id, by source, or by a file path as `ingest` stored it; NotFound."""
    if document.isdigit():
        try:
            return catalog.get_document(collection_id, int(document))
        except NotFound:
            pass
    for source in (document, source_for_path(Path(document))):
        found = catalog.find_document_by_source(collection_id, source)
        if found is not None:
            return found
    raise NotFound(f"no document {document!r} in this collection (give its id or source)")


def document_view(catalog: Catalog, collection: str, document: str) -> dict[str, Any]:
    """One document of `collection`: `document` (facts, metadata and text, as
    `GET .../documents/{id}`) and `chunks` (as `GET .../documents/{id}/chunks` lists them)."""
    target = catalog.get_collection(collection)
    doc = find_document(catalog, target.id, document)
    ids = catalog.document_chunk_ids([doc.id])
    found = catalog.chunks_by_ids(ids)
    return {
        "document": {**doc.as_dict(), "text": catalog.document_text(doc.id)},
        "chunks": [chunk_info(found[i]) for i in ids if i in found],
    }
