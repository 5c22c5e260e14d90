"""A small LRU of query vectors: a repeated query skips the model."""

from __future__ import annotations

import threading
from collections import OrderedDict

from indexer.providers.base import Vectors

__all__ = ["QueryVectorCache"]


class QueryVectorCache:
    """Thread-safe least-recently-used map from query text to its (read-only) vector row."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> Vectors | None:
        with self._lock:
            found = self._items.get(text)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(text)
            self.hits += 1
            return found

    def put(self, text: str, vector: Vectors) -> None:
        if self.capacity <= 0:
            return
        frozen = vector.copy()
        frozen.setflags(write=False)  # shared between callers: nobody may change it in place
        with self._lock:
            self._items[text] = frozen
            self._items.move_to_end(text)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
