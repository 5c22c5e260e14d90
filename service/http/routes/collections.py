"""`GET/POST /v1/collections`, `DELETE /v1/collections/{name}`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request

from indexer.collections import create_collection
from indexer.providers.factory import requested_embedder_spec
from service.http.deps import (
    EngineDep,
    PrincipalDep,
    authorize,
    forbid_widget,
    require_json,
    writing,
)
from service.http.schemas import ERROR_RESPONSES, CollectionBody

__all__ = ["router"]

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=ERROR_RESPONSES)


@router.get("")
async def list_collections(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    """Collections the key may read, with their embedder, chunking and document/chunk counts.

    Needs the `read` scope; a key limited to some collections sees only those. Widget keys
    may not list.
    """
    authorize(principal, "read")
    forbid_widget(principal)
    catalog = engine.index.catalog

    def rows() -> list[dict[str, Any]]:
        return [
            {
                **c.as_dict(),
                "documents": catalog.count_documents(c.id),
                "chunks": catalog.count_chunks(c.id),
            }
            for c in catalog.list_collections()
            if principal.collections is None or c.name in principal.collections
        ]

    return {"collections": await asyncio.to_thread(rows)}


@router.post("", status_code=201, dependencies=[Depends(require_json)])
async def create(
    body: CollectionBody,
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Create a collection. Its embedder, dimension and chunking are fixed from then on.

    The chunk size is capped by the embedder's input limit. 409 when the name exists.
    Needs the `admin` scope (on this name, for a key limited to collections).
    """
    authorize(principal, "admin", body.name)
    spec = requested_embedder_spec(
        engine.settings, body.embedder, body.model, body.dimensions, remote=True
    )
    async with writing(request, "create a collection") as index:
        created = await asyncio.to_thread(
            create_collection,
            index,
            engine.embedders,
            body.name,
            spec,
            chunk_tokens=body.chunk_tokens,
            overlap_sentences=body.overlap_sentences,
        )
    return created.as_dict()


@router.delete("/{name}")
async def drop(
    name: str,
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Drop a collection with all its documents, chunks and vectors. Needs `admin`."""
    authorize(principal, "admin", name)
    async with writing(request, "drop a collection") as index:
        dropped = await asyncio.to_thread(index.catalog.drop_collection, name)
        index.forget(dropped)
        if index is not engine.index:
            engine.index.forget(dropped)
    return {"deleted": dropped.name}
