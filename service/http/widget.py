"""The embeddable chat widget: `/widget.js`, the `/widget` page, and CORS for widget keys.

A site owner drops `<script src="https://host/widget.js" data-collection="docs"
data-key="rsk_..."></script>` into a page. The key is a widget key (read scope, one
collection, allowed origins, a rate limit; see `service.http.auth`), so it is safe to publish.
Browsers may call the API cross-origin only from a key's allowed origins: preflights are
answered for origins some widget key lists, and a response carries
`Access-Control-Allow-Origin` only when the calling key lists the origin (the key itself is
refused from any other origin by `principal_for`).
"""

from __future__ import annotations

import asyncio
import html
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexer.catalog import Catalog
from indexer.errors import Forbidden, InputError
from service.http.auth import find_key, list_keys, normalize_origin
from service.http.deps import EngineDep
from service.http.schemas import json_error_responses
from service.query.engine import Engine

__all__ = ["WidgetCorsMiddleware", "router", "widget_origins"]

CORS_PATHS = ("/v1/",)
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "authorization, content-type, x-request-id"
EXPOSED_HEADERS = "x-request-id, retry-after"
PREFLIGHT_MAX_AGE = "600"

router = APIRouter(tags=["widget"])


class JavaScriptResponse(Response):
    media_type = "application/javascript"


@cache
def _static(name: str) -> str:
    return resources.files("service.http").joinpath("static", name).read_text(encoding="utf-8")


@router.get(
    "/widget.js",
    summary="The embeddable chat widget script",
    response_class=JavaScriptResponse,
    responses=json_error_responses(500),
)
async def widget_script() -> JavaScriptResponse:
    """The script a site adds with `data-collection`, `data-key` and `data-position`."""
    return JavaScriptResponse(
        _static("widget.js"),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


def _frame_ancestors(catalog: Catalog, key: str) -> str:
    """`'self'` and the widget key's origins. Only a widget key may be written into the
    public page: any other key (an admin key pasted by mistake) is refused, not published."""
    found = find_key(catalog, key) if key else None
    if key and (found is None or not found.is_widget):
        raise Forbidden(
            "only an active widget key may be embedded in /widget (create one with "
            "`ragsearch keys create NAME --widget`); never publish another key"
        )
    origins = found.allowed_origins if found is not None else ()
    return " ".join(("'self'", *origins))


@router.get(
    "/widget",
    summary="A full-page chat for one collection",
    response_class=HTMLResponse,
    responses=json_error_responses(400, 403, 500),
)
async def widget_page(
    engine: EngineDep,
    collection: str = Query(min_length=1, max_length=200, description="Collection to chat with."),
    key: str = Query("", max_length=200, description="A widget key (publishable)."),
    title: str = Query("", max_length=100, description="Heading shown above the chat."),
    greeting: str = Query(
        "", max_length=300, description="First message shown (default: a short greeting)."
    ),
    suggestions: str = Query(
        "", max_length=1000, description="Suggested questions, separated by `|`."
    ),
) -> HTMLResponse:
    """The widget in inline mode; pages of a key's allowed origins may frame it."""
    if not collection.strip():
        raise InputError("collection is empty")
    ancestors = await asyncio.to_thread(_frame_ancestors, engine.index.catalog, key)
    page = Template(_static("widget.html")).substitute(
        collection=html.escape(collection, quote=True),
        key=html.escape(key, quote=True),
        title=html.escape(title or collection, quote=True),
        greeting=html.escape(greeting, quote=True),
        suggestions=html.escape(suggestions, quote=True),
    )
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"connect-src 'self'; img-src 'self' data:; frame-ancestors {ancestors}"
    )
    return HTMLResponse(
        page,
        headers={"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer"},
    )


# --- CORS ----------------------------------------------------------------------------------


def widget_origins(catalog: Catalog) -> frozenset[str]:
    """Every origin an active widget key lists."""
    return frozenset(
        o for k in list_keys(catalog) if k.revoked_at is None for o in k.allowed_origins
    )


def _key_origins(catalog: Catalog, authorization: str | None) -> tuple[str, ...]:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return ()
    found = find_key(catalog, secret.strip())
    return found.allowed_origins if found is not None else ()


def _normalized(origin: str) -> str | None:
    try:
        return normalize_origin(origin)
    except InputError:
        return None


def _same_origin(origin: str, headers: Headers) -> bool:
    """Whether the browser's Origin is this server itself (the `/widget` page calling home)."""
    host = headers.get("host")
    netloc = origin.partition("://")[2]
    return host is not None and netloc.lower() == host.lower()


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
    ]


class WidgetCorsMiddleware:
    """CORS for `/v1/*` limited to widget keys' allowed origins (plain ASGI: streams pass)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(CORS_PATHS):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        catalog = self._catalog(scope)
        if origin is None or catalog is None:
            await self.app(scope, receive, send)
            return
        if _same_origin(origin, headers):
            # The widget page served from here calls home; drop Origin so a widget key is
            # not refused for the server's own origin (framing is limited by its CSP).
            raw = [(k, v) for k, v in scope["headers"] if k != b"origin"]
            await self.app({**scope, "headers": raw}, receive, send)
            return
        wanted = _normalized(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            allowed = await asyncio.to_thread(widget_origins, catalog)
            await self._preflight(wanted in allowed and wanted is not None, origin, send)
            return
        listed = await asyncio.to_thread(_key_origins, catalog, headers.get("authorization"))
        allow = wanted is not None and wanted in listed

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if allow:
                    extra += _cors_headers(origin)
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _catalog(scope: Scope) -> Catalog | None:
        app: Any = scope.get("app")
        engine = getattr(getattr(app, "state", None), "engine", None)
        return engine.index.catalog if isinstance(engine, Engine) else None

    @staticmethod
    async def _preflight(allowed: bool, origin: str, send: Send) -> None:
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if allowed:
            headers += _cors_headers(origin)
            headers += [
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
            ]
        await send(
            {"type": "http.response.start", "status": 204 if allowed else 403, "headers": headers}
        )
        await send({"type": "http.response.body", "body": b""})
