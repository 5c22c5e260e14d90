"""Per-key daily token budgets for the model calls a key's answers and chats cost.

A public widget key could otherwise spend the operator's provider account without bound.
Counted per UTC day (`RAGSEARCH_KEY_DAILY_TOKENS`) in the catalog, so a budget holds across
restarts and is shared by every process and replica on it; the open principal (no keys) has
no budget. Check-then-charge is not atomic: requests already admitted when the budget runs
out still finish and are charged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from indexer.catalog import Catalog
from indexer.errors import RagsearchError, TooManyRequests
from service.http.auth import Principal

__all__ = ["TokenBudget", "utc_today"]

log = logging.getLogger("ragsearch.http")


def utc_today() -> date:
    return datetime.now(UTC).date()


def tokens_of(usage: Iterable[Mapping[str, Any]]) -> int:
    """Prompt plus completion tokens over usage dicts as the pipeline reports them."""
    return sum(
        int(u.get("prompt_tokens") or 0) + int(u.get("completion_tokens") or 0) for u in usage
    )


class TokenBudget:
    """Refuses a key's request once its tokens for today are spent; counts what it spends.

    Both go to the catalog in a worker thread: a charge is a write, which may wait for a
    writer's transaction, and the event loop must not.
    """

    def __init__(self, daily_tokens: int | None, today: Callable[[], date] = utc_today) -> None:
        self.daily_tokens = daily_tokens
        self.today = today

    async def check(self, catalog: Catalog, principal: Principal) -> None:
        """Raise TooManyRequests (429) when the key has spent its tokens for today."""
        if self.daily_tokens is None or principal.key_id is None:
            return
        spent = await asyncio.to_thread(catalog.tokens_spent, principal.key_id, self.today())
        if spent >= self.daily_tokens:
            raise TooManyRequests(
                f"key {principal.name!r} has used its {self.daily_tokens:,} model tokens for "
                "today (UTC); it can answer again tomorrow"
            )

    async def charge(
        self, catalog: Catalog, principal: Principal, usage: Iterable[Mapping[str, Any]]
    ) -> None:
        """Add the tokens of a finished request to the key's count for today. The answer is
        already out: a catalog failure is logged, not raised."""
        if self.daily_tokens is None or principal.key_id is None:
            return
        cost = tokens_of(usage)
        try:
            await asyncio.to_thread(catalog.add_tokens_spent, principal.key_id, self.today(), cost)
        except RagsearchError as exc:
            log.warning("could not charge %d tokens to key %r: %s", cost, principal.name, exc)
