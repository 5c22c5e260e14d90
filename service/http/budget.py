"""Per-key daily token budgets for the model calls a key's answers and chats cost.

A public widget key could otherwise spend the operator's provider account without bound.
Counted per server process and per UTC day (`RAGSEARCH_KEY_DAILY_TOKENS`); the open
principal (no keys) has no budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from indexer.errors import TooManyRequests
from service.http.auth import Principal

__all__ = ["TokenBudget", "utc_today"]


def utc_today() -> date:
    return datetime.now(UTC).date()


def tokens_of(usage: Iterable[Mapping[str, Any]]) -> int:
    """Prompt plus completion tokens over usage dicts as the pipeline reports them."""
    return sum(
        int(u.get("prompt_tokens") or 0) + int(u.get("completion_tokens") or 0) for u in usage
    )


class TokenBudget:
    """Tokens spent per key today; refuses a key's request once its budget is used up."""

    def __init__(self, daily_tokens: int | None, today: Callable[[], date] = utc_today) -> None:
        self.daily_tokens = daily_tokens
        self.today = today
        self._spent: dict[int, tuple[date, int]] = {}
        self._lock = threading.Lock()

    def _current(self, key_id: int) -> int:
        day, spent = self._spent.get(key_id, (self.today(), 0))
        return spent if day == self.today() else 0

    def check(self, principal: Principal) -> None:
        """Raise TooManyRequests (429) when the key has spent its tokens for today."""
        if self.daily_tokens is None or principal.key_id is None:
            return
        with self._lock:
            spent = self._current(principal.key_id)
        if spent >= self.daily_tokens:
            raise TooManyRequests(
                f"key {principal.name!r} has used its {self.daily_tokens:,} model tokens for "
                "today (UTC); it can answer again tomorrow"
            )

    def charge(self, principal: Principal, usage: Iterable[Mapping[str, Any]]) -> None:
        """Add the tokens of a finished request to the key's count for today."""
        if self.daily_tokens is None or principal.key_id is None:
            return
        cost = tokens_of(usage)
        with self._lock:
            self._spent[principal.key_id] = (
                self.today(),
                self._current(principal.key_id) + cost,
            )
