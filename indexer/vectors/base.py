"""The vector-store surface the index, the ingestor and search rely on."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from indexer.providers.base import Vectors

IdArray = np.ndarray[Any, np.dtype[np.int64]]


class VectorStore(Protocol):
    """The vectors of one collection, keyed by chunk id, scored by inner product on unit vectors.

    `load()` reads what is persisted (False: nothing usable, the store starts empty);
    `dirty` means changes that only `save()` makes durable; `delete_file()` removes the
    persisted vectors; `search` returns the top-k (chunk id, cosine similarity), restricted
    to `allowed` ids when given (an empty `allowed` matches nothing).
    """

    dimensions: int

    @property
    def dirty(self) -> bool: ...

    def load(self) -> bool: ...
    def save(self) -> None: ...
    def delete_file(self) -> None: ...
    def __len__(self) -> int: ...
    def ids(self) -> IdArray: ...
    def add(self, ids: IdArray, vectors: Vectors) -> None: ...
    def remove(self, ids: IdArray) -> int: ...
    def search(
        self, query: Vectors, k: int, allowed: IdArray | None = None
    ) -> list[tuple[int, float]]: ...
