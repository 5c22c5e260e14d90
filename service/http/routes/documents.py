"""Documents of a collection: upload (files, text or a URL; now or as a job), list, read, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from indexer.errors import ParseError, ProviderUnavailable, StorageError
from indexer.ingest import Ingestor, delete_documents
from indexer.json_values import MAX_ID
from service.http.deps import EngineDep, PrincipalDep, authorize, forbid_widget, writing
from service.http.errors import PROVIDER_MESSAGE, error_body, request_id
from service.http.jobs import JobRunner
from service.http.schemas import ERROR_RESPONSES, TextDocumentBody
from service.http.uploads import fetch_items, read_upload, url_policy
from service.query.document_view import chunk_info

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/collections/{name}/documents", tags=["documents"], responses=ERROR_RESPONSES
)

DocumentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The document's id.")]
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more files; the suffix picks the parser.",
                        },
                        "metadata": {
                            "type": "string",
                            "description": "Optional JSON object of metadata for every file.",
                        },
                        "async": {
                            "type": "string",
                            "description": "`true`: run as a background job (202 + job).",
                        },
                    },
                }
            },
            "application/json": {"schema": TextDocumentBody.model_json_schema()},
        },
    }
}


@router.post("", openapi_extra=_UPLOAD_BODY, status_code=201)
async def upload(
    name: str,
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
) -> JSONResponse:
    """Add or replace documents: `multipart/form-data` files (field `files`), JSON text, or a
    JSON `url` to download.

    A document's source is its file name (or the JSON `source`, or the URL); uploading the
    same source again replaces it, and identical content is skipped. Answers with the ingest
    report: 201 when something was added or updated, 200 when all was unchanged, 422 when
    every document failed (503 when the model provider could not embed them); per-document
    failures are listed in `failed`. With `async` (a form field `async=true`, or JSON
    `"async": true`) answers 202 at once with the `job`; follow it at `/v1/jobs/{id}`.
    413 over the upload limit, 415 for another content type or an unsupported file suffix,
    409 `locked` when another writer kept the lock too long; a URL aimed at a private,
    loopback or link-local address is refused (400 `url_refused`).
    Needs the `write` scope on the collection.
    """
    authorize(principal, "write", name)
    engine.index.catalog.get_collection(name)  # 404 before reading the body
    wanted = await read_upload(request, engine.settings)
    if wanted.run_async:
        runner: JobRunner = request.app.state.jobs
        job = await runner.submit(name, wanted)
        accepted = {"job": job.as_dict()}
        return JSONResponse(accepted, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})
    policy = url_policy(engine.settings)
    items = wanted.items + await fetch_items(wanted.urls, wanted.metadata, policy)
    async with writing(request, "upload") as index:
        collection = index.catalog.get_collection(name)
        embedder = engine.embedders.for_collection(collection)
        ingestor = await asyncio.to_thread(Ingestor, index, collection, embedder)
        try:
            report = await ingestor.run(items)
        except StorageError as exc:
            # 507 for a full disk, with the report of what landed before it filled.
            rid = request_id(request.scope)
            body = {**error_body(exc.code, exc.message, rid), "report": ingestor.report.as_dict()}
            return JSONResponse(body, status_code=exc.status)
    if report.failed and len(report.failed) == len(items):
        if any(f.provider for f in report.failed):
            reasons = "; ".join(f"{f.source}: {f.error}" for f in report.failed if f.provider)
            raise ProviderUnavailable(f"upload could not be embedded: {reasons}")
        reasons = "; ".join(f"{f.source}: {f.error}" for f in report.failed)
        raise ParseError(f"no document could be ingested: {reasons}")
    status = 201 if report.added or report.updated else 200
    body = report.as_dict()
    body["failed"] = [
        {"source": f.source, "error": PROVIDER_MESSAGE if f.provider else f.error}
        for f in report.failed
    ]
    return JSONResponse(body, status_code=status)


@router.get("")
async def list_documents(
    name: str,
    engine: EngineDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Documents per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Documents to skip.")] = 0,
    q: Annotated[
        str, Query(max_length=200, description="Only sources or titles containing this.")
    ] = "",
) -> dict[str, Any]:
    """Documents of the collection, by source: id, source, title, chunk count, media type,
    metadata, size and timestamps, with the `total` count (of matches, with `q`).
    Needs `read`; not widget keys."""
    authorize(principal, "read", name)
    forbid_widget(principal)
    catalog = engine.index.catalog
    needle = q.strip()

    def page() -> dict[str, Any]:
        collection = catalog.get_collection(name)
        docs = catalog.list_documents(collection.id, limit=limit, offset=offset, containing=needle)
        return {
            "documents": [d.as_dict() for d in docs],
            "total": catalog.count_documents(collection.id, containing=needle),
            "limit": limit,
            "offset": offset,
        }

    return await asyncio.to_thread(page)


@router.get("/{document_id}")
async def get_document(
    name: str,
    document_id: DocumentId,
    engine: EngineDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """One document with its chunk count and its text (rebuilt from its chunks).
    Needs `read`; not widget keys."""
    authorize(principal, "read", name)
    forbid_widget(principal)
    catalog = engine.index.catalog

    def read() -> dict[str, Any]:
        collection = catalog.get_collection(name)
        doc = catalog.get_document(collection.id, document_id)
        return {**doc.as_dict(), "text": catalog.document_text(doc.id)}

    return await asyncio.to_thread(read)


@router.get("/{document_id}/chunks")
async def document_chunks(
    name: str,
    document_id: DocumentId,
    engine: EngineDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Chunks per page.")] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Chunks to skip.")] = 0,
) -> dict[str, Any]:
    """The document's chunks in order: id, ordinal, text, heading path, page and character
    span, with the `total` count. Needs `read`; not widget keys."""
    authorize(principal, "read", name)
    forbid_widget(principal)
    catalog = engine.index.catalog

    def read() -> dict[str, Any]:
        collection = catalog.get_collection(name)
        doc = catalog.get_document(collection.id, document_id)
        ids = catalog.document_chunk_ids([doc.id])
        wanted = ids[offset : offset + limit]
        found = catalog.chunks_by_ids(wanted)
        return {
            "document_id": doc.id,
            "chunks": [chunk_info(found[i]) for i in wanted if i in found],
            "total": len(ids),
            "limit": limit,
            "offset": offset,
        }

    return await asyncio.to_thread(read)


@router.delete("/{document_id}")
async def delete_document(
    name: str,
    document_id: DocumentId,
    request: Request,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Delete a document with its chunks, text and vectors. Needs `write`."""
    authorize(principal, "write", name)
    async with writing(request, "delete a document") as index:
        collection = index.catalog.get_collection(name)
        await asyncio.to_thread(delete_documents, index, collection, [document_id])
    return {"deleted": document_id}
