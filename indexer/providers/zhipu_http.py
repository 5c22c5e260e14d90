"""HTTP transport for the Zhipu BigModel API: auth, pooling, retries and error translation.

Every Zhipu failure is translated here, once, into the `ProviderError` tree. Decisions follow
the body's `error.code` (a string) rather than the HTTP status, because Zhipu reuses 429 for
both "slow down" (retry) and "account in arrears" (do not). The model classes in `zhipu.py`
only build request bodies and check answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from indexer.errors import (
    BadProviderResponse,
    ProviderAuthError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from indexer.providers.zhipu_codes import rule_for
from indexer.settings import Settings

__all__ = ["Json", "SSEDecoder", "Sleep", "ZhipuTransport", "error_from_body"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

# A server asking for a longer pause than this is treated as "not now": we would rather fail
# the batch and let the caller re-run than hold an ingest for an hour.
_MAX_RETRY_AFTER_SECONDS = 60.0
# 1305/1312 mean the model itself is overloaded, which clears more slowly than a key's limit.
_OVERLOAD_BACKOFF_FACTOR = 4.0
_SERVER_TEXT_LIMIT = 300


class _Retryable(Exception):
    """Internal carrier: a retryable `ProviderError` plus what the server said about waiting."""

    def __init__(
        self, error: ProviderError, retry_after: float | None = None, slow: bool = False
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after
        self.slow = slow


def _server_text(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = re.sub(r"<[^>]+>", " ", text)  # gateway error pages are HTML
    text = " ".join(text.split())
    return text[:_SERVER_TEXT_LIMIT]


def error_from_body(
    status: int | None, body: bytes | str | Json, retry_after: float | None = None
) -> ProviderError | _Retryable:
    """Translate one Zhipu error answer (JSON or not) into our error, wrapped if retryable.

    `body` may be raw bytes (HTTP error bodies) or an already-parsed in-band `{"error": ...}`.
    """
    code: str | None = None
    detail = ""
    parsed: Any = body
    if not isinstance(body, dict):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = str(error["code"]) if error.get("code") is not None else None
        detail = _server_text(str(error.get("message", "")))
    elif not isinstance(body, dict):
        detail = _server_text(body)
    rule = rule_for(code, status)
    where = ", ".join(
        part
        for part in (
            f"HTTP {status}" if status is not None else "",
            f"code {code}" if code else "",
        )
        if part
    )
    message = rule.summary
    if where or detail:
        message += f" ({where}{': ' if where and detail else ''}{detail})"
    exc = rule.error(message)
    exc.provider_code = code
    if exc.retryable:
        return _Retryable(exc, retry_after=retry_after, slow=rule.slow)
    return exc


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP-date: rare enough to fall back to our own backoff
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_SECONDS)


class SSEDecoder:
    """Turns the lines of a `text/event-stream` body into the `data` payloads of its events.

    Follows the SSE rules Zhipu's stream relies on: `data:` with or without one space, lines
    starting with `:` are comments, a blank line ends an event, several `data` lines in one
    event are joined with newlines, other fields (`event`, `id`, `retry`) are ignored.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[str]:
        """Consume one line (without its end-of-line); yields a payload when an event ends."""
        if not line:
            if self._data:
                payload = "\n".join(self._data)
                self._data = []
                yield payload
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)

    def pending(self) -> str | None:
        """The payload of an event the stream ended without terminating, if any."""
        return "\n".join(self._data) if self._data else None


