"""The index of a data directory: the catalog plus one vector store per collection.

Vectors are derived data. When a store is first opened it is reconciled against the catalog:
vectors whose chunk is gone are removed, chunks without a vector get theirs back from the
embedding cache. After that a FAISS reader never re-reads the file: when the catalog's
revision moves it applies what changed (chunks added since the highest id it holds, chunks
deleted since the last tombstone it saw; see `indexer.chunk_changes`), while other queries
keep searching. A writer saves the file when enough changes accumulated and when it closes;
a crash in between loses nothing, because the next open reconciles from the catalog.
Milvus is shared by every replica, so only a writer (holding the writer lock) repairs it;
a reader never serves a stale vector anyway, because search drops ids the catalog no
longer has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import faiss
import numpy as np
from sqlalchemy import ColumnElement

from indexer import chunk_changes
from indexer.catalog import Catalog
from indexer.lexical_sync import catch_up
from indexer.lexical_tantivy import SyncState, TantivyLexicon
from indexer.private_files import make_private_dir
from indexer.records import Collection
from indexer.settings import Settings
from indexer.vectors.base import IdArray, VectorStore
from indexer.vectors.faiss_store import FaissStore, remove_stale_temp_files
from indexer.vectors.milvus_store import MilvusStore, collection_name, connect, is_milvus

log = logging.getLogger("ragsearch.index")

# A writer rewrites the vector file once the changes since its last save reach this share of
# the collection: the rewrites of a growing collection add up to ~5x its final size instead
# of one full rewrite per write (1.5 GB at a million 384-d vectors). Small files (under
# ~30 MB at 384 dimensions) are cheap to rewrite: saved at most every SMALL_SAVE_SECONDS
# during a run of writes, and when the run ends (`finish_writing`).
SAVE_FRACTION = 0.25
SAVE_ALWAYS_BELOW = 20_000
SMALL_SAVE_SECONDS = 2.0
LEXICAL_COMMIT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Reconciliation:
    added: int
    removed: int
    unrecoverable: list[int]  # chunks whose vector is in no cache (they need re-embedding)
    high_id: int  # the highest chunk id in the catalog when it ran


@dataclass(frozen=True, slots=True)
class CollectionStatus:
    name: str
    documents: int
    chunks: int
    vectors: int
    consistent: bool
    # "ok", "mismatch" (the saved file changed since it was written), "unrecorded" (saved
    # before checksums were kept) or "none" (no file, Milvus, or the vectors served in memory)
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


@dataclass(frozen=True, slots=True)
class _Held:
    """A store and how far it has caught up with the catalog."""

    store: VectorStore
    revision: int  # the catalog revision it reflects (at least)
    high_id: int  # every chunk id up to this one has been applied
    tombstone: int  # every tombstone up to this one has been applied


class Index:
    """Opens the catalog and the vector stores of one data directory."""

    def __init__(self, settings: Settings, *, writer: bool = False) -> None:
        self.settings = settings
        self.writer = writer
        make_private_dir(settings.data_dir)
        self.catalog = Catalog(settings.resolved_catalog_url)
        self.shared_vectors = is_milvus(settings.vector_store)
        self._milvus: Any = None
        self._held: dict[int, _Held] = {}
        self._unsaved: dict[int, int] = {}
        self._saved_at: dict[int, float] = {}  # when each collection's vectors were last saved
        self._lock = threading.Lock()  # guards the dicts above
        self._opening = threading.Lock()  # one first open at a time
        self._refreshing: dict[int, threading.Lock] = {}
        self._lexicons: dict[int, TantivyLexicon] = {}
        self._uncommitted: dict[int, SyncState] = {}  # a writer's state awaiting a commit
        self._committed_at: dict[int, float] = {}
        self._caught_up: dict[int, int] = {}  # highest chunk id a writer's catch-up indexed
        self.reloads = 0  # full loads of a vector file (open, or a log pruned past a reader)
        if not writer:
            # Serving runs one query per request thread. FAISS would also fan each query out
            # over OpenMP threads, which on busy cores made an exact search of 20K vectors
            # take 72 ms instead of 1.6 ms (measured, scripts/bench_scale.py).
            faiss.omp_set_num_threads(1)
        if writer and not self.shared_vectors:
            for stale in remove_stale_temp_files(settings.vectors_dir):
                log.info("removed %s, left by an interrupted save", stale.name)
        try:
            chunk_changes.install(self.catalog.engine)
            if self.shared_vectors:
                token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
                self._milvus = connect(settings.vector_store, token)
        except BaseException:
            self.catalog.close()
            raise

    def close(self) -> None:
        """Save what a writer has not saved yet, then close the catalog and Milvus."""
        try:
            for collection_id in list(self._uncommitted):
                self._commit_lexical(collection_id)
            for lexicon in self._lexicons.values():
                lexicon.release()
            if self.writer:
                for held in list(self._held.values()):
                    if isinstance(held.store, FaissStore):
                        # A bulk write can end while the larger IVF it set off is still being
                        # trained: saving the old one would leave every serving process to
                        # resize it again (a full copy of the vectors, under load).
                        held.store.wait_for_resize()
                    if held.store.dirty:
                        held.store.save()
        finally:
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

    def store(self, collection: Collection, *, revision: int | None = None) -> VectorStore:
        """The collection's vectors, current with the catalog's latest committed revision.

        Opening reconciles in full; afterwards only the changes since are applied. While one
        thread applies them, others searching the same collection get the store as it is
        (search drops ids the catalog no longer has), so no query waits behind a refresh.
        `revision` is the collection's revision as the caller has just read it (a request
        that looked the collection up), which saves asking the catalog again.
        """
        if revision is None:
            revision = self.catalog.revision(collection.id)
        held = self._held.get(collection.id)
        if held is None:
            with self._opening:
                held = self._held.get(collection.id) or self._open(collection)
        if held.revision >= revision or self.shared_vectors:
            return held.store
        refreshing = self._refreshing.setdefault(collection.id, threading.Lock())
        if refreshing.acquire(blocking=False):
            try:
                self._refresh(collection, revision)
            finally:
                refreshing.release()
        return held.store

    def _open(self, collection: Collection) -> _Held:
        engine = self.catalog.engine
        revision = self.catalog.revision(collection.id)
        tombstone = chunk_changes.latest_tombstone(engine)
        store = self._path(collection)
        self._load(collection, store)
        self.reloads += 1
        high_id = 0
        if self.writer or not self.shared_vectors:
            high_id = self.reconcile(collection, store).high_id
        unrecorded = isinstance(store, FaissStore) and store.expected_sha256 is None
        if self.writer and (store.dirty or (unrecorded and len(store))):
            store.save()  # also records the checksum of a file saved before they were kept
        held = _Held(store, revision, high_id, tombstone)
        with self._lock:
            self._held[collection.id] = held
        return held

    def _refresh(self, collection: Collection, revision: int) -> None:
        """Apply the chunks added and deleted since the held state (ids first: see below)."""
        held = self._held[collection.id]
        engine = self.catalog.engine
        if not chunk_changes.is_retained(engine, held.tombstone):
            tombstone = chunk_changes.latest_tombstone(engine)
            self.reloads += 1
            high_id = self.reconcile(collection, held.store).high_id
        else:
            # New ids before tombstones: a chunk added and deleted in between is then
            # removed again here, never left behind.
            added = chunk_changes.ids_after(engine, collection.id, held.high_id)
            found, vectors, _ = self.catalog.chunk_vectors(collection, added.tolist())
            removed, tombstone = chunk_changes.tombstones_after(
                engine, collection.id, held.tombstone
            )
            held.store.add(np.asarray(found, dtype=np.int64), vectors)
            held.store.remove(removed)
            high_id = int(added[-1]) if len(added) else held.high_id
        with self._lock:
            self._held[collection.id] = _Held(held.store, revision, high_id, tombstone)

    def mark_current(self, collection: Collection, store: VectorStore, changes: int = 0) -> None:
        """Record that `store` holds this writer's own latest writes (`changes` vectors added
        or removed since the last call), and save it if enough changed since its last save."""
        engine = self.catalog.engine
        revision = self.catalog.revision(collection.id)
        ids = chunk_changes.ids_after(engine, collection.id, self._high_id(collection))
        held = _Held(
            store,
            revision,
            int(ids[-1]) if len(ids) else self._high_id(collection),
            chunk_changes.latest_tombstone(engine),
        )
        with self._lock:
            self._held[collection.id] = held
            unsaved = self._unsaved.get(collection.id, 0) + changes
            self._unsaved[collection.id] = unsaved
            if collection.id in self._lexicons:
                self._uncommitted[collection.id] = SyncState(held.high_id, held.tombstone)
        # A tantivy commit writes a segment: at most one a second during a long run.
        if time.monotonic() - self._committed_at.get(collection.id, 0.0) >= LEXICAL_COMMIT_SECONDS:
            self._commit_lexical(collection.id)
        # A small file is cheap to rewrite, but not after every flush of a long run: at most
        # every SMALL_SAVE_SECONDS (the catalog holds every vector; an open catches up).
        small = len(store) < SAVE_ALWAYS_BELOW and (
            time.monotonic() - self._saved_at.get(collection.id, 0.0) >= SMALL_SAVE_SECONDS
        )
        if store.dirty and (small or unsaved >= SAVE_FRACTION * len(store)):
            self.save(collection)

    def save(self, collection: Collection) -> None:
        """Persist the collection's vectors now (a writer's checkpoint)."""
        held = self._held.get(collection.id)
        if held is not None and held.store.dirty:
            held.store.save()
            chunk_changes.prune(self.catalog.engine)
        with self._lock:
            self._unsaved[collection.id] = 0
            self._saved_at[collection.id] = time.monotonic()

    def _high_id(self, collection: Collection) -> int:
        held = self._held.get(collection.id)
        return held.high_id if held else 0

    def forget(self, collection: Collection) -> None:
        with self._lock:
            held = self._held.pop(collection.id, None)
            self._unsaved.pop(collection.id, None)
            lexical = self._lexicons.pop(collection.id, None)
            self._uncommitted.pop(collection.id, None)
        store = held.store if held else self._path(collection)
        store.delete_file()
        if lexical is not None:
            lexical.delete_files()
        elif self.settings.uses_tantivy:
            TantivyLexicon(self._lexical_path(collection)).delete_files()

    # --- lexical -------------------------------------------------------------------------

    def _lexical_path(self, collection: Collection) -> Any:
        return self.settings.lexical_dir / f"{collection.id}-{collection.name}"

    def lexicon(self, collection: Collection) -> TantivyLexicon | None:
        """The collection's tantivy index (None when lexical search is the database's),
        current with the catalog's latest revision. A writer first catches it up with the
        catalog (see `indexer.lexical_sync`); a reader only reopens its searcher."""
        if not self.settings.uses_tantivy:
            return None
        with self._lock:
            found = self._lexicons.get(collection.id)
        if found is None:
            with self._opening:
                with self._lock:
                    found = self._lexicons.get(collection.id)
                if found is None:
                    found = TantivyLexicon(self._lexical_path(collection))
                    if self.writer:
                        state = catch_up(found, self.catalog.engine, collection.id)
                        self._caught_up[collection.id] = state.high_id
                    with self._lock:
                        self._lexicons[collection.id] = found
        found.refresh()
        return found

    def _commit_lexical(self, collection_id: int) -> None:
        with self._lock:
            state = self._uncommitted.pop(collection_id, None)
            lexicon = self._lexicons.get(collection_id)
        if state is not None and lexicon is not None:
            lexicon.commit(state)
            self._committed_at[collection_id] = time.monotonic()

    def finish_writing(self, collection: Collection) -> None:
        """End a run of writes: commit the tantivy index and let go of its directory lock,
        which another process's writer may need next. A small vector file the run left
        unsaved (see `mark_current`) is saved now, so it is current whenever no run is."""
        self._commit_lexical(collection.id)
        held = self._held.get(collection.id)
        if held is not None and held.store.dirty and len(held.store) < SAVE_ALWAYS_BELOW:
            self.save(collection)
        with self._lock:
            found = self._lexicons.get(collection.id)
        if found is not None:
            found.release()

    def write_lexical(
        self,
        collection: Collection,
        ids: Sequence[int],
        texts: Sequence[str],
        removed: Sequence[int],
    ) -> None:
        """A writer's chunk changes for the tantivy index; `mark_current` commits them."""
        lexicon = self.lexicon(collection)
        if lexicon is None:
            return
        lexicon.remove(removed)
        # Opening may have caught up with these very chunks (when the write came first).
        floor = self._caught_up.get(collection.id, 0)
        kept = [(i, t) for i, t in zip(ids, texts, strict=True) if i > floor]
        lexicon.add([i for i, _ in kept], [t for _, t in kept])

    def lexical_search(
        self,
        collection: Collection,
        query: str,
        limit: int,
        condition: ColumnElement[bool] | None = None,
        *,
        allowed: IdArray | None = None,
    ) -> list[tuple[int, float]]:
        """Best chunks for `query` as (chunk id, BM25 score), from tantivy when it is the
        engine and has been built, else from the catalog's own full-text index. `allowed`
        are the ids `condition` selects, when the caller already has them."""
        lexicon = self.lexicon(collection)
        if lexicon is None or lexicon.state() == SyncState(0, 0):
            return self.catalog.lexical_search(collection.id, query, limit, condition)
        if condition is not None and allowed is None:
            allowed = self.catalog.filtered_chunk_ids(collection.id, condition)
        return lexicon.search(query, limit, allowed)

    def reconcile(self, collection: Collection, store: VectorStore) -> Reconciliation:
        """Make `store` hold exactly one vector per catalog chunk."""
        in_catalog = chunk_changes.chunk_ids(self.catalog.engine, collection.id)
        in_store = np.sort(store.ids())
        extra = chunk_changes.sorted_difference(in_store, in_catalog)
        missing = chunk_changes.sorted_difference(in_catalog, in_store)
        removed = store.remove(extra) if len(extra) else 0
        found, vectors, unrecoverable = self.catalog.chunk_vectors(collection, missing.tolist())
        if found:
            store.add(np.asarray(found, dtype=np.int64), vectors)
        return Reconciliation(
            added=len(found),
            removed=removed,
            unrecoverable=unrecoverable,
            high_id=int(in_catalog[-1]) if len(in_catalog) else 0,
        )

    def status(self, collection: Collection) -> CollectionStatus:
        """The vectors compared with the catalog: those this index serves when it holds the
        collection's (a serving process), else what is persisted (the saved file, or Milvus).
        """
        checksum = "none"
        if collection.id in self._held and not self.shared_vectors:
            vectors = self.store(collection)
        else:
            vectors = self._path(collection)
            vectors.load()
            if isinstance(vectors, FaissStore) and vectors.path.exists():
                if vectors.checksum_mismatch:
                    checksum = "mismatch"
                else:
                    checksum = "ok" if vectors.expected_sha256 is not None else "unrecorded"
        ids = np.sort(vectors.ids())
        chunk_ids = chunk_changes.chunk_ids(self.catalog.engine, collection.id)
        consistent = (
            checksum != "mismatch"
            and len(ids) == len(np.unique(ids))
            and np.array_equal(ids, chunk_ids)
        )
        return CollectionStatus(
            name=collection.name,
            documents=self.catalog.count_documents(collection.id),
            chunks=len(chunk_ids),
            vectors=len(ids),
            consistent=bool(consistent),
            checksum=checksum,
            orphan_vectors=len(chunk_changes.sorted_difference(ids, chunk_ids)),
        )
