"""Reading an upload request: multipart files, JSON text or a JSON URL, run now or as a job.

Limits are enforced while reading (413 over the upload limit, 415 for an unsupported file
suffix or content type), before any ingest work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from indexer.errors import InputError, PayloadTooLarge, UnsupportedMediaType, UrlRefused
from indexer.ingest import SourceItem
from indexer.json_values import check_json_value, check_text, parse_json_object
from indexer.parsers import SUPPORTED_SUFFIXES, media_type_for
from indexer.settings import Settings
from indexer.url_fetch import UrlPolicy, fetch_url, is_url
from service.http.schemas import TextDocumentBody

__all__ = ["MAX_FILES", "UploadRequest", "fetch_items", "read_upload", "url_policy"]

MAX_FILES = 100
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What an upload asks for: file or text items, or URLs to fetch; now or as a job."""

    items: list[SourceItem] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    run_async: bool = False

    @property
    def count(self) -> int:
        return len(self.items) + len(self.urls)


async def read_upload(request: Request, settings: Settings) -> UploadRequest:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return await _files(request, settings)
    if media == "application/json":
        return _json_body(await request.body(), settings)
    raise UnsupportedMediaType(
        f"upload files as multipart/form-data or text as application/json (got {media or 'none'})"
    )


async def _files(request: Request, settings: Settings) -> UploadRequest:
    limit = settings.max_upload_bytes
    async with request.form(max_files=MAX_FILES, max_fields=MAX_FILES) as form:
        uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not uploads:
            raise InputError("send one or more files in the multipart field `files`")
        metadata = _metadata(form.get("metadata"))
        run_async = str(form.get("async") or "").strip().lower() in _TRUE
        items = []
        for upload in uploads:
            filename = PurePosixPath((upload.filename or "").replace("\\", "/")).name
            media_type_for(filename)  # 415 for an unsupported suffix, before any work
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"{filename!r} is over the upload limit of {limit:,} bytes")
            items.append(SourceItem(filename, filename, data=data, metadata=dict(metadata)))
    return UploadRequest(items=items, metadata=metadata, run_async=run_async)


def _metadata(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise InputError("metadata: expected a JSON object as a form field, not a file")
    return parse_json_object(raw, "metadata")


def _json_body(raw: bytes, settings: Settings) -> UploadRequest:
    try:
        body = TextDocumentBody.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    for where, text in (("source", body.source), ("text", body.text), ("url", body.url)):
        check_text(text or "", where)
    check_text(body.filename or "", "filename")
    if body.source is not None and "\x00" in body.source:  # PostgreSQL text cannot hold it
        raise InputError("source: contains a NUL character")
    check_json_value(body.metadata, "metadata")
    if body.url is not None:
        if not is_url(body.url):  # refused now, not later inside a job
            raise UrlRefused(f"{body.url}: only http:// and https:// URLs can be ingested")
        return UploadRequest(urls=[body.url], metadata=body.metadata, run_async=body.run_async)
    assert body.text is not None and body.source is not None  # checked by the model
    data = body.text.encode("utf-8")
    if len(data) > settings.max_upload_bytes:
        limit = settings.max_upload_bytes
        raise PayloadTooLarge(f"text is over the upload limit of {limit:,} bytes")
    filename = body.filename or PurePosixPath(body.source).name
    if PurePosixPath(filename).suffix.lower() not in SUPPORTED_SUFFIXES:
        filename = "document.txt" if body.filename is None else filename
    media_type_for(filename)
    item = SourceItem(body.source, filename, data=data, metadata=body.metadata)
    return UploadRequest(items=[item], metadata=body.metadata, run_async=body.run_async)


def url_policy(settings: Settings) -> UrlPolicy:
    return UrlPolicy.from_settings(
        min(settings.max_file_bytes, settings.max_upload_bytes),
        settings.url_fetch_timeout,
        settings.url_fetch_allowed_networks,
    )


async def fetch_items(
    urls: list[str], metadata: dict[str, Any], policy: UrlPolicy
) -> list[SourceItem]:
    """Download each URL as an ingest item named by its URL; the first failure raises."""
    items = []
    for url in urls:
        page = await fetch_url(url, policy)
        items.append(SourceItem(url, page.filename, data=page.data, metadata=dict(metadata)))
    return items
