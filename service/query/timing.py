"""Per-stage timings in milliseconds, as every query response reports them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class StageTimer:
    """Times named stages into `ms` (stage -> milliseconds); `finish` adds the `total`."""

    def __init__(self, ms: dict[str, float] | None = None) -> None:
        self.ms: dict[str, float] = {} if ms is None else ms
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = (time.perf_counter() - started) * 1000

    async def in_thread(self, name: str, func: Callable[[], T]) -> T:
        """Run blocking `func` off the event loop, timed as stage `name`."""
        with self.stage(name):
            return await asyncio.to_thread(func)

    def finish(self) -> dict[str, float]:
        self.ms["total"] = (time.perf_counter() - self._started) * 1000
        return self.ms
