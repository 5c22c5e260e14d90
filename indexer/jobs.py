"""Ingestion jobs in the catalog: what to ingest, where it stands, how it ended.

A job's manifest says what to ingest: uploaded files staged under DATA_DIR/jobs/ID/, or
URLs. Progress (files parsed, chunks written, vectors embedded, failures) is written as the
job runs, so any replica sharing the catalog can report it. A job whose process died is
marked `interrupted` when its host's server starts again; resuming runs the manifest again,
and ingest being idempotent, what landed before is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import insert, select, update

from indexer.catalog import Catalog
from indexer.errors import Conflict, NotFound
from indexer.ingest import SourceItem
from indexer.records import IngestReport
from indexer.schema import ingest_jobs

__all__ = [
    "ACTIVE",
    "Job",
    "JobKind",
    "JobProgress",
    "claim_for_resume",
    "create_job",
    "finish_job",
    "get_job",
    "interrupt_orphans",
    "list_jobs",
    "mark_interrupted",
    "process_owner",
    "remove_staged",
    "set_progress",
    "stage_files",
    "staged_items",
    "upload_manifest",
    "url_manifest",
]

JobKind = Literal["upload", "url"]
ACTIVE = ("queued", "running")


def process_owner() -> str:
    """`host:pid`, naming the process that runs a job."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class JobProgress:
    files_total: int
    files_done: int = 0
    files_failed: int = 0
    chunks_embedded: int = 0  # chunks written with their vectors
    vectors_computed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_total": self.files_total,
            "files_done": self.files_done,
            "files_failed": self.files_failed,
            "chunks_embedded": self.chunks_embedded,
            "vectors_computed": self.vectors_computed,
        }

    @classmethod
    def during(cls, total: int, done: int, report: IngestReport) -> JobProgress:
        return cls(total, done, len(report.failed), report.chunks, report.embedded)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    collection: str
    kind: str
    status: str
    owner: str
    progress: JobProgress
    manifest: list[dict[str, Any]] = field(repr=False)
    report: dict[str, Any] | None
    error: str | None
    created_at: str
    updated_at: str

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "interrupted")

    def as_dict(self) -> dict[str, Any]:
        """What HTTP shows (the manifest's sources, never staged paths)."""
        return {
            "id": self.id,
            "collection": self.collection,
            "kind": self.kind,
            "status": self.status,
            "sources": [m["source"] for m in self.manifest],
            "progress": self.progress.as_dict(),
            "report": self.report,
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _job(m: Any) -> Job:
    p = dict(m["progress"] or {})
    return Job(
        id=int(m["id"]),
        collection=m["collection"],
        kind=m["kind"],
        status=m["status"],
        owner=m["owner"],
        progress=JobProgress(
            files_total=int(p.get("files_total", 0)),
            files_done=int(p.get("files_done", 0)),
            files_failed=int(p.get("files_failed", 0)),
            chunks_embedded=int(p.get("chunks_embedded", 0)),
            vectors_computed=int(p.get("vectors_computed", 0)),
        ),
        manifest=list(m["manifest"] or []),
        report=m["report"],
        error=m["error"],
        created_at=_iso(m["created_at"]),
        updated_at=_iso(m["updated_at"]),
    )


def create_job(
    catalog: Catalog, collection: str, kind: JobKind, manifest: list[dict[str, Any]], owner: str
) -> Job:
    """A queued job; the caller stages its files (`stage_files`) before starting it."""
    now = _now()
    with catalog.engine.begin() as conn:
        result = conn.execute(
            insert(ingest_jobs).values(
                collection=collection,
                kind=kind,
                status="queued",
                owner=owner,
                manifest=manifest,
                progress=JobProgress(files_total=len(manifest)).as_dict(),
                created_at=now,
                updated_at=now,
            )
        )
        pk = result.inserted_primary_key
        assert pk is not None
    return get_job(catalog, int(pk[0]))


def get_job(catalog: Catalog, job_id: int) -> Job:
    with catalog.engine.connect() as conn:
        row = conn.execute(select(ingest_jobs).where(ingest_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no ingestion job {job_id}")
    return _job(row._mapping)


def list_jobs(catalog: Catalog, *, limit: int = 50, collection: str | None = None) -> list[Job]:
    """Newest first."""
    stmt = select(ingest_jobs).order_by(ingest_jobs.c.id.desc()).limit(limit)
    if collection is not None:
        stmt = stmt.where(ingest_jobs.c.collection == collection)
    with catalog.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [_job(r._mapping) for r in rows]


def _set(catalog: Catalog, job_id: int, **values: Any) -> None:
    with catalog.engine.begin() as conn:
        conn.execute(
            update(ingest_jobs)
            .where(ingest_jobs.c.id == job_id)
            .values(updated_at=_now(), **values)
        )


def set_progress(
    catalog: Catalog, job_id: int, progress: JobProgress, status: str = "running"
) -> None:
    _set(catalog, job_id, status=status, progress=progress.as_dict())


def finish_job(
    catalog: Catalog,
    job_id: int,
    progress: JobProgress,
    report: IngestReport | None,
    error: str | None = None,
) -> None:
    """`done` with the report; `failed` with an error, or when every file failed."""
    all_failed = report is not None and len(report.failed) == progress.files_total > 0
    status = "failed" if error is not None or all_failed else "done"
    _set(
        catalog,
        job_id,
        status=status,
        progress=progress.as_dict(),
        report=None if report is None else report.as_dict(),
        error=error,
    )


def mark_interrupted(catalog: Catalog, job_id: int, reason: str) -> None:
    """The job's process is stopping before the job finished: resume it later."""
    _set(catalog, job_id, status="interrupted", error=reason)


def interrupt_orphans(catalog: Catalog, owner: str) -> list[int]:
    """Mark queued or running jobs of dead processes on this host as `interrupted`.

    A job belongs to `host:pid`; on start-up every active job of this host whose pid is not
    ours lost its process. Jobs of other hosts (other replicas) are left alone.
    """
    host = owner.rsplit(":", 1)[0]
    with catalog.engine.begin() as conn:
        rows = conn.execute(
            select(ingest_jobs.c.id, ingest_jobs.c.owner).where(ingest_jobs.c.status.in_(ACTIVE))
        ).all()
        orphans = [int(r[0]) for r in rows if r[1].rsplit(":", 1)[0] == host and r[1] != owner]
        if orphans:
            conn.execute(
                update(ingest_jobs)
                .where(ingest_jobs.c.id.in_(orphans))
                .values(
                    status="interrupted",
                    error="the server stopped while this job ran; resume it to finish",
                    updated_at=_now(),
                )
            )
    return orphans


def claim_for_resume(catalog: Catalog, job_id: int, owner: str) -> Job:
    """Queue an interrupted or failed job again, now owned by `owner`; Conflict otherwise."""
    with catalog.engine.begin() as conn:
        result = conn.execute(
            update(ingest_jobs)
            .where(
                ingest_jobs.c.id == job_id,
                ingest_jobs.c.status.in_(("interrupted", "failed")),
            )
            .values(status="queued", owner=owner, error=None, updated_at=_now())
        )
    if result.rowcount == 0:
        job = get_job(catalog, job_id)  # NotFound for an unknown id
        raise Conflict(f"job {job_id} is {job.status}; only interrupted or failed jobs resume")
    return get_job(catalog, job_id)


# --- staged uploads ------------------------------------------------------------------------


def job_dir(data_dir: Path, job_id: int) -> Path:
    return data_dir / "jobs" / str(job_id)


def upload_manifest(items: list[SourceItem]) -> list[dict[str, Any]]:
    """The manifest of an upload job: each file's source, parser name, staged name, metadata."""
    return [
        {"source": i.source, "filename": i.filename, "staged": f"{n:05d}", "metadata": i.metadata}
        for n, i in enumerate(items)
    ]


def url_manifest(urls: list[str], metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"source": url, "url": url, "metadata": metadata} for url in urls]


def stage_files(data_dir: Path, job: Job, items: list[SourceItem]) -> None:
    """Write uploaded bytes under DATA_DIR/jobs/ID/ so the job survives a restart."""
    folder = job_dir(data_dir, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    for entry, item in zip(job.manifest, items, strict=True):
        (folder / entry["staged"]).write_bytes(item.data or b"")


def staged_items(data_dir: Path, job: Job) -> list[SourceItem]:
    """The job's uploads as ingest items, read from their staged files."""
    folder = job_dir(data_dir, job.id)
    return [
        SourceItem(
            m["source"],
            m["filename"],
            path=folder / m["staged"],
            metadata=dict(m.get("metadata") or {}),
        )
        for m in job.manifest
    ]


def remove_staged(data_dir: Path, job_id: int) -> None:
    shutil.rmtree(job_dir(data_dir, job_id), ignore_errors=True)
