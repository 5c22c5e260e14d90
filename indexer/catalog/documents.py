"""Documents and their chunks in the catalog: replace in one transaction, read, delete, search.

A document's write replaces its chunks and their lexical rows together, so readers never see a
mix of old and new chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError

from indexer.errors import CatalogError, InputError, NotFound
from indexer.records import (
    Collection,
    Document,
    NewChunk,
    NewDocument,
    StoredChunk,
    WrittenDocument,
)
from indexer.schema import chunks, documents

from .collections import bump_revision
from .connections import Tables
from .rows import (
    DOCUMENT_VALUES,
    batches,
    chunk_rows,
    document_from,
    document_values,
    now,
    stored_chunk_from,
)


class DocumentTables(Tables):
    """The catalog's document and chunk operations (part of `Catalog`)."""

    def document_hashes(self, collection_id: int) -> dict[str, tuple[int, str]]:
        """source -> (document id, content sha256) for every document of a collection."""
        with self.connect() as conn:
            rows = conn.execute(
                select(documents.c.source, documents.c.id, documents.c.content_sha256).where(
                    documents.c.collection_id == collection_id
                )
            ).all()
        return {r[0]: (int(r[1]), str(r[2])) for r in rows}

    def list_documents(
        self,
        collection_id: int,
        *,
        limit: int | None = None,
        offset: int = 0,
        containing: str = "",
    ) -> list[Document]:
        """Documents by source; with `containing`, only those whose source or title contains
        it (case-insensitive, `%` and `_` taken literally)."""
        stmt = (
            select(documents)
            .where(documents.c.collection_id == collection_id, _containing(containing))
            .order_by(documents.c.source)
            .offset(offset)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.connect() as conn:
            rows = conn.execute(stmt).all()
        return [document_from(r._mapping) for r in rows]

    def get_document(self, collection_id: int, document_id: int) -> Document:
        with self.connect() as conn:
            row = conn.execute(
                select(documents).where(
                    documents.c.collection_id == collection_id, documents.c.id == document_id
                )
            ).first()
        if row is None:
            raise NotFound(f"document {document_id} does not exist in this collection")
        return document_from(row._mapping)

    def find_document_by_source(self, collection_id: int, source: str) -> Document | None:
        with self.connect() as conn:
            row = conn.execute(
                select(documents).where(
                    documents.c.collection_id == collection_id, documents.c.source == source
                )
            ).first()
        return None if row is None else document_from(row._mapping)

    def document_text(self, document_id: int) -> str:
        """The document's text rebuilt from its chunks (overlaps removed by span)."""
        with self.connect() as conn:
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
    ) -> WrittenDocument:
        """Insert or replace one document and its chunks in one transaction.

        Every chunk's vector must already be in the embedding cache.
        """
        return self.write_documents(collection, [(doc, new_chunks)])[0]

    def write_documents(
        self,
        collection: Collection,
        batch: Sequence[tuple[NewDocument, Sequence[NewChunk]]],
    ) -> list[WrittenDocument]:
        """Insert or replace several documents with their chunks in one transaction.

        All or nothing: each document's old chunks are replaced by its new ones, never mixed.
        One statement per table for the whole batch, since per-document statements and
        commits cost ~20x more than the rows themselves. Returns one record per document, in
        order.
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
    ) -> list[WrittenDocument]:
        with self.transaction() as conn:
            existing = self._document_ids(conn, collection.id, sources)
            replaced = [existing[s] for s in sources if s in existing]
            removed = self._delete_document_chunks(conn, collection.id, replaced)
            document_ids = self._upsert_documents(conn, collection, batch, existing)
            chunk_ids = self._insert_chunks(
                conn,
                collection.id,
                [
                    (doc_id, chunks_)
                    for doc_id, (_, chunks_) in zip(document_ids, batch, strict=True)
                ],
            )
            bump_revision(conn, collection.id)
        return [
            WrittenDocument(document_id, ids, removed.get(document_id, []))
            for document_id, ids in zip(document_ids, chunk_ids, strict=True)
        ]

    @staticmethod
    def _upsert_documents(
        conn: Connection,
        collection: Collection,
        batch: Sequence[tuple[NewDocument, Sequence[NewChunk]]],
        existing: dict[str, int],
    ) -> list[int]:
        """Update the documents `existing` knows (source -> id), insert the others; their ids."""
        at = now()
        if any(doc.source in existing for doc, _ in batch):
            conn.execute(
                update(documents)
                .where(documents.c.id == bindparam("b_id"))
                .values({k: bindparam(f"b_{k}") for k in DOCUMENT_VALUES}),
                [
                    {"b_id": existing[doc.source], **document_values(doc, chunks_, at, "b_")}
                    for doc, chunks_ in batch
                    if doc.source in existing
                ],
            )
        fresh = [(doc, chunks_) for doc, chunks_ in batch if doc.source not in existing]
        ids = dict(existing)
        if fresh:
            result = conn.execute(
                insert(documents).returning(documents.c.id, sort_by_parameter_order=True),
                [
                    {
                        "collection_id": collection.id,
                        "source": doc.source,
                        "created_at": at,
                        **document_values(doc, chunks_, at),
                    }
                    for doc, chunks_ in fresh
                ],
            )
            new_ids = [int(r[0]) for r in result]
            ids.update(zip([d.source for d, _ in fresh], new_ids, strict=True))
        return [ids[doc.source] for doc, _ in batch]

    @staticmethod
    def _document_ids(
        conn: Connection, collection_id: int, sources: Sequence[str]
    ) -> dict[str, int]:
        found: dict[str, int] = {}
        for part in batches(list(sources)):
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
        for part in batches(list(document_ids)):
            rows = conn.execute(
                select(chunks.c.id, chunks.c.document_id).where(chunks.c.document_id.in_(part))
            )
            for chunk_id, document_id in rows:
                removed.setdefault(int(document_id), []).append(int(chunk_id))
        all_ids = [i for ids in removed.values() for i in ids]
        self.lexical.remove(conn, collection_id, all_ids)
        for part in batches(list(document_ids)):
            conn.execute(delete(chunks).where(chunks.c.document_id.in_(part)))
        return removed

    def _insert_chunks(
        self,
        conn: Connection,
        collection_id: int,
        per_document: Sequence[tuple[int, Sequence[NewChunk]]],
    ) -> list[list[int]]:
        """Insert chunks (and lexical rows) of several documents; returns ids per document."""
        rows = chunk_rows(collection_id, per_document)
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
        with self.transaction() as conn:
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
            bump_revision(conn, collection_id)
        return removed

    def chunk_ids(self, collection_id: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        with self.connect() as conn:
            rows = conn.execute(
                select(chunks.c.id).where(chunks.c.collection_id == collection_id)
            ).all()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def count_chunks(self, collection_id: int) -> int:
        with self.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(chunks)
                    .where(chunks.c.collection_id == collection_id)
                ).scalar_one()
            )

    def count_documents(self, collection_id: int, *, containing: str = "") -> int:
        with self.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(documents)
                    .where(documents.c.collection_id == collection_id, _containing(containing))
                ).scalar_one()
            )

    def chunks_by_ids(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks with their document's source, title and metadata, keyed by id."""
        out: dict[int, StoredChunk] = {}
        with self.connect() as conn:
            for batch in batches(list(chunk_ids)):
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
                    chunk = stored_chunk_from(r._mapping)
                    out[chunk.id] = chunk
        return out

    def document_chunk_ids(self, document_ids: Sequence[int]) -> list[int]:
        with self.connect() as conn:
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
        with self.connect() as conn:
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
        with self.connect() as conn:
            try:
                return self.lexical.search(conn, collection_id, query, limit, condition)
            except (OperationalError, DataError) as exc:
                raise InputError(f"the query could not be searched: {exc.orig}") from exc

    def lexical_count(self, collection_id: int) -> int:
        with self.connect() as conn:
            return self.lexical.count(conn, collection_id)

    def document_frequencies(
        self, collection_id: int, phrases: Sequence[Sequence[str]]
    ) -> tuple[int, list[int]]:
        """Chunks in the collection, and how many contain each phrase (lexical tokens)."""
        with self.engine.connect() as conn:
            total = self.lexical.count(conn, collection_id)
            return total, self.lexical.document_frequencies(conn, collection_id, phrases)


def _containing(needle: str) -> ColumnElement[bool]:
    if not needle:
        return true()
    wanted = needle.lower()
    return or_(
        func.lower(documents.c.source).contains(wanted, autoescape=True),
        func.lower(func.coalesce(documents.c.title, "")).contains(wanted, autoescape=True),
    )
