"""Documents of a collection: upload (multipart files or JSON text), list, read, delete."""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from indexer.errors import (
    InputError,
    ParseError,
    PayloadTooLarge,
    ProviderUnavailable,
    StorageError,
    UnsupportedMediaType,
)
from indexer.ingest import Ingestor, SourceItem, delete_documents
from indexer.json_values import MAX_ID, check_json_value, check_text, parse_json_object
from indexer.parsers import SUPPORTED_SUFFIXES, media_type_for
from indexer.settings import Settings
from service.http.deps import EngineDep, PrincipalDep, authorize, forbid_widget, writing
from service.http.errors import PROVIDER_MESSAGE, error_body, request_id
from service.http.schemas import ERROR_RESPONSES, TextDocumentBody

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/collections/{name}/documents", tags=["documents"], responses=ERROR_RESPONSES
)

MAX_FILES = 100
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
    """Add or replace documents: `multipart/form-data` files (field `files`), or JSON text.

    A document's source is its file name (or the JSON `source`); uploading the same source
    again replaces it, and identical content is skipped. Answers with the ingest report:
    201 when something was added or updated, 200 when all was unchanged, 422 when every
    document failed (503 when the model provider could not embed them); per-document
    failures are listed in `failed`. 413 over the upload limit, 415 for another content type
    or an unsupported file suffix, 409 `locked` when another writer kept the lock too long.
    Needs the `write` scope on the collection.
    """
    authorize(principal, "write", name)
    engine.index.catalog.get_collection(name)  # 404 before reading the body
    items = await _read_items(request, engine.settings)
    async with writing(request) as index:
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


async def _read_items(request: Request, settings: Settings) -> list[SourceItem]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return await _files(request, settings)
    if media == "application/json":
        return [_text_item(await request.body(), settings)]
    raise UnsupportedMediaType(
        f"upload files as multipart/form-data or text as application/json (got {media or 'none'})"
    )


async def _files(request: Request, settings: Settings) -> list[SourceItem]:
    limit = settings.max_upload_bytes
    async with request.form(max_files=MAX_FILES, max_fields=MAX_FILES) as form:
        uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not uploads:
            raise InputError("send one or more files in the multipart field `files`")
        metadata = _metadata(form.get("metadata"))
        items = []
        for upload in uploads:
            filename = PurePosixPath((upload.filename or "").replace("\\", "/")).name
            media_type_for(filename)  # 415 for an unsupported suffix, before any work
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"{filename!r} is over the upload limit of {limit:,} bytes")
            items.append(SourceItem(filename, filename, data=data, metadata=dict(metadata)))
    return items


def _metadata(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise InputError("metadata: expected a JSON object as a form field, not a file")
    return parse_json_object(raw, "metadata")


def _text_item(raw: bytes, settings: Settings) -> SourceItem:
    try:
        body = TextDocumentBody.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    for where, text in (("source", body.source), ("text", body.text)):
        check_text(text, where)
    check_text(body.filename or "", "filename")
    check_json_value(body.metadata, "metadata")
    data = body.text.encode("utf-8")
    if len(data) > settings.max_upload_bytes:
        limit = settings.max_upload_bytes
        raise PayloadTooLarge(f"text is over the upload limit of {limit:,} bytes")
    filename = body.filename or PurePosixPath(body.source).name
    if PurePosixPath(filename).suffix.lower() not in SUPPORTED_SUFFIXES:
        filename = "document.txt" if body.filename is None else filename
    media_type_for(filename)
    return SourceItem(body.source, filename, data=data, metadata=body.metadata)


@router.get("")
async def list_documents(
    name: str,
    engine: EngineDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Documents per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Documents to skip.")] = 0,
) -> dict[str, Any]:
    """Documents of the collection, by source: id, source, title, chunk count, media type,
    metadata, size and timestamps, with the `total` count. Needs `read`; not widget keys."""
    authorize(principal, "read", name)
    forbid_widget(principal)
    catalog = engine.index.catalog

    def page() -> dict[str, Any]:
        collection = catalog.get_collection(name)
        docs = catalog.list_documents(collection.id, limit=limit, offset=offset)
        return {
            "documents": [d.as_dict() for d in docs],
            "total": catalog.count_documents(collection.id),
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


@router.delete("/{document_id}")
async def delete_document(
    name: str,
    document_id: DocumentId,
    request: Request,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Delete a document with its chunks, text and vectors. Needs `write`."""
    authorize(principal, "write", name)
    async with writing(request) as index:
        collection = index.catalog.get_collection(name)
        await asyncio.to_thread(delete_documents, index, collection, [document_id])
    return {"deleted": document_id}
