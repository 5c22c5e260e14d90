"""The one HTTP error body, `{"error": {"code", "message"}, "request_id"}`, rendered here only.

RagsearchError carries its own status and code; FastAPI's validation errors and Starlette's
HTTP errors (unknown route, wrong method) are translated to the same shape. Anything else is
a bug: the client gets a generic 500 and the traceback goes to the log.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from indexer.errors import ProviderError, ProviderRejected, RagsearchError

__all__ = [
    "REQUEST_ID_HEADER",
    "error_body",
    "error_response",
    "install_error_handlers",
    "public_error",
    "request_id",
    "retry_after_headers",
]

log = logging.getLogger("ragsearch.http")

REQUEST_ID_HEADER = "X-Request-ID"
_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
INTERNAL_MESSAGE = "internal error; the server logged the details under this request id"
PROVIDER_MESSAGE = "the model provider is unavailable; try again later"


def public_error(exc: RagsearchError, rid: str) -> tuple[int, str, str]:
    """(status, code, message) a caller may see for `exc`.

    A provider failure (unreachable, timing out, throttled, rejecting our key, answering
    nonsense) is the same 503 to callers, with no URL or provider detail; the detail goes to
    the server log under the request id. A provider's refusal of the input itself
    (`ProviderRejected`, 400) is the caller's to fix, so it keeps its message.
    """
    if isinstance(exc, ProviderError) and not isinstance(exc, ProviderRejected):
        log.warning("model provider failed in request %s: %s: %s", rid, exc.code, exc.message)
        return 503, "provider_unavailable", PROVIDER_MESSAGE
    return exc.status, exc.code, exc.message


def request_id(scope: Scope) -> str:
    """The request's id, set by the request-id middleware (made up if it did not run)."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex
    return str(state["request_id"])


def error_body(code: str, message: str, rid: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "request_id": rid}


def error_response(
    status: int,
    code: str,
    message: str,
    rid: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, rid),
        status_code=status,
        headers={REQUEST_ID_HEADER: rid, **(headers or {})},
    )


def retry_after_headers(exc: RagsearchError) -> dict[str, str]:
    """`Retry-After` in whole seconds, rounded up (at least 1), when the error knows it."""
    if exc.retry_after is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}


def ragsearch_error_response(exc: RagsearchError, rid: str) -> JSONResponse:
    status, code, message = public_error(exc, rid)
    return error_response(status, code, message, rid, retry_after_headers(exc))


def validation_message(errors: Sequence[Any]) -> str:
    """`field.path: what is wrong` for each error (the first three)."""
    parts = []
    for error in errors[:3]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        where = ".".join(loc) or "request body"
        parts.append(f"{where}: {error.get('msg', 'invalid value')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


async def _on_ragsearch_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagsearchError)
    return ragsearch_error_response(exc, request_id(request.scope))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message = validation_message(exc.errors())
    return error_response(422, "validation_error", message, request_id(request.scope))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(exc.status_code, code, message, request_id(request.scope), headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette lists only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods |= set(route_methods)
    return sorted(methods)


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    rid = request_id(request.scope)
    log.error("unhandled error in request %s", rid, exc_info=exc)
    return error_response(500, "internal_error", INTERNAL_MESSAGE, rid)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error in the one body. Unexpected ones are caught by the middleware first."""
    app.add_exception_handler(RagsearchError, _on_ragsearch_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
