"""Download a web page for ingest, refusing to be used against private networks (SSRF).

Every hop is checked before any byte is sent: the scheme must be http(s); the host name is
resolved and every address must be public (not private, loopback, link-local, multicast,
reserved or unspecified) unless it falls in a configured allowed network; the connection
then goes to the checked address (the name is kept for `Host` and TLS), so a DNS answer that
changes between check and connect cannot redirect it. Redirects are followed by hand, each
target checked again. The body is streamed with a size cap, and the whole fetch has a
deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from indexer.errors import UrlFetchFailed, UrlRefused
from indexer.parsers import SUPPORTED_SUFFIXES

__all__ = ["FetchedPage", "UrlPolicy", "fetch_url", "is_url"]

MAX_REDIRECTS = 5
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
_SUFFIX_BY_TYPE = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}


def is_url(value: str) -> bool:
    """Whether a command-line argument names a web page rather than a path."""
    return value.lower().startswith(("http://", "https://"))


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """Where URL ingests may go and how much they may take."""

    max_bytes: int
    timeout: float
    allowed_networks: tuple[Network, ...] = ()
    resolver: Resolver = _system_resolver

    @classmethod
    def from_settings(cls, max_bytes: int, timeout: float, allowed: Sequence[str]) -> UrlPolicy:
        try:
            networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed)
        except ValueError as exc:
            raise UrlRefused(f"url_fetch_allowed_networks: {exc}") from exc
        return cls(max_bytes=max_bytes, timeout=timeout, allowed_networks=networks)

    def allows(self, address: IpAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(address in network for network in self.allowed_networks):
            return True
        return address.is_global and not address.is_multicast


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A downloaded page: where it ended up, what it is, its bytes."""

    url: str  # after redirects
    filename: str  # decides the parser, by suffix
    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    host: str
    address: str
    connect_url: str


async def fetch_url(
    url: str, policy: UrlPolicy, *, transport: httpx.AsyncBaseTransport | None = None
) -> FetchedPage:
    """GET `url` within `policy`; raises UrlRefused or UrlFetchFailed."""
    deadline = time.monotonic() + policy.timeout
    async with httpx.AsyncClient(
        transport=transport, follow_redirects=False, trust_env=False, timeout=policy.timeout
    ) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            target = await _checked(current, policy)
            try:
                result = await asyncio.wait_for(
                    _get(client, target, policy.max_bytes), max(deadline - time.monotonic(), 0.01)
                )
            except TimeoutError:
                raise UrlFetchFailed(
                    f"{url}: no complete answer within {policy.timeout:g}s"
                ) from None
            except httpx.HTTPError as exc:
                raise UrlFetchFailed(f"{current}: {type(exc).__name__}: {exc}") from exc
            if isinstance(result, str):  # a redirect: check the next hop like the first
                current = urljoin(current, result)
                continue
            return _page(current, *result)
    raise UrlFetchFailed(f"{url}: more than {MAX_REDIRECTS} redirects")


async def _checked(url: str, policy: UrlPolicy) -> _Target:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"{url}: only http:// and https:// URLs can be ingested")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list(await asyncio.to_thread(policy.resolver, host, port))
        except OSError as exc:
            raise UrlFetchFailed(f"{url}: cannot resolve {host!r} ({exc})") from exc
    if not addresses:
        raise UrlFetchFailed(f"{url}: {host!r} has no address")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if not policy.allows(address):
            raise UrlRefused(
                f"{url}: {host} resolves to {address}, a private, loopback or link-local "
                "address; URL ingests reach only public addresses "
                "(see RAGSEARCH_URL_FETCH_ALLOWED_NETWORKS)"
            )
    chosen = addresses[0].split("%", 1)[0]
    netloc_host = f"[{chosen}]" if ":" in chosen else chosen
    netloc = f"{netloc_host}:{parts.port}" if parts.port else netloc_host
    connect = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return _Target(url=url, host=host, address=chosen, connect_url=connect)


async def _get(
    client: httpx.AsyncClient, target: _Target, max_bytes: int
) -> str | tuple[str, bytes]:
    """The redirect location, or (content type, body) of a 200."""
    parts = urlsplit(target.url)
    host_header = parts.netloc.rsplit("@", 1)[-1]
    request = client.build_request(
        "GET",
        target.connect_url,
        headers={"Host": host_header, "Accept": "*/*", "User-Agent": "ragsearch-ingest"},
        extensions={"sni_hostname": target.host},
    )
    response = await client.send(request, stream=True)
    try:
        if response.is_redirect and "location" in response.headers:
            return str(response.headers["location"])
        if response.status_code != 200:
            raise UrlFetchFailed(f"{target.url}: HTTP {response.status_code}")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise UrlFetchFailed(f"{target.url}: {declared} bytes is over the {max_bytes:,} limit")
        body = bytearray()
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > max_bytes:
                raise UrlFetchFailed(f"{target.url}: over the {max_bytes:,}-byte limit")
        return response.headers.get("content-type", ""), bytes(body)
    finally:
        await response.aclose()


def _page(url: str, content_type: str, data: bytes) -> FetchedPage:
    media = content_type.split(";", 1)[0].strip().lower()
    name = PurePosixPath(urlsplit(url).path).name or "index"
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        wanted = _SUFFIX_BY_TYPE.get(media)
        if wanted is None:
            raise UrlFetchFailed(f"{url}: cannot ingest content of type {media or 'unknown'!r}")
        name = f"{name}{wanted}"
    return FetchedPage(url=url, filename=name, media_type=media, data=data)
