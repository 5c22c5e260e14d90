"""Creating collections: the embedder and chunk budget are fixed at creation."""

from __future__ import annotations

from indexer.catalog import validate_collection_name
from indexer.errors import Conflict, InputError
from indexer.index import Index
from indexer.providers.base import Embedder
from indexer.providers.factory import EmbedderCache, EmbedderSpec, default_embedder_spec
from indexer.records import (
    MAX_CHUNK_TOKENS,
    MAX_OVERLAP_SENTENCES,
    MIN_CHUNK_TOKENS,
    Collection,
    CollectionSpec,
)


def create_collection(
    index: Index,
    embedders: EmbedderCache,
    name: str,
    spec: EmbedderSpec | None = None,
    *,
    chunk_tokens: int | None = None,
    overlap_sentences: int | None = None,
) -> Collection:
    """Create `name` with `spec` (default: Zhipu with a key, else MiniLM).

    The chunk budget is capped by the embedder's real input limit, so no chunk is truncated.
    """
    validate_collection_name(name)
    _check_chunking(chunk_tokens, overlap_sentences)
    settings = index.settings
    spec = spec or default_embedder_spec(settings)
    embedder = embedders.get(spec)
    _check_dimensions(spec, embedder)
    budget = min(chunk_tokens or settings.chunk_tokens, embedder.max_input_tokens)
    return index.catalog.create_collection(
        CollectionSpec(
            name=name,
            embedder_provider=embedder.provider,
            embedder_model=embedder.model,
            dimensions=embedder.dimensions,
            chunk_tokens=budget,
            overlap_sentences=(
                settings.chunk_overlap_sentences if overlap_sentences is None else overlap_sentences
            ),
        )
    )


def _check_dimensions(spec: EmbedderSpec, embedder: Embedder) -> None:
    """Refuse a dimension the embedder does not produce (a local model has only its own)."""
    if spec.dimensions is not None and spec.dimensions != embedder.dimensions:
        raise InputError(
            f"embedder {embedder.provider} {embedder.model} produces "
            f"{embedder.dimensions}-dimensional vectors, not {spec.dimensions}; "
            f"leave dimensions out or ask for {embedder.dimensions}"
        )


def _check_chunking(chunk_tokens: int | None, overlap_sentences: int | None) -> None:
    """Refuse a chunking no ingest could use, before the collection is stored for good."""
    if chunk_tokens is not None and not MIN_CHUNK_TOKENS <= chunk_tokens <= MAX_CHUNK_TOKENS:
        raise InputError(
            f"chunk tokens must be between {MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}, "
            f"not {chunk_tokens}"
        )
    if overlap_sentences is not None and not 0 <= overlap_sentences <= MAX_OVERLAP_SENTENCES:
        raise InputError(
            f"overlap sentences must be between 0 and {MAX_OVERLAP_SENTENCES}, "
            f"not {overlap_sentences}"
        )


def ensure_collection(index: Index, embedders: EmbedderCache, name: str) -> Collection:
    """The named collection, created with the default embedder when missing."""
    found = index.catalog.find_collection(name)
    if found is not None:
        return found
    try:
        return create_collection(index, embedders, name)
    except Conflict:  # created concurrently by another process
        return index.catalog.get_collection(name)


def drop_if_empty(index: Index, collection: Collection) -> bool:
    """Drop `collection` (and its vector file) if it holds no document; True if dropped.

    An ingest that created a collection and then failed on every file calls this, so a
    typo'd path or a folder of unsupported files leaves no empty collection behind.
    """
    if index.catalog.count_documents(collection.id):
        return False
    index.catalog.drop_collection(collection.name)
    index.forget(collection)
    return True


def check_embedder(collection: Collection, embedder: Embedder) -> None:
    """Refuse to mix vectors from a different model or dimension into a collection."""
    if (embedder.provider, embedder.model, embedder.dimensions) != (
        collection.embedder_provider,
        collection.embedder_model,
        collection.dimensions,
    ):
        raise Conflict(
            f"collection {collection.name!r} was created with {collection.embedder_provider} "
            f"{collection.embedder_model} ({collection.dimensions} dimensions); it cannot take "
            f"vectors from {embedder.provider} {embedder.model} ({embedder.dimensions} dimensions)"
        )
