"""The index of a data directory: the catalog plus one vector store per collection.

Vectors are derived data. Whenever a store is loaded it is reconciled against the catalog:
vectors whose chunk is gone are removed, chunks without a vector get theirs back from the
embedding cache. With FAISS a writer saves the repaired file and a reader repairs only its
copy in memory. Milvus is shared by every replica, so only a writer (holding the writer lock)
repairs it; a reader never serves a stale vector anyway, because search drops ids the catalog
no longer has.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from indexer.catalog import Catalog
from indexer.private_files import make_private_dir
from indexer.records import Collection
from indexer.settings import Settings
from indexer.vectors.base import VectorStore
from indexer.vectors.faiss_store import FaissStore, remove_stale_temp_files
from indexer.vectors.milvus_store import MilvusStore, collection_name, connect, is_milvus

log = logging.getLogger("ragsearch.index")


@dataclass(frozen=True, slots=True)
class Reconciliation:
    added: int
    removed: int
    unrecoverable: list[int]  # chunks whose vector is in no cache (they need re-embedding)


@dataclass(frozen=True, slots=True)
class CollectionStatus:
    name: str
    documents: int
    chunks: int
    vectors: int
    consistent: bool
    # "ok", "mismatch" (the saved file changed since it was written), "unrecorded" (saved
    # before checksums were kept) or "none" (no file, or Milvus)
    checksum: str = "none"
    orphan_vectors: int = 0  # vectors whose chunk the catalog does not have

    @property
    def notes(self) -> list[str]:
        """What a person should know about this collection's storage, in words."""
        notes = []
        if self.checksum == "mismatch":
            notes.append(
                "the saved vector file does not match its checksum (damaged?); it is rebuilt "
                "from the embedding cache when next opened for writing"
            )
        if self.orphan_vectors:
            notes.append(
                f"the vector file holds {self.orphan_vectors} vectors of chunks the catalog "
                "does not have: a delete did not reach the file, or the catalog lost committed "
                "documents (a damaged -wal file?)"
            )
        return notes


class Index:
    """Opens the catalog and the vector stores of one data directory."""

    def __init__(self, settings: Settings, *, writer: bool = False) -> None:
        self.settings = settings
        self.writer = writer
        make_private_dir(settings.data_dir)
        self.catalog = Catalog(settings.resolved_catalog_url)
        self.shared_vectors = is_milvus(settings.vector_store)
        self._milvus: Any = None
        self._stores: dict[int, tuple[int, VectorStore]] = {}
        self._lock = threading.Lock()
        if writer and not self.shared_vectors:
            for stale in remove_stale_temp_files(settings.vectors_dir):
                log.info("removed %s, left by an interrupted save", stale.name)
        if self.shared_vectors:
            token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
            try:
                self._milvus = connect(settings.vector_store, token)
            except BaseException:
                self.catalog.close()
                raise

    def close(self) -> None:
        self.catalog.close()
        if self._milvus is not None:
            self._milvus.close()

    def _path(self, collection: Collection) -> VectorStore:
        """A fresh, unloaded handle on the collection's vectors (FAISS file or Milvus)."""
        if self._milvus is not None:
            return MilvusStore(self._milvus, collection_name(collection.id), collection.dimensions)
        record = partial(self.catalog.record_vector_checksum, collection.id)
        return FaissStore(
            self.settings.vectors_dir / f"{collection.id}-{collection.name}.faiss",
            collection.dimensions,
            ann_threshold=self.settings.ann_threshold,
            nprobe=self.settings.ivf_nprobe,
            expected_sha256=self.catalog.vector_checksum(collection.id),
            on_saved=record if self.writer else None,
        )

    def _load(self, collection: Collection, store: VectorStore) -> None:
        store.load()
        if not isinstance(store, FaissStore) or not store.checksum_mismatch:
            return
        # A writer replaces the file a moment before recording its checksum: look again.
        store.expected_sha256 = self.catalog.vector_checksum(collection.id)
        store.load()
        if store.checksum_mismatch:
            log.warning(
                "vector file %s of collection %r does not match the checksum recorded at its "
                "last save; rebuilding it from the embedding cache",
                store.path.name,
                collection.name,
            )

    def store(self, collection: Collection) -> VectorStore:
        """The collection's vectors, current with the catalog's latest committed revision."""
        revision = self.catalog.revision(collection.id)
        with self._lock:
            cached = self._stores.get(collection.id)
            if cached is not None and cached[0] == revision:
                return cached[1]
            store = self._path(collection)
            self._load(collection, store)
            if self.writer or not self.shared_vectors:
                self.reconcile(collection, store)
            unrecorded = isinstance(store, FaissStore) and store.expected_sha256 is None
            if self.writer and (store.dirty or (unrecorded and len(store))):
                store.save()  # also records the checksum of a file saved before they were kept
            self._stores[collection.id] = (revision, store)
            return store

    def mark_current(self, collection: Collection, store: VectorStore) -> None:
        """Record that `store` already holds this process's own latest writes."""
        revision = self.catalog.revision(collection.id)
        with self._lock:
            self._stores[collection.id] = (revision, store)

    def forget(self, collection: Collection) -> None:
        with self._lock:
            cached = self._stores.pop(collection.id, None)
        store = cached[1] if cached else self._path(collection)
        store.delete_file()

    def reconcile(self, collection: Collection, store: VectorStore) -> Reconciliation:
        """Make `store` hold exactly one vector per catalog chunk."""
        in_catalog = self.catalog.chunk_ids(collection.id)
        in_store = store.ids()
        extra = np.setdiff1d(in_store, in_catalog, assume_unique=False)
        missing = np.setdiff1d(in_catalog, in_store, assume_unique=False)
        removed = store.remove(extra) if len(extra) else 0
        found, vectors, unrecoverable = self.catalog.chunk_vectors(collection, missing.tolist())
        if found:
            store.add(np.asarray(found, dtype=np.int64), vectors)
        return Reconciliation(added=len(found), removed=removed, unrecoverable=unrecoverable)

    def status(self, collection: Collection) -> CollectionStatus:
        """What is persisted now (the saved vector file, or Milvus) compared with the catalog."""
        on_disk = self._path(collection)
        on_disk.load()
        checksum = "none"
        if isinstance(on_disk, FaissStore) and on_disk.path.exists():
            if on_disk.checksum_mismatch:
                checksum = "mismatch"
            else:
                checksum = "ok" if on_disk.expected_sha256 is not None else "unrecorded"
        ids = on_disk.ids()
        chunk_ids = self.catalog.chunk_ids(collection.id)
        consistent = (
            checksum != "mismatch"
            and len(ids) == len(np.unique(ids))
            and np.array_equal(np.sort(ids), np.sort(chunk_ids))
        )
        return CollectionStatus(
            name=collection.name,
            documents=self.catalog.count_documents(collection.id),
            chunks=len(chunk_ids),
            vectors=len(ids),
            consistent=bool(consistent),
            checksum=checksum,
            orphan_vectors=len(np.setdiff1d(ids, chunk_ids)),
        )
