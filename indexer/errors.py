"""The one error tree. Each class carries its HTTP status, a stable code and a CLI exit code.

Library exceptions (httpx, SQLAlchemy, parsers) are translated into these once, at the seam
where they arise (`raise ... from exc`); the HTTP layer and the CLI render them in one place.
"""

from __future__ import annotations

import errno


class RagsearchError(Exception):
    """Base of every error ragsearch reports to a user."""

    status: int = 500
    code: str = "internal_error"
    exit_code: int = 1
    retry_after: float | None = None  # seconds until a retry may succeed, when known

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retry_after is not None:
            self.retry_after = retry_after


class InputError(RagsearchError):
    """The request or file is wrong; retrying the same thing will not help."""

    status = 400
    code = "invalid_input"
    exit_code = 2


class PayloadTooLarge(InputError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(InputError):
    status = 415
    code = "unsupported_media_type"


class ParseError(InputError):
    """A file could not be turned into text (corrupt, empty, binary, wrong format)."""

    status = 422
    code = "unparseable_document"


class UrlRefused(InputError):
    """A URL ingest aimed at a place it may not reach (private address, wrong scheme)."""

    code = "url_refused"


class UrlFetchFailed(InputError):
    """A URL ingest could not download its page (unreachable, HTTP error, too slow, too big)."""

    status = 422
    code = "url_fetch_failed"


class NotFound(RagsearchError):
    status = 404
    code = "not_found"
    exit_code = 3


class ModelNotFound(NotFound):
    """An OpenAI-compatible request named a model that is no readable collection."""

    code = "model_not_found"


class Conflict(RagsearchError):
    """The request contradicts existing state (e.g. an embedding dimension mismatch)."""

    status = 409
    code = "conflict"
    exit_code = 4


class Locked(Conflict):
    """Another writer holds the ingest lock."""

    code = "locked"


class Unauthorized(RagsearchError):
    status = 401
    code = "unauthorized"
    exit_code = 5


class Forbidden(RagsearchError):
    status = 403
    code = "forbidden"
    exit_code = 5


class TooManyRequests(RagsearchError):
    """A client of ours exceeded its rate limit."""

    status = 429
    code = "rate_limited"
    exit_code = 6


class KeyRateLimited(TooManyRequests):
    """A key exceeded its per-minute rate; `retry_after` says when a request fits again."""


class CatalogError(RagsearchError):
    """The catalog database failed (unreachable, locked, corrupt)."""

    status = 503
    code = "catalog_unavailable"


class StorageError(RagsearchError):
    """Writing the data directory failed (other than a full disk): an I/O error."""

    status = 500
    code = "storage_error"
    exit_code = 7


class StorageFull(StorageError):
    """The disk holding the data directory is full. Nothing committed is lost; free space
    and run the same command again."""

    status = 507
    code = "insufficient_storage"


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (OSError, SQLite's SQLITE_FULL, FAISS's wrapped write error) means ENOSPC."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc)
    return "database or disk is full" in text or "No space left on device" in text


def storage_error(exc: BaseException, context: str) -> StorageError:
    """The error to raise for a failed write of the data directory (`raise ... from exc`)."""
    if is_disk_full(exc):
        return StorageFull(
            f"{context}: the disk is full; nothing committed was lost — free space and run it again"
        )
    return StorageError(f"{context}: {exc}")


class VectorStoreError(RagsearchError):
    """The vector store failed (unreachable, refused a request, or not installed)."""

    status = 503
    code = "vector_store_unavailable"


class ProviderError(RagsearchError):
    """A model provider (Zhipu, a local model) failed."""

    status = 502
    code = "provider_error"
    exit_code = 6
    retryable = False
    provider_code: str | None = None  # the provider's own error code, when it sent one


class RateLimited(ProviderError):
    """The provider throttled us (Zhipu 1302/1303/1305) and retries ran out."""

    status = 503
    code = "provider_rate_limited"
    retryable = True


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"
    retryable = True


class ProviderUnavailable(ProviderError):
    """Server-side or network failure at the provider (5xx, connection errors)."""

    status = 503
    code = "provider_unavailable"
    retryable = True


class BadProviderResponse(ProviderError):
    """The provider answered with something that breaks its own contract."""

    status = 502
    code = "bad_provider_response"
    retryable = True


class ProviderAuthError(ProviderError):
    """The provider rejected our credentials (Zhipu 1000-1005)."""

    code = "provider_auth_failed"


class ProviderQuotaError(ProviderError):
    """The account cannot pay for more calls (Zhipu 1113 arrears, 1304/1308-1321 quota)."""

    status = 503
    code = "provider_quota_exhausted"


class ProviderRejected(ProviderError):
    """The provider refused this input (bad parameter, prompt too long, sensitive content)."""

    status = 400
    code = "provider_rejected"


class ProviderModelUnavailable(ProviderError):
    """The provider does not serve the configured model (or API) to this account: a setting
    must change (Zhipu 1211 unknown model, 1220 no permission, 1311 not in the plan)."""

    code = "provider_model_unavailable"


ALL_ERRORS: tuple[type[RagsearchError], ...] = (
    RagsearchError,
    InputError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ParseError,
    UrlRefused,
    UrlFetchFailed,
    NotFound,
    ModelNotFound,
    Conflict,
    Locked,
    Unauthorized,
    Forbidden,
    TooManyRequests,
    KeyRateLimited,
    CatalogError,
    StorageError,
    StorageFull,
    VectorStoreError,
    ProviderError,
    RateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    BadProviderResponse,
    ProviderAuthError,
    ProviderQuotaError,
    ProviderRejected,
    ProviderModelUnavailable,
)
