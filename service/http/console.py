"""The operators' web console at `/console`: one static page, its script and stylesheet.

Plain files shipped in the package (no build step, no CDN), served under a strict
Content-Security-Policy: the page talks only to this server, runs only its own script and
cannot be framed. The page signs in with an API key kept in the tab's session storage and
calls the same `/v1` routes as any client, so the key's scopes decide what it may do.
"""

from __future__ import annotations

import asyncio
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.http.auth import ever_had_keys, has_active_keys
from service.http.deps import EngineDep

__all__ = ["CONSOLE_CSP", "router"]

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONSOLE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["console"], include_in_schema=False)


@cache
def _static(name: str) -> str:
    return resources.files("service.http").joinpath("static", name).read_text(encoding="utf-8")


@router.get("/console")
async def console_page() -> HTMLResponse:
    """The console's single page; it needs no key to load (the API calls do)."""
    return HTMLResponse(_static("console.html"), headers=_HEADERS)


@router.get("/console/")
async def console_slash() -> RedirectResponse:
    return RedirectResponse("/console", status_code=308)


@router.get("/console/console.js")
async def console_script() -> Response:
    script = _static("console.js")
    return Response(script, media_type="application/javascript; charset=utf-8", headers=_HEADERS)


@router.get("/console/console.css")
async def console_style() -> Response:
    return Response(_static("console.css"), media_type="text/css; charset=utf-8", headers=_HEADERS)


@router.get("/console/config.json")
async def console_config(request: Request, engine: EngineDep) -> dict[str, Any]:
    """What the page needs before signing in: whether a key is required, which views exist."""
    catalog = engine.index.catalog

    def key_required() -> bool:
        # The same rule as `principal_for`: open only while no key exists and, once keys
        # have existed, only with RAGSEARCH_OPEN_AFTER_KEYS.
        if not request.app.state.open_without_keys or has_active_keys(catalog):
            return True
        return ever_had_keys(catalog) and not engine.settings.open_after_keys

    return {"key_required": await asyncio.to_thread(key_required), "jobs": True}
