"""`GET /healthz` (the process answers), `GET /readyz` (index usable), `GET /metrics`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from service.http.deps import EngineDep, MetricsDep, Principal, PrincipalDep, authorize
from service.http.errors import error_body, request_id
from service.http.metrics import Metrics
from service.http.schemas import CALLER_ERRORS, error_responses
from service.query.engine import Engine

__all__ = ["router"]

router = APIRouter(tags=["health"])
_COLLECTION = "collection:"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Always `{"status": "ok"}` while the process serves requests. Needs no key."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        **error_responses(*CALLER_ERRORS),
        503: {"description": "Catalog unreachable or index stale (`not_ready`, with `checks`)"},
    },
)
async def readyz(
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """200 when the models are loaded, the catalog answers and every collection's vectors
    match its chunks: the vectors this process serves (brought up to date with the catalog
    first) or, for a collection it has not opened yet, the saved file.

    Otherwise 503 in the error body (`not_ready`) with the failing `checks`. Needs any valid
    key once keys exist. The checks list only collections the key may read (a widget key sees
    none); the status still covers them all, and a failing collection the key may not read is
    counted, not named.
    """
    checks = await asyncio.to_thread(_checks, engine)
    shown = [_models_check(engine, principal) if c["name"] == "models" else c for c in checks]
    shown = [c for c in shown if _may_see(principal, c["name"])]
    if all(c["ok"] for c in checks):
        return JSONResponse({"status": "ready", "checks": shown})
    failing = [c["name"] for c in shown if not c["ok"]]
    hidden = sum(1 for c in checks if not c["ok"]) - len(failing)
    if hidden:
        failing.append(f"{hidden} collection(s) this key may not read")
    message = f"not ready: {', '.join(failing)}"
    body = error_body("not_ready", message, request_id(request.scope))
    return JSONResponse({**body, "checks": shown}, status_code=503)


def _may_see(principal: Principal, check: str) -> bool:
    if not check.startswith(_COLLECTION):
        return True
    if principal.is_widget:
        return False
    name = check.removeprefix(_COLLECTION)
    return principal.collections is None or name in principal.collections


def _models_check(engine: Engine, principal: Principal | None = None) -> dict[str, Any]:
    """Whether every collection's local model has loaded; names only what `principal` may
    read (None: everything)."""
    if not engine.models_loaded.is_set():
        return {"name": "models", "ok": False, "detail": "loading"}
    if not engine.model_errors:
        return {"name": "models", "ok": True}
    named = [
        f"{name}: {why}"
        for name, why in engine.model_errors.items()
        if principal is None or _may_see(principal, _COLLECTION + name)
    ]
    hidden = len(engine.model_errors) - len(named)
    if hidden:
        named.append(f"{hidden} collection(s) this key may not read")
    return {"name": "models", "ok": False, "detail": "; ".join(named)}


def _checks(engine: Engine) -> list[dict[str, Any]]:
    catalog, *collections = _index_checks(engine)
    return [catalog, _models_check(engine), *collections]


def _index_checks(engine: Engine) -> list[dict[str, Any]]:
    index = engine.index
    try:
        collections = index.catalog.list_collections()
    except Exception as exc:
        return [{"name": "catalog", "ok": False, "detail": f"{type(exc).__name__}: {exc}"}]
    checks: list[dict[str, Any]] = [{"name": "catalog", "ok": True}]
    for collection in collections:
        try:
            status = index.status(collection)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            checks.append({"name": f"collection:{collection.name}", "ok": False, "detail": detail})
            continue
        checks.append(
            {
                "name": f"collection:{collection.name}",
                "ok": status.consistent,
                "documents": status.documents,
                "chunks": status.chunks,
                "vectors": status.vectors,
                "checksum": status.checksum,
                "notes": status.notes,
            }
        )
    return checks


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **error_responses(*CALLER_ERRORS),
    },
)
async def metrics(registry: MetricsDep, principal: PrincipalDep) -> Response:
    """Prometheus text format: requests and latency by route and status, search stage
    latencies, model tokens by model. Needs the `admin` scope once keys exist."""
    authorize(principal, "admin")
    return Response(registry.render(), media_type=Metrics.content_type)
