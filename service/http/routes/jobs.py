"""`GET /v1/jobs`, `GET /v1/jobs/{id}`, its event stream, and `POST /v1/jobs/{id}/resume`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from indexer import jobs as store
from indexer.json_values import MAX_ID
from service.http.deps import EngineDep, PrincipalDep, authorize, forbid_widget
from service.http.jobs import JobRunner
from service.http.routes.search import sse_event
from service.http.schemas import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="The job's id.")]


@router.get("")
async def list_jobs(
    engine: EngineDep,
    principal: PrincipalDep,
    collection: Annotated[str | None, Query(description="Only this collection's jobs.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Jobs to return, newest first.")] = 50,
) -> dict[str, Any]:
    """Ingestion jobs, newest first, that the key may read. Needs `read`; not widget keys."""
    authorize(principal, "read", collection)
    forbid_widget(principal)
    found = await asyncio.to_thread(
        store.list_jobs, engine.index.catalog, limit=limit, collection=collection
    )
    allowed = principal.collections
    return {"jobs": [j.as_dict() for j in found if allowed is None or j.collection in allowed]}


async def _readable_job(engine: Any, principal: Any, job_id: int) -> store.Job:
    job = await asyncio.to_thread(store.get_job, engine.index.catalog, job_id)
    authorize(principal, "read", job.collection)
    forbid_widget(principal)
    return job


@router.get("/{job_id}")
async def get_job(job_id: JobId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    """One job: `status` (queued, running, done, failed, interrupted), `progress` (files
    parsed of total, failures, chunks embedded, vectors computed), the `report` when done,
    the `error` when it failed. Needs `read` on its collection."""
    job = await _readable_job(engine, principal, job_id)
    return job.as_dict()


@router.get(
    "/{job_id}/events",
    responses={200: {"description": "Server-Sent Events", "content": {"text/event-stream": {}}}},
)
async def job_events(
    job_id: JobId, request: Request, engine: EngineDep, principal: PrincipalDep
) -> StreamingResponse:
    """Server-Sent Events: `progress` with the job each time it changes, then one `done`
    with the finished job (done, failed or interrupted). Needs `read` on its collection."""
    first = await _readable_job(engine, principal, job_id)
    interval: float = request.app.state.job_poll_interval

    async def events() -> AsyncIterator[bytes]:
        job, seen = first, ""
        while True:
            if job.finished:
                yield sse_event("done", job.as_dict())
                return
            if job.updated_at != seen:
                seen = job.updated_at
                yield sse_event("progress", job.as_dict())
            await asyncio.sleep(interval)
            if await request.is_disconnected():
                return
            job = await asyncio.to_thread(store.get_job, engine.index.catalog, job_id)

    return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)


@router.post("/{job_id}/resume", status_code=202)
async def resume(
    job_id: JobId, request: Request, engine: EngineDep, principal: PrincipalDep
) -> JSONResponse:
    """Run an interrupted (or failed) job again: what landed before is skipped, the rest is
    ingested. 409 for a job that is queued, running or done. Needs `write` on its collection."""
    job = await asyncio.to_thread(store.get_job, engine.index.catalog, job_id)
    authorize(principal, "write", job.collection)
    runner: JobRunner = request.app.state.jobs
    resumed = await runner.resume(job_id)
    return _accepted(resumed)


def _accepted(job: store.Job) -> JSONResponse:
    return JSONResponse(
        {"job": job.as_dict()}, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
    )
