"""Ingestion jobs run by the server: start, report progress, survive a restart, resume.

`JobRunner` lives on `app.state.jobs`. A job is a task on the server's event loop; it waits
for the writer lock like any writer (longer than a request would), ingests its staged files
or downloads its URLs, and writes its progress to the catalog as it goes, throttled, so
`GET /v1/jobs/{id}` on any replica sees it. At start-up, jobs this host was running when
its previous process died are marked `interrupted`; at shutdown, running ones are too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from indexer import jobs as store
from indexer.errors import Locked, RagsearchError, UrlFetchFailed, UrlRefused
from indexer.ingest import Ingestor, SourceItem
from indexer.progress import IngestProgress
from indexer.records import FailedSource, IngestReport
from service.http.deps import write_access
from service.http.errors import PROVIDER_MESSAGE
from service.http.uploads import UploadRequest, url_policy
from service.query.engine import Engine

__all__ = ["JobRunner"]

log = logging.getLogger("ragsearch.jobs")

JOB_LOCK_TIMEOUT = 3600.0  # a queued job waits this long for another writer to finish
LOCK_TRY_SECONDS = 1.0


class JobRunner:
    """Starts ingestion jobs as tasks and keeps them until they finish."""

    def __init__(
        self,
        state: Any,
        *,
        owner: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        save_every: float = 0.25,
    ) -> None:
        self.state = state
        self.owner = owner or store.process_owner()
        self.clock = clock
        self.save_every = save_every
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def engine(self) -> Engine:
        engine: Engine = self.state.engine
        return engine

    def recover(self) -> list[int]:
        """Mark this host's orphaned jobs `interrupted` (call once at start-up)."""
        return store.interrupt_orphans(self.engine.index.catalog, self.owner)

    async def submit(self, collection: str, upload: UploadRequest) -> store.Job:
        """Create, stage and start a job for `upload`; returns it queued."""
        catalog = self.engine.index.catalog
        data_dir = self.engine.settings.data_dir
        if upload.urls:
            manifest = store.url_manifest(upload.urls, upload.metadata)
            job = await asyncio.to_thread(
                store.create_job, catalog, collection, "url", manifest, self.owner
            )
        else:
            manifest = store.upload_manifest(upload.items)
            job = await asyncio.to_thread(
                store.create_job, catalog, collection, "upload", manifest, self.owner
            )
            await asyncio.to_thread(store.stage_files, data_dir, job, upload.items)
        self.start(job.id)
        return job

    async def resume(self, job_id: int) -> store.Job:
        """Queue an interrupted or failed job again and start it."""
        catalog = self.engine.index.catalog
        job = await asyncio.to_thread(store.claim_for_resume, catalog, job_id, self.owner)
        self.start(job.id)
        return job

    def start(self, job_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def aclose(self) -> None:
        """Stop running jobs; each is left `interrupted`, to resume after the restart."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one job ---------------------------------------------------------------------------

    async def _run(self, job_id: int) -> None:
        catalog = self.engine.index.catalog
        job = await asyncio.to_thread(store.get_job, catalog, job_id)
        total = len(job.manifest)
        progress = store.JobProgress(files_total=total)
        try:
            await asyncio.to_thread(store.set_progress, catalog, job_id, progress)
            items, failures = await self._items(job)
            progress = store.JobProgress(total, len(failures), len(failures))
            report = await self._ingest(job, items, progress, failures)
            progress = store.JobProgress.during(total, total, report)
            await asyncio.to_thread(store.finish_job, catalog, job_id, progress, report)
            if not report.failed:
                await asyncio.to_thread(store.remove_staged, self.engine.settings.data_dir, job_id)
        except asyncio.CancelledError:
            await asyncio.to_thread(
                store.mark_interrupted, catalog, job_id, "the server stopped; resume it"
            )
            raise
        except RagsearchError as exc:
            await asyncio.to_thread(store.finish_job, catalog, job_id, progress, None, exc.message)
        except Exception:
            log.exception("ingestion job %s failed", job_id)
            await asyncio.to_thread(
                store.finish_job, catalog, job_id, progress, None, "internal error; see the log"
            )

    async def _items(self, job: store.Job) -> tuple[list[SourceItem], list[FailedSource]]:
        if job.kind == "upload":
            data_dir = self.engine.settings.data_dir
            return store.staged_items(data_dir, job), []
        from indexer.url_fetch import fetch_url

        policy = url_policy(self.engine.settings)
        items: list[SourceItem] = []
        failures: list[FailedSource] = []
        for entry in job.manifest:
            try:
                page = await fetch_url(entry["url"], policy)
            except (UrlRefused, UrlFetchFailed) as exc:
                failures.append(FailedSource(entry["source"], exc.message))
                continue
            metadata = dict(entry.get("metadata") or {})
            items.append(
                SourceItem(entry["source"], page.filename, data=page.data, metadata=metadata)
            )
        return items, failures

    async def _ingest(
        self,
        job: store.Job,
        items: list[SourceItem],
        start: store.JobProgress,
        failures: list[FailedSource],
    ) -> IngestReport:
        catalog = self.engine.index.catalog
        last_saved = self.clock()
        ingestor: Ingestor | None = None

        def advance(state: IngestProgress) -> None:
            nonlocal last_saved
            if ingestor is None or self.clock() - last_saved < self.save_every:
                return
            last_saved = self.clock()
            progress = store.JobProgress(
                files_total=start.files_total,
                files_done=start.files_done + state.files_done,
                files_failed=len(failures) + len(ingestor.report.failed),
                chunks_embedded=state.chunks_done,
                vectors_computed=ingestor.report.embedded,
            )
            store.set_progress(catalog, job.id, progress)

        waited_until = self.clock() + JOB_LOCK_TIMEOUT
        while True:
            # Short tries, so a shutdown never waits on a lock thread for long.
            try:
                async with write_access(
                    self.state, self.engine, "run an ingestion job", LOCK_TRY_SECONDS
                ) as index:
                    collection = index.catalog.get_collection(job.collection)
                    embedder = self.engine.embedders.for_collection(collection)
                    ingestor = await asyncio.to_thread(
                        Ingestor, index, collection, embedder, on_progress=advance
                    )
                    report = await ingestor.run(items) if items else ingestor.report
                break
            except Locked:
                if ingestor is not None or self.clock() > waited_until:
                    raise
        report.failed[:0] = failures
        # As a direct upload: a provider's detail stays in the log, callers see one message.
        report.failed = [
            FailedSource(f.source, PROVIDER_MESSAGE, provider=True) if f.provider else f
            for f in report.failed
        ]
        return report
