"""Where requests may come from: localhost and the configured public origins.

Without API keys (open mode) anyone who can make a browser send a request could use the
service: a page on another site can POST a "simple" multipart form cross-site (no
preflight), and DNS rebinding points a foreign name at 127.0.0.1. So in open mode the `Host`
must be localhost or a public origin's host, and an `Origin`, when sent, must be one of them
too. The MCP transport applies the same lists (its DNS-rebinding protection) always.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from indexer.errors import Forbidden, InputError
from indexer.settings import Settings

__all__ = ["LOCAL_HOSTS", "OriginPolicy"]

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _split_host(host: str) -> str:
    """`name` of `name:port` (IPv6 `[::1]:8000` keeps its brackets), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Host names and browser origins a request without a key may come from."""

    hosts: frozenset[str]
    origins: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        origins = set()
        hosts = set(LOCAL_HOSTS)
        for origin in settings.public_origins:
            parts = urlsplit(origin.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InputError(f"public origin {origin!r} must look like https://site.example")
            origins.add(f"{parts.scheme}://{parts.netloc.lower()}")
            hosts.add(_split_host(parts.netloc))
        return cls(frozenset(hosts), frozenset(origins))

    def host_allowed(self, host: str | None) -> bool:
        return host is not None and _split_host(host) in self.hosts

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser, or a same-origin GET
        parts = urlsplit(origin.strip().lower())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        if _split_host(parts.netloc) in LOCAL_HOSTS:
            return True
        return f"{parts.scheme}://{parts.netloc}" in self.origins

    def check_open_request(self, host: str | None, origin: str | None) -> None:
        """Raise Forbidden for a keyless request from a foreign Host or Origin."""
        if not self.host_allowed(host):
            raise Forbidden(
                f"Host {host!r} is not localhost or a public origin: without API keys this "
                "service answers only local requests (set RAGSEARCH_PUBLIC_ORIGINS, or create a "
                "key with `ragsearch keys create`)"
            )
        if not self.origin_allowed(origin):
            raise Forbidden(
                f"cross-site request from {origin!r} refused: without API keys only pages on "
                "localhost or RAGSEARCH_PUBLIC_ORIGINS may call this service"
            )

    def mcp_hosts(self) -> list[str]:
        """The Host patterns for MCP's DNS-rebinding protection (any port)."""
        return sorted({p for h in self.hosts for p in (h, f"{h}:*")})

    def mcp_origins(self) -> list[str]:
        local = {
            f"{s}://{h}{p}" for s in ("http", "https") for h in LOCAL_HOSTS for p in ("", ":*")
        }
        return sorted(local | self.origins)
