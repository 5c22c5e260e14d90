"""The embedding cache: (model, dimensions, text sha256) -> vector, so no text is embedded twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select

from indexer.providers.base import Vectors
from indexer.records import Collection
from indexer.schema import chunks, embedding_cache

from .connections import Tables
from .rows import batches, decode_vectors


class EmbeddingCacheTables(Tables):
    """The catalog's embedding-cache operations (part of `Catalog`)."""

    def cached_vectors(
        self, model_key: str, dimensions: int, shas: Sequence[str]
    ) -> dict[str, Vectors]:
        out: dict[str, Vectors] = {}
        with self.connect() as conn:
            for sha, blob in _cache_rows(conn, model_key, dimensions, shas, "text_sha256, vector"):
                out[sha] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_vectors(self, model_key: str, dimensions: int, items: dict[str, Vectors]) -> None:
        """Store computed vectors in the cache at once, so a later failure wastes none."""
        if not items:
            return
        with self.transaction() as conn:
            present = {
                row[0]
                for row in _cache_rows(conn, model_key, dimensions, list(items), "text_sha256")
            }
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

    def chunk_vectors(
        self, collection: Collection, chunk_ids: Sequence[int]
    ) -> tuple[list[int], Vectors, list[int]]:
        """Cached vectors for chunks: (ids found, their vectors, ids with no cached vector)."""
        found_ids: list[int] = []
        rows_out: list[bytes] = []
        with self.connect() as conn:
            for batch in batches(list(chunk_ids)):
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
        vectors = decode_vectors(rows_out, collection.dimensions)
        return found_ids, vectors, missing


def _cache_rows(
    conn: Connection, model_key: str, dimensions: int, shas: Sequence[str], columns: str
) -> list[Any]:
    """`columns` of the cache rows for these texts, through the DB-API cursor with the shas as
    one parameter (a JSON array in SQLite, an array in PostgreSQL): an IN list of thousands of
    bound values cost more in SQLAlchemy's parameter handling than the lookup itself."""
    unique = list(dict.fromkeys(shas))
    if not unique:
        return []
    where = "model = ? AND dimensions = ? AND text_sha256 IN (SELECT value FROM json_each(?))"
    param: Any = json.dumps(unique)
    if conn.dialect.name == "postgresql":
        where = "model = %s AND dimensions = %s AND text_sha256 = ANY(%s)"
        param = unique
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            f"SELECT {columns} FROM embedding_cache WHERE {where}", (model_key, dimensions, param)
        )
        return [(row[0], bytes(row[1])) if len(row) > 1 else row for row in cursor]
    finally:
        cursor.close()
