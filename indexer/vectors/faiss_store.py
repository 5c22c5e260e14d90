"""One FAISS index per collection, keyed by chunk id, inner product on unit vectors.

Exact search (`IndexIDMap2` over `IndexFlatIP`) until a collection passes the ANN threshold,
then IVF (`IndexIVFFlat`, which stores 64-bit ids itself and supports `remove_ids`).
Saved atomically: write a temp file, fsync, `os.replace`, fsync the directory.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.errors import storage_error
from indexer.private_files import make_private_dir
from indexer.providers.base import Vectors

IdArray = np.ndarray[Any, np.dtype[np.int64]]
_POINTS_PER_CENTROID = 39  # FAISS warns below ~39 training points per IVF list


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temp files a save left behind when its process died (or the disk filled).

    Call only while holding the writer lock: then no save is in progress.
    """
    removed = []
    for tmp in folder.glob(".*.faiss.*.tmp") if folder.is_dir() else ():
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


class FaissStore:
    """Vectors of one collection. Methods are thread-safe.

    With `expected_sha256`, `load` refuses a file whose checksum differs (it changed after
    the last save: bit rot, a torn copy) and sets `checksum_mismatch`; `on_saved` receives
    the checksum of every file `save` writes, for the catalog to record.
    """

    def __init__(
        self,
        path: Path,
        dimensions: int,
        *,
        ann_threshold: int = 50_000,
        nprobe: int = 32,
        expected_sha256: str | None = None,
        on_saved: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.dimensions = dimensions
        self.ann_threshold = ann_threshold
        self.nprobe = nprobe
        self.expected_sha256 = expected_sha256
        self.on_saved = on_saved
        self.checksum_mismatch = False
        self._lock = threading.RLock()
        self._index: Any = self._new_flat()
        self.dirty = False

    # --- lifecycle -----------------------------------------------------------------------

    def _new_flat(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimensions))

    @property
    def is_approximate(self) -> bool:
        return isinstance(self._index, faiss.IndexIVF)

    def load(self) -> bool:
        """Read the file if present and sane. Returns False (empty index) when unusable."""
        with self._lock:
            self._index = self._new_flat()
            self.checksum_mismatch = False
            if not self.path.exists():
                return False
            if self.expected_sha256 is not None and file_sha256(self.path) != self.expected_sha256:
                self.checksum_mismatch = True
                return False  # changed since the last save: the catalog rebuilds it
            try:
                index = faiss.read_index(str(self.path))
            except RuntimeError:
                return False  # torn or foreign file: the catalog rebuilds it
            if index.d != self.dimensions:
                return False
            if isinstance(index, faiss.IndexIVF):
                # read_index already returns the concrete class; a downcast_index proxy would
                # not own the index and dangle once this owning one is collected.
                index.nprobe = self.nprobe
            self._index = index
            self.dirty = False
            return True

    def save(self) -> None:
        """Write atomically: readers see the old file or the new one, never a torn one."""
        with self._lock:
            make_private_dir(self.path.parent)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                faiss.write_index(self._index, str(tmp))
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
                sha256 = file_sha256(tmp)
            except (RuntimeError, OSError) as exc:
                tmp.unlink(missing_ok=True)
                raise storage_error(exc, f"cannot save the vector file {self.path.name}") from exc
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self.dirty = False
            self.expected_sha256 = sha256
            if self.on_saved is not None:
                self.on_saved(sha256)

    def delete_file(self) -> None:
        with self._lock:
            self._index = self._new_flat()
            self.path.unlink(missing_ok=True)

    # --- contents ------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> IdArray:
        with self._lock:
            if not self.is_approximate:
                return faiss.vector_to_array(self._index.id_map).astype(np.int64)
            invlists = self._index.invlists
            parts = [
                faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                for i in range(invlists.nlist)
                if invlists.list_size(i)
            ]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def add(self, ids: IdArray, vectors: Vectors) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimensions)
        with self._lock:
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
            self.dirty = True
            if not self.is_approximate and self._index.ntotal > self.ann_threshold:
                self._to_ivf()

    def remove(self, ids: IdArray) -> int:
        if len(ids) == 0:
            return 0
        with self._lock:
            removed = int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
            self.dirty = self.dirty or removed > 0
            return removed

    def _to_ivf(self) -> None:
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, self._index.ntotal)
        nlist = max(1, min(int(4 * math.sqrt(len(ids))), len(ids) // _POINTS_PER_CENTROID))
        quantizer = faiss.IndexFlatIP(self.dimensions)
        ivf = faiss.IndexIVFFlat(quantizer, self.dimensions, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        ivf.add_with_ids(vectors, ids)
        ivf.nprobe = self.nprobe
        # Python owns the quantizer and holding it here keeps it alive as long as the index;
        # also setting `own_fields` made FAISS free it a second time.
        self._quantizer = quantizer
        self._index = ivf

    # --- search --------------------------------------------------------------------------

    def search(
        self, query: Vectors, k: int, allowed: IdArray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine similarity). `allowed` restricts to those ids."""
        with self._lock:
            if self._index.ntotal == 0 or k <= 0:
                return []
            if allowed is not None and len(allowed) == 0:
                return []
            k = min(k, int(self._index.ntotal))
            query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dimensions)
            params: Any = None
            if allowed is not None:
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
                if self.is_approximate:
                    params = faiss.SearchParametersIVF()
                    params.nprobe = self.nprobe
                else:
                    params = faiss.SearchParameters()
                params.sel = selector
            scores, ids = self._index.search(query, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
