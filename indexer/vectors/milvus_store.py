"""One Milvus collection per ragsearch collection: int64 primary key = chunk id, inner product.

Milvus is the scale-out vector store: every replica reads and writes the same collections, so
there is no file to load or save. Writes are durable once Milvus acknowledges them (it logs
them before replying), which is why `save()` does nothing and `dirty` is always False. The
collections use Strong consistency, so a search sees every write acknowledged before it; new
content is searchable at once, as with FAISS.

A `vector_store` setting that ends in `.db` is a Milvus Lite file (an embedded server that
pymilvus starts from the `milvus-lite` wheel); `http(s)://host:19530` is a Milvus server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from indexer.errors import VectorStoreError
from indexer.providers.base import Vectors
from indexer.vectors.base import IdArray

_SEARCH_LIMIT = 16_384  # Milvus refuses a larger top-k (and a larger query window)
_IDS_PER_FILTER = 10_000  # ids per `id in [...]` filter: keeps each expression small to parse
_ROWS_PER_WRITE = 1_000  # rows per upsert: well under the 64 MB gRPC message limit at 2048 dims
_ITERATOR_BATCH = 10_000
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://")

T = TypeVar("T")


def is_milvus(vector_store: str) -> bool:
    """Whether a `vector_store` setting names Milvus rather than FAISS."""
    return vector_store.strip().lower() != "faiss"


def milvus_uri(vector_store: str) -> str:
    """The URI for `MilvusClient`: an absolute `.db` path (Milvus Lite) or a server URL."""
    value = vector_store.strip()
    if value.lower().startswith(_SERVER_SCHEMES):
        return value
    if value.endswith(".db"):
        path = Path(value).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)
    raise VectorStoreError(
        f"vector_store {vector_store!r} is neither `faiss`, a Milvus Lite file ending in .db, "
        "nor a Milvus server URL such as http://localhost:19530"
    )


def connect(vector_store: str, token: str | None = None) -> Any:
    """A `MilvusClient` for the setting. pymilvus is imported only when Milvus is configured."""
    uri = milvus_uri(vector_store)
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise VectorStoreError(
            "vector_store names Milvus but pymilvus is not installed: "
            "pip install 'ragsearch[scale]'"
        ) from exc
    return _call(f"connect to Milvus at {_safe(uri)}", lambda: MilvusClient(uri, token=token or ""))


def collection_name(collection_id: int) -> str:
    """The Milvus collection of a ragsearch collection (Milvus names allow only `[A-Za-z0-9_]`)."""
    return f"rs_{int(collection_id)}"


def _safe(uri: str) -> str:
    return uri.split("@")[-1]


def _call(action: str, fn: Callable[[], T]) -> T:
    """Run a pymilvus call, translating its exceptions once, here."""
    from pymilvus.exceptions import MilvusException

    try:
        return fn()
    except MilvusException as exc:
        raise VectorStoreError(f"cannot {action}: {exc.message}") from exc
    except (ConnectionError, TimeoutError) as exc:
        raise VectorStoreError(f"cannot {action}: {exc}") from exc


class MilvusStore:
    """Vectors of one collection in Milvus. Methods are thread-safe (the client is)."""

    def __init__(self, client: Any, name: str, dimensions: int) -> None:
        self.client = client
        self.name = name
        self.dimensions = dimensions
        self._lock = threading.Lock()
        self._exists: bool | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Always False: Milvus persists each write when it acknowledges it."""
        return False

    def _has_collection(self) -> bool:
        if self._exists is None:
            self._exists = bool(
                _call(f"look up {self.name}", lambda: self.client.has_collection(self.name))
            )
        return self._exists

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimensions)
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        _call(
            f"create {self.name}",
            lambda: self.client.create_collection(
                self.name, schema=schema, index_params=index, consistency_level="Strong"
            ),
        )
        self._exists = True

    def _ensure(self) -> None:
        with self._lock:
            if not self._has_collection():
                self._create()

    def _stored_dimensions(self) -> int | None:
        info = _call(f"describe {self.name}", lambda: self.client.describe_collection(self.name))
        for field in info.get("fields", []):
            if field.get("name") == "vector":
                return int(field.get("params", {}).get("dim", 0))
        return None

    def load(self) -> bool:
        """Check the collection exists with the right dimension (and load it for search).

        A collection of another dimension is derived data from an older catalog: it is dropped
        and False returned, so reconciliation refills it, as FAISS does with a foreign file.
        """
        self._exists = None
        if not self._has_collection():
            return False
        if self._stored_dimensions() != self.dimensions:
            self.delete_file()
            return False
        _call(f"load {self.name}", lambda: self.client.load_collection(self.name))
        return True

    def save(self) -> None:
        """Nothing to do: acknowledged writes are already durable."""

    def delete_file(self) -> None:
        """Drop the Milvus collection (the FAISS store deletes its file)."""
        with self._lock:
            if self._has_collection():
                _call(f"drop {self.name}", lambda: self.client.drop_collection(self.name))
            self._exists = False

    # --- contents ------------------------------------------------------------------------

    def __len__(self) -> int:
        if not self._has_collection():
            return 0
        rows = _call(
            f"count {self.name}",
            lambda: self.client.query(self.name, filter="", output_fields=["count(*)"]),
        )
        return int(rows[0]["count(*)"])

    def ids(self) -> IdArray:
        if not self._has_collection():
            return np.zeros(0, dtype=np.int64)
        parts = [np.asarray(batch, dtype=np.int64) for batch in self._id_batches()]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _id_batches(self) -> Iterator[list[int]]:
        iterator = _call(
            f"list ids of {self.name}",
            lambda: self.client.query_iterator(
                self.name, batch_size=_ITERATOR_BATCH, output_fields=["id"]
            ),
        )
        try:
            while batch := _call(f"list ids of {self.name}", iterator.next):
                yield [int(row["id"]) for row in batch]
        finally:
            iterator.close()

    def add(self, ids: IdArray, vectors: Vectors) -> None:
        """Insert or overwrite vectors by id (upsert: a writer and a repair may race safely)."""
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimensions)
        self._ensure()
        for start in range(0, len(ids), _ROWS_PER_WRITE):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(
                    ids[start : start + _ROWS_PER_WRITE],
                    vectors[start : start + _ROWS_PER_WRITE],
                    strict=True,
                )
            ]
            _call(f"write to {self.name}", partial(self.client.upsert, self.name, rows))

    def remove(self, ids: IdArray) -> int:
        """Delete vectors by id; returns how many of them were present."""
        if len(ids) == 0 or not self._has_collection():
            return 0
        removed = 0
        for batch in _id_lists(ids):
            present = self._present(batch)
            if present:
                _call(
                    f"delete from {self.name}", partial(self.client.delete, self.name, ids=present)
                )
                removed += len(present)
        return removed

    def _present(self, batch: list[int]) -> list[int]:
        rows = _call(
            f"query {self.name}",
            lambda: self.client.query(
                self.name, filter=_id_filter(batch), output_fields=["id"], limit=len(batch)
            ),
        )
        return [int(row["id"]) for row in rows]

    # --- search --------------------------------------------------------------------------

    def search(
        self, query: Vectors, k: int, allowed: IdArray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine similarity). `allowed` restricts to those ids.

        A large `allowed` set is searched in slices of `_IDS_PER_FILTER` ids and the slices'
        results merged: each slice is exact within itself, so the merge is exact too.
        """
        if k <= 0 or (allowed is not None and len(allowed) == 0) or not self._has_collection():
            return []
        k = min(k, _SEARCH_LIMIT)
        vector = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dimensions).tolist()
        filters = [""] if allowed is None else [_id_filter(b) for b in _id_lists(allowed)]
        hits: list[tuple[int, float]] = []
        for expression in filters:
            hits.extend(self._search_one(vector, k, expression))
        hits.sort(key=lambda hit: (-hit[1], hit[0]))
        return hits[:k]

    def _search_one(self, vector: list[float], k: int, expression: str) -> list[tuple[int, float]]:
        result = _call(
            f"search {self.name}",
            lambda: self.client.search(
                self.name,
                data=[vector],
                limit=k,
                filter=expression,
                output_fields=["id"],
                search_params={"metric_type": "IP"},
            ),
        )
        return [(int(hit["id"]), float(hit["distance"])) for hit in result[0]]


def _id_lists(ids: IdArray) -> Iterator[list[int]]:
    values = np.unique(np.asarray(ids, dtype=np.int64)).tolist()
    for start in range(0, len(values), _IDS_PER_FILTER):
        yield values[start : start + _IDS_PER_FILTER]


def _id_filter(ids: list[int]) -> str:
    """A Milvus boolean expression selecting these primary keys (ints only: no injection)."""
    return f"id in [{','.join(map(str, ids))}]"
