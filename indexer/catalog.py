"""The catalog: collections, documents, chunks, the embedding cache and the lexical index.

It is the source of truth. Vector files are derived from it and reconciled against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)

from indexer.errors import Conflict, InputError, NotFound, RagsearchError
from indexer.lexical_store import LexicalIndex, lexical_index_for, pg_metadata
from indexer.providers.base import Vectors
from indexer.records import Collection, Document, NewChunk, StoredChunk
from indexer.schema import chunks, collections, documents, embedding_cache, metadata

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_SQL_VARS = 500  # rows per IN (...) batch: well under SQLite's variable limit
_DIALECTS = ("sqlite", "postgresql")
# Any constant shared by every replica: serialises schema creation when several start at once.
_SCHEMA_LOCK_KEY = 0x7261_6773  # "rags"


class CatalogError(RagsearchError):
    """The catalog database failed (unreachable, locked, corrupt)."""

    status = 503
    code = "catalog_unavailable"


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    name: str
    embedder_provider: str
    embedder_model: str
    dimensions: int
    chunk_tokens: int
    overlap_sentences: int


@dataclass(frozen=True, slots=True)
class NewDocument:
    source: str
    title: str | None
    media_type: str
    content_sha256: str
    metadata: dict[str, Any]
    size_bytes: int


def validate_collection_name(name: str) -> str:
    if not name or len(name) > 128 or not set(name) <= _NAME_CHARS or name[0] in "-.":
        raise InputError(
            f"invalid collection name {name!r}: use 1-128 letters, digits, '_', '-' or '.'"
        )
    return name


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _batches(items: Sequence[Any], size: int = _SQL_VARS) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across process crashes
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Catalog:
    """Typed operations over the catalog database. Thread-safe through the engine's pool.

    SQLite (one file, FTS5 lexical index) or PostgreSQL (shared by replicas, tsvector lexical
    index). Ids come from AUTOINCREMENT on SQLite and sequences on PostgreSQL: neither reuses
    an id, which vector ids rely on.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        try:
            dialect = make_url(url).get_backend_name()
        except ArgumentError as exc:
            raise CatalogError(f"invalid catalog URL {self._safe_url()!r}: {exc}") from exc
        if dialect not in _DIALECTS:
            raise CatalogError(
                f"unsupported catalog database {dialect!r}: use sqlite:/// or postgresql+psycopg://"
            )
        try:
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=not self.is_sqlite)
        except ImportError as exc:  # the driver lives in an optional extra
            raise CatalogError(
                f"no driver for {dialect} ({exc.name}): pip install 'ragsearch[scale]'"
            ) from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._create_schema()
        except SQLAlchemyError as exc:
            raise CatalogError(f"cannot open the catalog at {self._safe_url()}: {exc}") from exc
        self.lexical: LexicalIndex = lexical_index_for(dialect)

    def _create_schema(self) -> None:
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                # CREATE TABLE IF NOT EXISTS still races between replicas starting together.
                conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            metadata.create_all(conn)
            if not self.is_sqlite:
                pg_metadata.create_all(conn)

    def _safe_url(self) -> str:
        return self.url.split("@")[-1] if "@" in self.url else self.url

    def close(self) -> None:
        self.engine.dispose()

    # --- collections ---------------------------------------------------------------------

    def create_collection(self, spec: CollectionSpec) -> Collection:
        validate_collection_name(spec.name)
        now = _now()
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    insert(collections).values(
                        name=spec.name,
                        embedder_provider=spec.embedder_provider,
                        embedder_model=spec.embedder_model,
                        dimensions=spec.dimensions,
                        chunk_tokens=spec.chunk_tokens,
                        overlap_sentences=spec.overlap_sentences,
                        revision=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                pk = result.inserted_primary_key
                assert pk is not None
                self.lexical.create(conn, int(pk[0]))
        except IntegrityError as exc:
            raise Conflict(f"collection {spec.name!r} already exists") from exc
        return self.get_collection(spec.name)

    def find_collection(self, name: str) -> Collection | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(collections).where(collections.c.name == name)).first()
        return None if row is None else _collection(row._mapping)

    def get_collection(self, name: str) -> Collection:
        found = self.find_collection(name)
        if found is None:
            raise NotFound(f"collection {name!r} does not exist")
        return found

    def list_collections(self) -> list[Collection]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(collections).order_by(collections.c.name)).all()
        return [_collection(r._mapping) for r in rows]

    def drop_collection(self, name: str) -> Collection:
        found = self.get_collection(name)
        with self.engine.begin() as conn:
            conn.execute(delete(chunks).where(chunks.c.collection_id == found.id))
            conn.execute(delete(documents).where(documents.c.collection_id == found.id))
            conn.execute(delete(collections).where(collections.c.id == found.id))
            self.lexical.drop(conn, found.id)
        return found

    def revision(self, collection_id: int) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(collections.c.revision).where(collections.c.id == collection_id)
            ).scalar_one_or_none()
        if value is None:
            raise NotFound(f"collection #{collection_id} does not exist")
        return int(value)

    @staticmethod
    def _bump(conn: Connection, collection_id: int) -> None:
        conn.execute(
            update(collections)
            .where(collections.c.id == collection_id)
            .values(revision=collections.c.revision + 1, updated_at=_now())
        )

    # --- documents -----------------------------------------------------------------------

    def document_hashes(self, collection_id: int) -> dict[str, tuple[int, str]]:
        """source -> (document id, content sha256) for every document of a collection."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(documents.c.source, documents.c.id, documents.c.content_sha256).where(
                    documents.c.collection_id == collection_id
                )
            ).all()
        return {r[0]: (int(r[1]), str(r[2])) for r in rows}

    def list_documents(
        self, collection_id: int, *, limit: int | None = None, offset: int = 0
    ) -> list[Document]:
        stmt = (
            select(documents)
            .where(documents.c.collection_id == collection_id)
            .order_by(documents.c.source)
            .offset(offset)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [_document(r._mapping) for r in rows]

    def get_document(self, collection_id: int, document_id: int) -> Document:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(documents).where(
                    documents.c.collection_id == collection_id, documents.c.id == document_id
                )
            ).first()
        if row is None:
            raise NotFound(f"document {document_id} does not exist in this collection")
        return _document(row._mapping)

    def find_document_by_source(self, collection_id: int, source: str) -> Document | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(documents).where(
                    documents.c.collection_id == collection_id, documents.c.source == source
                )
            ).first()
        return None if row is None else _document(row._mapping)

    def document_text(self, document_id: int) -> str:
        """The document's text rebuilt from its chunks (overlaps removed by span)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chunks.c.text, chunks.c.char_start, chunks.c.char_end)
                .where(chunks.c.document_id == document_id)
                .order_by(chunks.c.char_start)
            ).all()
        parts: list[str] = []
        covered: int | None = None
        for chunk_text, start, end in rows:
            if covered is None:
                parts.append(chunk_text)
            elif end <= covered:
                continue
            elif start <= covered:  # overlapping or abutting: the same run of text continues
                parts.append(chunk_text[covered - start :])
            else:  # the gap held whitespace or content the parser left out
                parts.append("\n\n" + chunk_text)
            covered = end
        return "".join(parts)

    def write_document(
        self,
        collection: Collection,
        doc: NewDocument,
        new_chunks: Sequence[NewChunk],
    ) -> tuple[int, list[int], list[int]]:
        """Insert or replace one document and its chunks in one transaction.

        Returns (document id, new chunk ids in order, chunk ids that were removed).
        Every chunk's vector must already be in the embedding cache.
        """
        return self.write_documents(collection, [(doc, new_chunks)])[0]

    def write_documents(
        self,
        collection: Collection,
        batch: Sequence[tuple[NewDocument, Sequence[NewChunk]]],
    ) -> list[tuple[int, list[int], list[int]]]:
        """Insert or replace several documents with their chunks in one transaction.

        All or nothing: each document's old chunks are replaced by its new ones, never mixed.
        One statement per table for the whole batch, since per-document statements and
        commits cost ~20x more than the rows themselves. Returns, per document in order,
        (document id, new chunk ids, removed chunk ids).
        """
        sources = [doc.source for doc, _ in batch]
        if len(set(sources)) != len(sources):  # the same source twice: last write wins
            return [self.write_documents(collection, [item])[0] for item in batch]
        try:
            return self._write_documents(collection, batch, sources)
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise CatalogError(f"the catalog refused the write: {cause}") from exc

    def _write_documents(
        self,
        collection: Collection,
        batch: Sequence[tuple[NewDocument, Sequence[NewChunk]]],
        sources: list[str],
    ) -> list[tuple[int, list[int], list[int]]]:
        now = _now()
        with self.engine.begin() as conn:
            existing = self._document_ids(conn, collection.id, sources)
            replaced = [existing[s] for s in sources if s in existing]
            removed = self._delete_document_chunks(conn, collection.id, replaced)
            if replaced:
                conn.execute(
                    update(documents)
                    .where(documents.c.id == bindparam("b_id"))
                    .values({k: bindparam(f"b_{k}") for k in _DOCUMENT_VALUES}),
                    [
                        {"b_id": existing[doc.source], **_document_values(doc, chunks_, now, "b_")}
                        for doc, chunks_ in batch
                        if doc.source in existing
                    ],
                )
            fresh = [(doc, chunks_) for doc, chunks_ in batch if doc.source not in existing]
            if fresh:
                result = conn.execute(
                    insert(documents).returning(documents.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "collection_id": collection.id,
                            "source": doc.source,
                            "created_at": now,
                            **_document_values(doc, chunks_, now),
                        }
                        for doc, chunks_ in fresh
                    ],
                )
                new_ids = [int(r[0]) for r in result]
                existing.update(zip([d.source for d, _ in fresh], new_ids, strict=True))
            document_ids = [existing[s] for s in sources]
            chunk_ids = self._insert_chunks(
                conn,
                collection.id,
                [
                    (doc_id, chunks_)
                    for doc_id, (_, chunks_) in zip(document_ids, batch, strict=True)
                ],
            )
            self._bump(conn, collection.id)
        return [
            (document_id, ids, removed.get(document_id, []))
            for document_id, ids in zip(document_ids, chunk_ids, strict=True)
        ]

    @staticmethod
    def _document_ids(
        conn: Connection, collection_id: int, sources: Sequence[str]
    ) -> dict[str, int]:
        found: dict[str, int] = {}
        for part in _batches(list(sources)):
            rows = conn.execute(
                select(documents.c.source, documents.c.id).where(
                    documents.c.collection_id == collection_id, documents.c.source.in_(part)
                )
            )
            found.update((str(source), int(doc_id)) for source, doc_id in rows)
        return found

    def _delete_document_chunks(
        self, conn: Connection, collection_id: int, document_ids: Sequence[int]
    ) -> dict[int, list[int]]:
        """Delete the chunks (and lexical rows) of documents; returns removed ids per document."""
        removed: dict[int, list[int]] = {}
        for part in _batches(list(document_ids)):
            rows = conn.execute(
                select(chunks.c.id, chunks.c.document_id).where(chunks.c.document_id.in_(part))
            )
            for chunk_id, document_id in rows:
                removed.setdefault(int(document_id), []).append(int(chunk_id))
        all_ids = [i for ids in removed.values() for i in ids]
        self.lexical.remove(conn, collection_id, all_ids)
        for part in _batches(list(document_ids)):
            conn.execute(delete(chunks).where(chunks.c.document_id.in_(part)))
        return removed

    def _insert_chunks(
        self,
        conn: Connection,
        collection_id: int,
        per_document: Sequence[tuple[int, Sequence[NewChunk]]],
    ) -> list[list[int]]:
        """Insert chunks (and lexical rows) of several documents; returns ids per document."""
        rows = [
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
        if not rows:
            return [[] for _ in per_document]
        result = conn.execute(
            insert(chunks).returning(chunks.c.id, sort_by_parameter_order=True), rows
        )
        ids = [int(r[0]) for r in result]
        flat = [c for _, new_chunks in per_document for c in new_chunks]
        self.lexical.add(
            conn, collection_id, [(i, c.lexical_text) for i, c in zip(ids, flat, strict=True)]
        )
        out: list[list[int]] = []
        at = 0
        for _, new_chunks in per_document:
            out.append(ids[at : at + len(new_chunks)])
            at += len(new_chunks)
        return out

    def delete_document(self, collection_id: int, document_id: int) -> list[int]:
        """Delete a document, its chunks and their lexical entries; returns removed chunk ids."""
        with self.engine.begin() as conn:
            found = conn.execute(
                select(documents.c.id).where(
                    documents.c.collection_id == collection_id, documents.c.id == document_id
                )
            ).scalar_one_or_none()
            if found is None:
                raise NotFound(f"document {document_id} does not exist in this collection")
            removed = self._delete_document_chunks(conn, collection_id, [document_id]).get(
                document_id, []
            )
            conn.execute(delete(documents).where(documents.c.id == document_id))
            self._bump(conn, collection_id)
        return removed

    # --- chunks --------------------------------------------------------------------------

    def chunk_ids(self, collection_id: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chunks.c.id).where(chunks.c.collection_id == collection_id)
            ).all()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def count_chunks(self, collection_id: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(chunks)
                    .where(chunks.c.collection_id == collection_id)
                ).scalar_one()
            )

    def count_documents(self, collection_id: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(documents)
                    .where(documents.c.collection_id == collection_id)
                ).scalar_one()
            )

    def chunk_vectors(
        self, collection: Collection, chunk_ids: Sequence[int]
    ) -> tuple[list[int], Vectors, list[int]]:
        """Cached vectors for chunks: (ids found, their vectors, ids with no cached vector)."""
        found_ids: list[int] = []
        rows_out: list[bytes] = []
        with self.engine.connect() as conn:
            for batch in _batches(list(chunk_ids)):
                rows = conn.execute(
                    select(chunks.c.id, embedding_cache.c.vector)
                    .select_from(chunks)
                    .outerjoin(
                        embedding_cache,
                        (embedding_cache.c.text_sha256 == chunks.c.embed_sha256)
                        & (embedding_cache.c.model == collection.cache_model_key)
                        & (embedding_cache.c.dimensions == collection.dimensions),
                    )
                    .where(chunks.c.id.in_(batch))
                ).all()
                for chunk_id, blob in rows:
                    if blob is not None:
                        found_ids.append(int(chunk_id))
                        rows_out.append(blob)
        missing = sorted(set(chunk_ids) - set(found_ids))
        vectors = _decode_vectors(rows_out, collection.dimensions)
        return found_ids, vectors, missing

    def chunks_by_ids(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks with their document's source, title and metadata, keyed by id."""
        out: dict[int, StoredChunk] = {}
        with self.engine.connect() as conn:
            for batch in _batches(list(chunk_ids)):
                rows = conn.execute(
                    select(
                        chunks,
                        documents.c.source,
                        documents.c.title,
                        documents.c.metadata,
                    )
                    .join(documents, documents.c.id == chunks.c.document_id)
                    .where(chunks.c.id.in_(batch))
                ).all()
                for r in rows:
                    m = r._mapping
                    out[int(m["id"])] = StoredChunk(
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
        return out

    def document_chunk_ids(self, document_ids: Sequence[int]) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chunks.c.id)
                .where(chunks.c.document_id.in_(list(document_ids)))
                .order_by(chunks.c.document_id, chunks.c.ordinal)
            ).all()
        return [int(r[0]) for r in rows]

    def filtered_chunk_ids(
        self, collection_id: int, condition: ColumnElement[bool]
    ) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Ids of chunks whose document satisfies `condition` (see `indexer.filters`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chunks.c.id)
                .join(documents, documents.c.id == chunks.c.document_id)
                .where(chunks.c.collection_id == collection_id, condition)
            ).all()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def lexical_search(
        self,
        collection_id: int,
        query: str,
        limit: int,
        condition: ColumnElement[bool] | None = None,
    ) -> list[tuple[int, float]]:
        try:
            with self.engine.connect() as conn:
                return self.lexical.search(conn, collection_id, query, limit, condition)
        except (OperationalError, DataError) as exc:
            raise InputError(f"the query could not be searched: {exc.orig}") from exc

    # --- embedding cache -----------------------------------------------------------------

    def cached_vectors(
        self, model_key: str, dimensions: int, shas: Sequence[str]
    ) -> dict[str, Vectors]:
        out: dict[str, Vectors] = {}
        unique = list(dict.fromkeys(shas))
        with self.engine.connect() as conn:
            for batch in _batches(unique):
                rows = conn.execute(
                    select(embedding_cache.c.text_sha256, embedding_cache.c.vector).where(
                        embedding_cache.c.model == model_key,
                        embedding_cache.c.dimensions == dimensions,
                        embedding_cache.c.text_sha256.in_(batch),
                    )
                ).all()
                for sha, blob in rows:
                    out[sha] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_vectors(self, model_key: str, dimensions: int, items: dict[str, Vectors]) -> None:
        """Store computed vectors in the cache at once, so a later failure wastes none."""
        if not items:
            return
        with self.engine.begin() as conn:
            keys = list(items)
            present: set[str] = set()
            for batch in _batches(keys):
                present.update(
                    r[0]
                    for r in conn.execute(
                        select(embedding_cache.c.text_sha256).where(
                            tuple_(embedding_cache.c.model, embedding_cache.c.dimensions)
                            == (model_key, dimensions),
                            embedding_cache.c.text_sha256.in_(batch),
                        )
                    )
                )
            rows = [
                {
                    "model": model_key,
                    "dimensions": dimensions,
                    "text_sha256": sha,
                    "vector": np.asarray(vec, dtype=np.float32).tobytes(),
                }
                for sha, vec in items.items()
                if sha not in present
            ]
            if rows:
                conn.execute(insert(embedding_cache), rows)

    def lexical_count(self, collection_id: int) -> int:
        with self.engine.connect() as conn:
            return self.lexical.count(conn, collection_id)


_DOCUMENT_VALUES = (
    "title",
    "media_type",
    "content_sha256",
    "metadata",
    "size_bytes",
    "chunk_count",
    "updated_at",
)


def _document_values(
    doc: NewDocument, new_chunks: Sequence[NewChunk], now: datetime, prefix: str = ""
) -> dict[str, Any]:
    values = {
        "title": doc.title,
        "media_type": doc.media_type,
        "content_sha256": doc.content_sha256,
        "metadata": doc.metadata,
        "size_bytes": doc.size_bytes,
        "chunk_count": len(new_chunks),
        "updated_at": now,
    }
    return {f"{prefix}{k}": v for k, v in values.items()}


def _decode_vectors(blobs: Sequence[bytes], dimensions: int) -> Vectors:
    if not blobs:
        return np.zeros((0, dimensions), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimensions)


def _collection(m: Any) -> Collection:
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


def _document(m: Any) -> Document:
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