class ZhipuTransport:
    """One pooled `httpx.AsyncClient` for Zhipu with bearer auth, bounded concurrency and retries.

    At most `max_concurrency` requests are in flight at once (Zhipu limits concurrent requests,
    not requests per second). Retryable failures (rate limits, 5xx, timeouts, connection
    errors, malformed answers) are retried `max_retries` times with exponential backoff and
    jitter, honouring `Retry-After`. The API key never appears in a repr, a log line or an
    error message.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 8.0,
        max_concurrency: int = 8,
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise ProviderAuthError("no Zhipu API key configured; set ZHIPUAI_API_KEY")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self._secret = api_key
        self._sleep = sleep
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> ZhipuTransport:
        """A transport configured from `settings` (key, base URL, timeouts, retries)."""
        key = settings.zhipu_api_key.get_secret_value() if settings.zhipu_api_key else ""
        return cls(
            api_key=key,
            base_url=settings.zhipu_base_url,
            timeout_seconds=settings.zhipu_timeout_seconds,
            connect_timeout_seconds=settings.zhipu_connect_timeout_seconds,
            max_concurrency=settings.zhipu_max_concurrency,
            max_retries=settings.zhipu_max_retries,
            backoff_seconds=settings.zhipu_backoff_seconds,
            transport=transport,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"ZhipuTransport(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def post(
        self,
        path: str,
        body: Json,
        parse: Callable[[Json], T],
        *,
        read_timeout: float | None = None,
        resend_after_timeout: bool = True,
    ) -> T:
        """POST `body` as JSON and return `parse(answer)`, retrying retryable failures.

        `parse` runs inside the retry loop, so an answer it rejects with a retryable error
        (`BadProviderResponse`, or `ProviderUnavailable` for an in-band failure) is asked again.
        `read_timeout` replaces the transport's for this call; with `resend_after_timeout`
        false, a read timeout (the server may have taken, and billed, the request) is raised
        instead of sending the request again.
        """

        async def attempt() -> T:
            async with self._slots:
                answer = await self._send(path, body, read_timeout, resend_after_timeout)
            try:
                return parse(answer)
            except ProviderError as exc:
                raise (_Retryable(exc) if exc.retryable else exc) from exc

        return await self._with_retries(attempt)

    async def stream(
        self,
        path: str,
        body: Json,
        *,
        read_timeout: float | None = None,
        resend_after_timeout: bool = True,
    ) -> AsyncGenerator[Json, None]:
        """POST `body` and yield each JSON event of the SSE answer, up to `data: [DONE]`.

        Opening the stream is retried like `post` (same `read_timeout` and
        `resend_after_timeout`); once events flow, a failure is raised, not retried, since the
        caller may already have shown part of the answer. A stream that ends without `[DONE]`,
        stalls past the read timeout or carries an in-band error frame raises.
        """
        async with self._slots:
            response = await self._with_retries(
                lambda: self._open_stream(path, body, read_timeout, resend_after_timeout)
            )
            try:
                async for event in self._events(response, read_timeout or self.timeout_seconds):
                    yield event
            finally:
                await response.aclose()

    async def _events(self, response: httpx.Response, timeout: float) -> AsyncIterator[Json]:
        decoder = SSEDecoder()
        try:
            async for line in response.aiter_lines():
                for payload in decoder.feed(line):
                    if payload.strip() == "[DONE]":
                        return
                    yield self._event(payload)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"the Zhipu stream stalled: no data for {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the Zhipu stream was interrupted ({type(exc).__name__})"
            ) from exc
        if (decoder.pending() or "").strip() == "[DONE]":
            return
        raise ProviderUnavailable("the Zhipu stream ended before it was complete (no [DONE])")

    def _event(self, payload: str) -> Json:
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise BadProviderResponse(
                f"Zhipu sent a stream event that is not JSON: {_server_text(payload)[:80]}"
            ) from exc
        if not isinstance(event, dict):
            raise BadProviderResponse("Zhipu sent a stream event that is not a JSON object")
        if "error" in event:
            failure = error_from_body(None, event)
            raise failure.error if isinstance(failure, _Retryable) else failure
        return event

    def _timeout(self, read_timeout: float | None) -> httpx.Timeout:
        read = read_timeout or self.timeout_seconds
        return httpx.Timeout(read, connect=self._client.timeout.connect)

    async def _send(self, path: str, body: Json, read_timeout: float | None, resend: bool) -> Json:
        timeout = self._timeout(read_timeout)
        try:
            response = await self._client.post(path.lstrip("/"), json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise self._network_failure(exc, timeout, resend) from exc
        if response.status_code != 200:
            raise self._http_failure(response, response.content)
        try:
            answer = response.json()
        except ValueError as exc:
            error = BadProviderResponse(
                f"Zhipu answered with malformed JSON: {_server_text(response.content)[:80]}"
            )
            raise _Retryable(error) from exc
        if not isinstance(answer, dict):
            raise _Retryable(BadProviderResponse("Zhipu answered with JSON that is not an object"))
        if "error" in answer:
            raise self._http_failure(response, response.content)
        return answer

    async def _open_stream(
        self, path: str, body: Json, read_timeout: float | None, resend: bool
    ) -> httpx.Response:
        timeout = self._timeout(read_timeout)
        request = self._client.build_request("POST", path.lstrip("/"), json=body, timeout=timeout)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._network_failure(exc, timeout, resend) from exc
        if response.status_code == 200:
            return response
        try:
            content = await response.aread()
        except httpx.HTTPError as exc:
            raise self._network_failure(exc, timeout, resend) from exc
        finally:
            await response.aclose()
        raise self._http_failure(response, content)

    def _network_failure(
        self, exc: httpx.HTTPError, timeout: httpx.Timeout, resend: bool
    ) -> _Retryable | ProviderError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return _Retryable(ProviderTimeout("Zhipu did not answer in time (connect timeout)"))
        if isinstance(exc, httpx.TimeoutException):
            message = f"Zhipu did not answer within {timeout.read:g} s (read timeout)"
            if resend:
                return _Retryable(ProviderTimeout(message))
            # The request reached Zhipu, which may be working on it and will bill it: sending
            # it again could pay twice for one long prompt.
            return ProviderTimeout(
                f"{message}; not re-sent, since Zhipu may already be processing (and billing) "
                "it. Raise RAGSEARCH_ZHIPU_LONG_TIMEOUT_SECONDS for very long prompts"
            )
        if isinstance(exc, httpx.TransportError):
            return _Retryable(
                ProviderUnavailable(f"cannot reach Zhipu at {self.base_url} ({type(exc).__name__})")
            )
        return ProviderError(f"HTTP client error talking to Zhipu ({type(exc).__name__})")

    def _http_failure(self, response: httpx.Response, content: bytes) -> Exception:
        failure = error_from_body(response.status_code, content, _retry_after(response))
        error = failure.error if isinstance(failure, _Retryable) else failure
        # The server could echo what we sent; the key must not travel on in an error message.
        if self._secret in error.message:
            error.message = error.message.replace(self._secret, "***")
            error.args = (error.message,)
        return failure

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )

        async def call() -> T:
            # tenacity awaits only what it recognises as a coroutine function; a plain
            # callable returning an awaitable would be handed back un-awaited.
            return await attempt()

        try:
            result: T = await retrying(call)
        except _Retryable as failure:
            error = failure.error
            if self.max_retries:
                code = error.provider_code
                error = type(error)(f"{error.message} (gave up after {self.max_retries + 1} tries)")
                error.provider_code = code
            raise error from failure.__cause__
        return result

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            return failure.retry_after
        delay = self.backoff_seconds * 2.0 ** (state.attempt_number - 1)
        if isinstance(failure, _Retryable) and failure.slow:
            delay *= _OVERLOAD_BACKOFF_FACTOR
        # Jitter spreads out clients that failed together so they do not retry in lockstep.
        return delay * random.uniform(1.0, 1.5)

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "Zhipu call failed, retry %d/%d in %.2f s: %s",
            state.attempt_number,
            self.max_retries,
            wait,
            failure,
        )
