"""API keys and who may do what: key rules, the request's principal, scopes, rate limits.

Keys are `rsk_` plus 32 random URL-safe bytes, shown once at creation and stored as their
sha256 in the catalog (`indexer.catalog.keys`). Scopes nest: `admin` implies `write`, which
implies `read`; `documents` (whole-document answers) implies `read` and is implied by `admin`.
A key may be limited to named collections. A widget key is a public, read-only key for one
collection, with allowed browser origins and a per-minute rate limit.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from indexer.catalog import Catalog
from indexer.errors import (
    Conflict,
    Forbidden,
    InputError,
    KeyRateLimited,
    NotFound,
    Unauthorized,
)
from indexer.records import ApiKey, NewApiKey

__all__ = [
    "SCOPES",
    "ApiKey",
    "Principal",
    "RateLimiter",
    "authorize",
    "check_answer_choice",
    "create_key",
    "ever_had_keys",
    "forbid_widget",
    "has_active_keys",
    "list_keys",
    "open_principal",
    "principal_for",
    "principal_of",
    "revoke_key",
    "revoke_key_id",
]

SCOPES = ("read", "write", "admin", "documents")
KEY_PREFIX = "rsk_"
_IMPLIED = {
    "read": {"read"},
    "write": {"read", "write"},
    "admin": {"read", "write", "admin", "documents"},
    "documents": {"read", "documents"},
}
SERVER_MODELS = ("auto", "extractive")  # the server's own choice, open to every key
_SHOWN_PREFIX = 12  # "rsk_" + 8 characters: enough to tell keys apart in `keys list`


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's name and effective rights, or the open principal."""

    name: str
    scopes: frozenset[str]
    collections: frozenset[str] | None  # None: every collection
    allowed_origins: tuple[str, ...] = ()
    rate_per_minute: float | None = None
    is_widget: bool = False
    open: bool = False
    key_id: int | None = None


def open_principal() -> Principal:
    """The caller while no API key exists: every scope on every collection."""
    return Principal(name="open", scopes=frozenset(SCOPES), collections=None, open=True)


def authorize(principal: Principal, scope: str, collection: str | None = None) -> None:
    """Raise `Forbidden` unless `principal` holds `scope` (on `collection`, when given)."""
    if scope not in principal.scopes:
        raise Forbidden(f"key {principal.name!r} lacks the {scope!r} scope")
    if (
        collection is not None
        and principal.collections is not None
        and collection not in principal.collections
    ):
        raise Forbidden(f"key {principal.name!r} may not use collection {collection!r}")


def check_answer_choice(
    principal: Principal, model: str, scope: str, allowed_models: Iterable[str] = ()
) -> None:
    """Refuse answer options that choose the cost: a model, or whole-document scope.

    Keys without `admin` get the server's model choice (`auto`, `extractive`) or one of
    `allowed_models` (the `key_models` setting); whole-document answers, which send entire
    documents to the long-context model, need the `documents` scope.
    """
    if scope == "documents" and "documents" not in principal.scopes:
        raise Forbidden(
            f"key {principal.name!r} lacks the 'documents' scope that whole-document answers need"
        )
    if "admin" in principal.scopes or model in SERVER_MODELS or model in allowed_models:
        return
    raise Forbidden(
        f"key {principal.name!r} may not choose the answer model {model!r}; use `auto` "
        "(the server's choice) or a model listed in RAGSEARCH_KEY_MODELS"
    )


def forbid_widget(principal: Principal) -> None:
    """Widget keys are public: they may search and answer in their collection, nothing else."""
    if principal.is_widget:
        raise Forbidden(f"widget key {principal.name!r} may only search and answer")


# --- storage ---------------------------------------------------------------------------


