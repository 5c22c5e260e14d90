"""The MCP server: tools `search`, `answer` and `list_collections` over the query engine.

Served two ways from one definition: streamable HTTP at `/mcp` on the FastAPI app (stateless,
JSON responses, so replicas keep no session state; a bearer key with the read scope is
required once keys exist), and stdio for `ragsearch mcp`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast

from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from indexer.errors import RagsearchError
from indexer.settings import Settings
from service.http.auth import Principal, authorize, forbid_widget, open_principal
from service.http.budget import TokenBudget
from service.http.errors import public_error
from service.http.origins import OriginPolicy
from service.query.engine import Engine
from service.query.records import (
    ANSWER_TOP_K,
    MAX_TOP_K,
    SEARCH_TOP_K,
    AnswerRequest,
    SearchRequest,
    hit_dict,
)

__all__ = ["Caller", "build_server", "mount_mcp", "serve_stdio"]

MCP_PATH = "/mcp"
_INSTRUCTIONS = (
    "ragsearch searches a document knowledge base. Call list_collections to see what exists, "
    "search for ranked passages with their sources, or answer for a cited answer ([n] markers "
    "matching the citations list)."
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The engine a tool call runs on, who is calling, and the keys' daily token budgets."""

    engine: Engine
    principal: Principal
    budget: TokenBudget | None = None


CallerFor = Callable[[Context], Caller]
Tool = TypeVar("Tool", bound=Callable[..., Awaitable[Any]])

Query = Annotated[str, Field(description="What to search for (English, Chinese, identifiers).")]
CollectionName = Annotated[
    str, Field(description="The collection to use (list_collections names them).")
]
Filter = Annotated[
    dict[str, Any] | None,
    Field(
        description="Metadata filter: {field: value} or operators $eq $ne $in $gt $gte $lt "
        "$lte combined with $and/$or. Fields: source, title, media_type, document_id or any "
        "metadata key."
    ),
]


def _search_dict(hit: dict[str, Any]) -> dict[str, Any]:
    keep = ("chunk_id", "document_id", "source", "title", "heading_path", "page", "text", "score")
    return {k: hit[k] for k in keep}


def _tool_error(exc: RagsearchError) -> ToolError:
    _, code, message = public_error(exc, "mcp")
    return ToolError(f"{code}: {message}")


def build_server(caller_for: CallerFor) -> MCPServer:
    """An MCP server whose tools run on the engine and principal `caller_for` returns."""
    # WARNING: MCPServer configures root logging at this level if nothing else has.
    server: MCPServer = MCPServer("ragsearch", instructions=_INSTRUCTIONS, log_level="WARNING")

    async def search(
        ctx: Context,
        query: Query,
        collection: CollectionName,
        top_k: Annotated[
            int, Field(ge=1, le=MAX_TOP_K, description="Passages to return.")
        ] = SEARCH_TOP_K,
        filter: Filter = None,
    ) -> dict[str, Any]:
        """Search a collection: ranked passages with source, title, text and score."""
        caller = caller_for(ctx)
        authorize(caller.principal, "read", collection)
        found = await caller.engine.search(
            SearchRequest(query=query, collection=collection, top_k=top_k, filter=filter)
        )
        return {
            "results": [_search_dict(hit_dict(h)) for h in found.hits],
            "warnings": found.warnings,
        }

    async def answer(
        ctx: Context,
        query: Annotated[str, Field(description="The question, in English or Chinese.")],
        collection: CollectionName,
        top_k: Annotated[
            int, Field(ge=1, le=MAX_TOP_K, description="Sources to consider.")
        ] = ANSWER_TOP_K,
        filter: Filter = None,
    ) -> dict[str, Any]:
        """Answer a question from a collection, citing sources as [n] (see `citations`).

        `grounded` is false when the knowledge base does not hold the answer: the answer then
        says so and `warnings` says why.
        """
        caller = caller_for(ctx)
        authorize(caller.principal, "read", collection)
        if caller.budget is not None:
            await caller.budget.check(caller.engine.index.catalog, caller.principal)
        body = await caller.engine.answer(
            AnswerRequest(query=query, collection=collection, top_k=top_k, filter=filter)
        )
        full = body.as_dict()
        if caller.budget is not None:
            await caller.budget.charge(caller.engine.index.catalog, caller.principal, full["usage"])
        keep = ("answer", "citations", "model", "grounded", "finish_reason", "warnings")
        return {k: full[k] for k in keep}

    async def list_collections(ctx: Context) -> dict[str, Any]:
        """The collections this caller can search, with their document counts."""
        caller = caller_for(ctx)
        forbid_widget(caller.principal)
        authorize(caller.principal, "read")
        catalog = caller.engine.index.catalog
        readable = [
            c
            for c in catalog.list_collections()
            if caller.principal.collections is None or c.name in caller.principal.collections
        ]
        return {
            "collections": [
                {
                    "name": c.name,
                    "documents": catalog.count_documents(c.id),
                    "embedder": f"{c.embedder_provider}:{c.embedder_model}",
                }
                for c in readable
            ]
        }

    for tool in (search, answer, list_collections):
        server.add_tool(_reporting_errors(tool))
    return server


def _reporting_errors(tool: Tool) -> Tool:
    """The tool, with our errors shown to the client as `code: message` tool errors."""

    @functools.wraps(tool)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await tool(*args, **kwargs)
        except RagsearchError as exc:
            raise _tool_error(exc) from exc

    return cast(Tool, wrapper)


# --- streamable HTTP on the FastAPI app ----------------------------------------------------


def _http_caller(ctx: Context) -> Caller:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise ToolError("this tool needs the HTTP request it was called in")
    from service.http.deps import get_engine

    return Caller(get_engine(request), request.state.principal, request.app.state.token_budget)


class _RequireRead:
    """Resolves the caller (a read-scope key once keys exist) before the MCP transport runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from service.http.deps import get_principal

        request = Request(scope, receive)
        try:
            principal = await get_principal(request)
            authorize(principal, "read")
        except RagsearchError as exc:
            # JSON-RPC's error shape, as the MCP transport itself answers bad requests.
            body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": exc.message}}
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            await JSONResponse(body, exc.status, headers)(scope, receive, send)
            return
        request.state.principal = principal
        await self.app(scope, receive, send)


def mount_mcp(app: FastAPI, origins: OriginPolicy) -> None:
    """Serve the MCP tools at `/mcp` on `app`, and run the MCP session manager in its lifespan.

    MCP's DNS-rebinding protection is on: the Host and Origin must be localhost or one of the
    configured public origins (`RAGSEARCH_PUBLIC_ORIGINS`), with or without keys.
    """
    server = build_server(_http_caller)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=origins.mcp_hosts(),
        allowed_origins=origins.mcp_origins(),
    )
    transport = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=security,
    )
    endpoint = next(r for r in transport.routes if getattr(r, "path", None) == MCP_PATH)
    app.router.routes.append(
        Route(MCP_PATH, endpoint=_RequireRead(endpoint.app), include_in_schema=False)  # type: ignore[attr-defined]
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi: Any) -> AsyncIterator[Any]:
        async with inner(asgi) as state, server.session_manager.run():
            yield state

    app.router.lifespan_context = lifespan


# --- stdio ------------------------------------------------------------------------------


async def serve_stdio(settings: Settings) -> None:
    """Serve the tools over stdin/stdout for a local MCP client; every collection is open."""
    engine = Engine(settings)
    principal = open_principal()
    server = build_server(lambda _ctx: Caller(engine, principal))
    try:
        await server.run_stdio_async()
    finally:
        await engine.aclose()
