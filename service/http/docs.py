"""`/docs`: Swagger UI served from this server, so it works offline and behind firewalls.

The assets come from the `swagger-ui-bundle` package (no CDN). `/openapi.json` and `/docs`
are public on purpose: they describe the API, never its data, and every route they list
still needs its key.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS_PATH", "mount_docs"]

ASSETS_PATH = "/docs-assets"


def mount_docs(app: FastAPI) -> None:
    """Serve Swagger UI at `/docs` with its assets under `/docs-assets`."""
    app.mount(ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
