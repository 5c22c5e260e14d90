"""The embedding cache: (model, dimensions, text sha256) -> vector, so no text is embedded twice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import insert, select, tuple_

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
        unique = list(dict.fromkeys(shas))
        with self.connect() as conn:
            for batch in batches(unique):
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
        with self.transaction() as conn:
            keys = list(items)
            present: set[str] = set()
            for batch in batches(keys):
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
