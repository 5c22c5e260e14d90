"""What routes share: the engine, the caller, metrics, content-type checks and write access.

Route modules use these through FastAPI's `Depends`; nothing here raises `HTTPException`
(errors are `RagsearchError`s, rendered by `service.http.errors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from indexer.errors import UnsupportedMediaType
from indexer.index import Index
from indexer.writer_lock import WriterLock
from service.http.auth import Principal, RateLimiter, authorize, forbid_widget, principal_for
from service.http.metrics import Metrics
from service.http.origins import OriginPolicy
from service.query.engine import Engine

__all__ = [
    "EngineDep",
    "MetricsDep",
    "Principal",
    "PrincipalDep",
    "authorize",
    "forbid_widget",
    "get_engine",
    "get_metrics",
    "get_principal",
    "require_json",
    "write_access",
    "writing",
]


def get_engine(request: Request) -> Engine:
    """The app's query engine (built by the lifespan, or passed to `create_app`)."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise RuntimeError("the engine is not open: run the app with its lifespan")
    return engine


# FastAPI runs a plain `def` dependency in its thread pool: a thread hop per dependency per
# request. What routes depend on is therefore a coroutine (`get_engine` stays a function for
# code that is not a dependency).
async def engine_of(request: Request) -> Engine:
    return get_engine(request)


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key (`rsk_...`) from `ragsearch keys create`; needed once any key exists.",
)


async def get_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> Principal:
    """The caller: from `Authorization: Bearer <key>`, or the open principal when no key exists.

    The open principal is granted only to requests from localhost or a public origin
    (`service.origins`). Raises Unauthorized (401), Forbidden (403: a widget key from a
    foreign origin, a keyless request from a foreign host) or TooManyRequests (429).
    """
    engine = get_engine(request)
    principal = await asyncio.to_thread(
        principal_for,
        engine.index.catalog,
        request.headers.get("authorization"),
        request.headers.get("origin"),
        open_without_keys=request.app.state.open_without_keys,
        open_after_keys=engine.settings.open_after_keys,
    )
    if principal.open:
        policy: OriginPolicy = request.app.state.origin_policy
        policy.check_open_request(request.headers.get("host"), request.headers.get("origin"))
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check(principal)
    return principal


async def require_json(request: Request) -> None:
    """Refuse a body that is not `application/json` (or `+json`) with 415."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        shown = media or "none"
        raise UnsupportedMediaType(f"send the body as application/json (got {shown})")


EngineDep = Annotated[Engine, Depends(engine_of)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


@asynccontextmanager
async def writing(request: Request, operation: str = "write") -> AsyncIterator[Index]:
    """The index for writing, under the data directory's writer lock.

    Waits up to `app.state.writer_lock_timeout` seconds (in a thread, so the event loop
    keeps serving readers), then raises `Locked` (409). The writer index is the app's own,
    opened on first use; readers pick its commits up by catalog revision.
    """
    state: Any = request.app.state
    engine = get_engine(request)
    async with write_access(state, engine, operation, state.writer_lock_timeout) as index:
        yield index


@asynccontextmanager
async def write_access(
    state: Any, engine: Engine, operation: str, timeout: float
) -> AsyncIterator[Index]:
    """`writing` for code without a request (ingestion jobs): the app's `state` and engine."""
    lock = WriterLock(engine.settings.data_dir, timeout=timeout, operation=operation)
    acquiring = asyncio.ensure_future(asyncio.to_thread(lock.acquire))
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        # The thread cannot be stopped: if it still gets the lock, give it straight back.
        def release_late(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                lock.release()

        acquiring.add_done_callback(release_late)
        raise
    try:
        if state.writer_index is None:
            state.writer_index = Index(engine.settings, writer=True)
        yield state.writer_index
    finally:
        lock.release()