def principal_of(key: ApiKey) -> Principal:
    """The rights a stored key grants: its scopes with the ones they imply."""
    effective: set[str] = set()
    for scope in key.scopes:
        effective |= _IMPLIED.get(scope, set())
    return Principal(
        name=key.name,
        scopes=frozenset(effective),
        collections=None if key.collections is None else frozenset(key.collections),
        allowed_origins=key.allowed_origins,
        rate_per_minute=key.rate_per_minute,
        is_widget=key.is_widget,
        key_id=key.id,
    )


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normalize_origin(origin: str) -> str:
    """`https://site.example` form: scheme and host (and port), lower case, no path."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise InputError(f"origin {origin!r} must look like https://site.example (no path)")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def create_key(
    catalog: Catalog,
    name: str,
    scopes: Iterable[str],
    *,
    collections: Iterable[str] | None = None,
    allowed_origins: Iterable[str] = (),
    rate_per_minute: float | None = None,
) -> tuple[str, ApiKey]:
    """Store a new key; returns (the secret, shown only now, and its record).

    A key with allowed origins is a widget key: read scope only, exactly one collection.
    """
    name = name.strip()
    if not name or len(name) > 128:
        raise InputError("a key name needs 1-128 characters")
    chosen = tuple(dict.fromkeys(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown or not chosen:
        raise InputError(f"scopes must be some of {', '.join(SCOPES)}; got {list(chosen)}")
    limited = None if collections is None else tuple(dict.fromkeys(collections))
    origins = tuple(dict.fromkeys(normalize_origin(o) for o in allowed_origins))
    if origins and (chosen != ("read",) or limited is None or len(limited) != 1):
        raise InputError("a widget key has the read scope only and exactly one collection")
    if rate_per_minute is not None and not rate_per_minute > 0:
        raise InputError("the rate limit must be a positive number of requests per minute")
    if any(k.name == name and k.revoked_at is None for k in list_keys(catalog)):
        raise Conflict(f"an active key named {name!r} already exists")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    stored = catalog.add_key(
        NewApiKey(
            name=name,
            prefix=secret[:_SHOWN_PREFIX],
            key_sha256=hash_key(secret),
            scopes=chosen,
            collections=limited,
            allowed_origins=origins,
            rate_per_minute=rate_per_minute,
        )
    )
    return secret, stored


def list_keys(catalog: Catalog) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return catalog.list_keys()


def revoke_key(catalog: Catalog, name_or_prefix: str) -> list[ApiKey]:
    """Revoke the active keys with this name, prefix (as `keys list` shows it, `…` allowed)
    or numeric id; returns them. NotFound if none."""
    wanted = name_or_prefix.strip().rstrip("…").removesuffix("...")
    matching = [
        k
        for k in catalog.list_keys()
        if k.revoked_at is None and wanted in (k.name, k.prefix, str(k.id))
    ]
    if not matching:
        raise NotFound(f"no active key named {name_or_prefix!r}")
    catalog.revoke_keys([k.id for k in matching])
    return matching


def revoke_key_id(catalog: Catalog, key_id: int) -> ApiKey:
    """Revoke the active key with this id; returns it. NotFound if there is none."""
    matching = [k for k in catalog.list_keys() if k.id == key_id and k.revoked_at is None]
    if not matching:
        raise NotFound(f"no active key with id {key_id}")
    catalog.revoke_keys([key_id])
    return matching[0]


def has_active_keys(catalog: Catalog) -> bool:
    return catalog.has_active_keys()


def find_key(catalog: Catalog, secret: str) -> ApiKey | None:
    """The active key with this secret, if any."""
    return catalog.find_key(hash_key(secret))


# --- the request's principal -------------------------------------------------------------


def ever_had_keys(catalog: Catalog) -> bool:
    """Whether any key was ever created (revoked ones count)."""
    return catalog.ever_had_keys()


def _is_open(catalog: Catalog, open_without_keys: bool, open_after_keys: bool) -> bool:
    if not open_without_keys or has_active_keys(catalog):
        return False
    return open_after_keys or not ever_had_keys(catalog)


def _closed(catalog: Catalog, open_without_keys: bool) -> Unauthorized:
    if has_active_keys(catalog):
        return Unauthorized("an API key is required: send `Authorization: Bearer <key>`")
    if open_without_keys and ever_had_keys(catalog):
        return Unauthorized(
            "an API key is required: every key was revoked and the service stays closed; "
            "create one with `ragsearch keys create` (RAGSEARCH_OPEN_AFTER_KEYS reopens it)"
        )
    return Unauthorized(
        "this server requires an API key and none exists; create one with `ragsearch keys create`"
    )


def principal_for(
    catalog: Catalog,
    authorization: str | None,
    origin: str | None,
    *,
    open_without_keys: bool = True,
    open_after_keys: bool = False,
) -> Principal:
    """Resolve the caller from the Authorization and Origin headers.

    The service is open (whatever bearer value is sent) while no key exists, and only if
    `open_without_keys`; once any key has existed it stays closed after they are all
    revoked, unless `open_after_keys`.
    Raises `Unauthorized` for a missing or unknown key, `Forbidden` for a widget key used
    from an origin it does not list. Browsers always send Origin cross-site, so the list
    guards embedding; the read-only scope, one collection and rate limit bound what a copied
    widget key can do elsewhere.
    """
    scheme, _, secret = (authorization or "").partition(" ")
    found = None
    if scheme.lower() == "bearer" and secret.strip():
        found = find_key(catalog, secret.strip())
    if found is None:
        # Open mode: OpenAI-style clients insist on sending some key; any value will do.
        if _is_open(catalog, open_without_keys, open_after_keys):
            return open_principal()
        if secret.strip() and scheme.lower() == "bearer":
            raise Unauthorized("the API key is unknown or revoked")
        raise _closed(catalog, open_without_keys)
    principal = principal_of(found)
    if principal.allowed_origins and origin is not None:
        try:
            allowed = normalize_origin(origin) in principal.allowed_origins
        except InputError:
            allowed = False
        if not allowed:
            raise Forbidden(f"key {principal.name!r} may not be used from origin {origin!r}")
    return principal


class RateLimiter:
    """One token bucket per key: holds a minute's worth of requests, refills continuously."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, last time)
        self._lock = threading.Lock()

    def check(self, principal: Principal) -> None:
        """Take one token for `principal`'s key, or raise `KeyRateLimited`."""
        rate = principal.rate_per_minute
        if rate is None or principal.key_id is None:
            return
        capacity = max(rate, 1.0)
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(principal.key_id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate / 60.0)
            if tokens < 1.0:
                self._buckets[principal.key_id] = (tokens, now)
                wait = (1.0 - tokens) * 60.0 / rate
                raise KeyRateLimited(
                    f"key {principal.name!r} is limited to {rate:g} requests per minute",
                    retry_after=wait,
                )
            self._buckets[principal.key_id] = (tokens - 1.0, now)
