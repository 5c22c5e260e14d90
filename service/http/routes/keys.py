"""`GET/POST /v1/keys`, `DELETE /v1/keys/{key_id}`: API keys over HTTP, for admin keys only."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from indexer.errors import Forbidden, InputError
from indexer.json_values import MAX_ID
from service.http.auth import create_key, list_keys, revoke_key_id
from service.http.deps import (
    EngineDep,
    Principal,
    PrincipalDep,
    authorize,
    forbid_widget,
    require_json,
)
from service.http.schemas import ERROR_RESPONSES

__all__ = ["KeyBody", "router"]

Scope = Literal["read", "write", "admin", "documents"]
KeyId = Annotated[int, Path(ge=1, le=MAX_ID, description="The key's id.")]

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=ERROR_RESPONSES)


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=128, description="A name to recognise the key.")
    scopes: list[Scope] = Field(
        default_factory=lambda: list[Scope](["read"]),
        description="`read`, `write`, `admin` (admin implies write implies read).",
    )
    collections: list[str] | None = Field(
        None, description="Limit the key to these collections; default every collection."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins of a widget key (read only, exactly one collection).",
    )
    rate_per_minute: float | None = Field(None, gt=0, description="Requests per minute.")


def _admin_everywhere(principal: Principal) -> None:
    """Keys may reach every collection, so only an admin key without limits manages them."""
    authorize(principal, "admin")
    forbid_widget(principal)
    if principal.collections is not None:
        raise Forbidden(f"key {principal.name!r} is limited to some collections; keys need more")


@router.get("")
async def keys(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    """Every key, revoked ones included (never their secrets). Needs an unlimited `admin` key."""
    _admin_everywhere(principal)
    found = await asyncio.to_thread(list_keys, engine.index.catalog)
    return {"keys": [k.as_dict() for k in found]}


@router.post("", status_code=201, dependencies=[Depends(require_json)])
async def create(body: KeyBody, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    """Create a key; the response's `key` is its secret, shown only this once."""
    _admin_everywhere(principal)
    catalog = engine.index.catalog

    def make() -> dict[str, Any]:
        for name in body.collections or ():
            catalog.get_collection(name)
        secret, key = create_key(
            catalog,
            body.name,
            body.scopes,
            collections=body.collections,
            allowed_origins=body.allowed_origins,
            rate_per_minute=body.rate_per_minute,
        )
        return {**key.as_dict(), "key": secret}

    return await asyncio.to_thread(make)


@router.delete("/{key_id}")
async def revoke(key_id: KeyId, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    """Revoke the key with this id at once. 404 when no active key has it."""
    _admin_everywhere(principal)
    if principal.key_id == key_id:
        raise InputError("a key cannot revoke itself; sign in with another admin key")
    await asyncio.to_thread(revoke_key_id, engine.index.catalog, key_id)
    return {"revoked": key_id}
