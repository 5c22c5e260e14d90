"""The FastAPI application: `create_app(settings)` builds it; nothing happens at import.

The lifespan opens the engine (index, embedders, reranker, chat model) and closes it. An
engine passed in (tests, embedding apps) is used as is and left for its owner to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date

from fastapi import FastAPI
from starlette.types import Scope

from indexer.settings import Settings
from service.http import console, openai_api, tools, widget
from service.http.access_log import install_redaction
from service.http.auth import RateLimiter
from service.http.budget import TokenBudget, utc_today
from service.http.docs import mount_docs
from service.http.errors import install_error_handlers
from service.http.jobs import JobRunner
from service.http.mcp_server import mount_mcp
from service.http.metrics import Metrics, MetricsMiddleware
from service.http.middleware import BodyLimitMiddleware, RequestIdMiddleware
from service.http.origins import OriginPolicy
from service.http.routes import collections, documents, health, jobs, keys, search
from service.query.engine import Engine

__all__ = ["JSON_BODY_LIMIT", "create_app"]

JSON_BODY_LIMIT = 1024 * 1024  # queries are capped far below this; bodies above are abuse
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the uploaded bytes
_UPLOAD_PATH = re.compile(r"^/v1/collections/[^/]+/documents/?$")
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
log = logging.getLogger("ragsearch.http")


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Callable[[], float] = time.monotonic,
    today: Callable[[], date] = utc_today,
    writer_lock_timeout: float = 30.0,
    open_without_keys: bool = True,
    checkpoint_seconds: float = 30.0,
    job_poll_interval: float = 0.5,
) -> FastAPI:
    """The ragsearch HTTP service for `settings` (default: read from the environment).

    `clock` drives the per-key rate limits, `today` the daily token budgets.
    `writer_lock_timeout` is how long a write waits for another writer. With
    `open_without_keys` false, the service refuses every request while no API key exists
    (for servers bound beyond localhost). Every `checkpoint_seconds` the catalog's WAL is
    checkpointed, so commits of other writers reach the database file while this server
    keeps it open. `job_poll_interval` paces the event streams of ingestion jobs.
    """
    if settings is None:
        # pydantic-settings fills every field from the environment and defaults.
        settings = engine.settings if engine is not None else Settings()  # type: ignore[call-arg]

    app = FastAPI(
        title="ragsearch",
        summary="Hybrid search and cited answers over your documents.",
        version="0.1.0",
        lifespan=_lifespan(settings, engine, checkpoint_seconds),
        docs_url=None,  # served by service.http.docs from local assets
        redoc_url=None,  # ReDoc loads from a CDN
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.writer_index = None
    app.state.writer_lock_timeout = writer_lock_timeout
    app.state.job_poll_interval = job_poll_interval
    app.state.open_without_keys = open_without_keys
    app.state.origin_policy = OriginPolicy.from_settings(settings)
    app.state.rate_limiter = RateLimiter(clock)
    app.state.token_budget = TokenBudget(settings.key_daily_tokens, today)
    app.state.metrics = Metrics()
    install_redaction()
    install_error_handlers(app)
    _include_routes(app)
    _add_middleware(app, settings)
    return app


def _lifespan(settings: Settings, engine: Engine | None, checkpoint_seconds: float) -> Lifespan:
    """Open the engine (unless the caller brought one), checkpoint the WAL while serving, and
    close what the app opened."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        if owned:
            app.state.engine = Engine(settings)
        checkpoints = asyncio.create_task(_checkpoint_loop(app, checkpoint_seconds))
        # Models load in the background: /healthz answers at once, /readyz once they are in.
        loading = asyncio.create_task(asyncio.to_thread(app.state.engine.load_models))
        app.state.jobs = JobRunner(app.state)
        await asyncio.to_thread(app.state.jobs.recover)
        try:
            yield
        finally:
            await app.state.jobs.aclose()
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
            await loading
            if app.state.writer_index is not None:
                app.state.writer_index.close()
                app.state.writer_index = None
            if owned:
                await app.state.engine.aclose()
                app.state.engine = None

    return lifespan


async def _checkpoint_loop(app: FastAPI, seconds: float) -> None:
    """Checkpoint the catalog's WAL every `seconds` (PASSIVE: never blocks anyone)."""
    while True:
        await asyncio.sleep(seconds)
        engine: Engine | None = app.state.engine
        if engine is None:
            return
        try:
            await asyncio.to_thread(engine.index.catalog.checkpoint)
        except Exception:
            log.warning("WAL checkpoint failed; retrying later", exc_info=True)


def _include_routes(app: FastAPI) -> None:
    for module in (search, collections, documents, jobs, keys, health):
        app.include_router(module.router)
    app.include_router(openai_api.router)
    app.include_router(tools.router)
    app.include_router(widget.router)
    app.include_router(console.router)
    mount_mcp(app, app.state.origin_policy)
    mount_docs(app)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    def body_limit(scope: Scope) -> int:
        if scope.get("method") == "POST" and _UPLOAD_PATH.match(scope.get("path", "")):
            return settings.max_upload_bytes + MULTIPART_OVERHEAD
        return JSON_BODY_LIMIT

    # Added innermost first: request ids wrap metrics, which wrap the body limit.
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(widget.WidgetCorsMiddleware)
