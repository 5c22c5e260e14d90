"""ASGI middleware: request ids with the last-resort error boundary, and request body limits.

Both are plain ASGI (not `BaseHTTPMiddleware`), so streaming responses pass straight through.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.errors import INTERNAL_MESSAGE, REQUEST_ID_HEADER, error_response

__all__ = ["BodyLimitMiddleware", "RequestIdMiddleware"]

log = logging.getLogger("ragsearch.http")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes a sane `X-Request-ID` or makes one; echoes it on every response.

    Also the error boundary: an exception no handler rendered becomes the generic 500 body
    (traceback logged here, never sent), as long as the response has not started.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.lower().encode(), b"")
        text = sent.decode("latin-1")
        rid = text if _CLIENT_ID.match(text) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != REQUEST_ID_HEADER.lower().encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in request %s", rid)
            if started:
                raise
            response = error_response(500, "internal_error", INTERNAL_MESSAGE, rid)
            await response(scope, receive, send_with_id)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Rejects request bodies over `limit_for(scope)` bytes with 413, before or while reading.

    A declared Content-Length over the limit is refused without reading; a body that grows
    past it mid-read is cut off and whatever the app tried to answer is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, int(declared), limit)
            return
        seen = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not exceeded:
                await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if exceeded:
            await self._reject(scope, receive, send, seen, limit)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, size: int, limit: int) -> None:
        rid = str(scope.setdefault("state", {}).get("request_id", uuid.uuid4().hex))
        message = f"request body is over the limit of {limit:,} bytes (got at least {size:,})"
        response = error_response(413, "payload_too_large", message, rid)
        await response(scope, receive, send)
