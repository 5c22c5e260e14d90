"""URL ingest downloads: SSRF refusals, redirects re-checked, limits, all against real sockets.

A small site runs under uvicorn on 127.0.0.1 and records every request it gets, so a test
can say "the refused fetch never reached the server".
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from indexer.errors import UrlFetchFailed, UrlRefused
from indexer.url_fetch import UrlPolicy, fetch_url, is_url
from tests.fakes.live_server import LiveServer

PAGE = "<html><head><title>Rotation</title></head><body><p>Rotated nightly.</p></body></html>"
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


class Site:
    """A web site with a page, redirects, a big and a slow answer; it records the Host headers."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/page", self.page),
                Route("/notes.md", self.notes),
                Route("/to", self.redirect),
                Route("/loop", self.loop),
                Route("/big", self.big),
                Route("/slow", self.slow),
                Route("/image", self.image),
            ]
        )

    async def page(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])
        return Response(PAGE, media_type="text/html; charset=utf-8")

    async def notes(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])
        return PlainTextResponse("# Notes\n\nKept for 7 days.\n")

    async def redirect(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])
        return RedirectResponse(request.query_params["url"], status_code=302)

    async def loop(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])
        return RedirectResponse("/loop", status_code=302)

    async def big(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])

        async def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 1000  # no Content-Length: the cap must count while streaming

        return StreamingResponse(chunks(), media_type="text/plain")

    async def slow(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])
        await asyncio.sleep(2)  # the site's fault: slower than the fetch deadline
        return PlainTextResponse("late")

    async def image(self, request: Request) -> Response:
        self.hosts.append(request.headers["host"])
        return Response(b"\x89PNG", media_type="image/png")


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    web = Site()
    with LiveServer(web.app) as server:
        yield web, server.url


def policy(allowed: tuple[Any, ...] = (), **options: Any) -> UrlPolicy:
    return UrlPolicy(
        max_bytes=options.pop("max_bytes", 100_000),
        timeout=options.pop("timeout", 5),
        allowed_networks=allowed,
        **options,
    )


def fetch(url: str, p: UrlPolicy) -> Any:
    return asyncio.run(fetch_url(url, p))


def test_loopback_private_and_link_local_targets_are_refused_before_connecting(
    site: tuple[Site, str],
) -> None:
    web, url = site
    port = url.rsplit(":", 1)[1]
    targets = [
        f"{url}/page",
        f"http://localhost:{port}/page",
        f"http://[::1]:{port}/page",
        f"http://[::ffff:127.0.0.1]:{port}/page",
        f"http://0.0.0.0:{port}/page",
        "http://10.0.0.1/page",
        "http://192.168.1.1/page",
        "http://169.254.169.254/latest/meta-data/",
    ]
    for target in targets:
        with pytest.raises(UrlRefused, match="private, loopback or link-local"):
            fetch(target, policy())
    assert web.hosts == []


def test_only_http_and_https_are_fetched() -> None:
    for target in ("file:///etc/passwd", "ftp://example.com/x", "gopher://x/"):
        with pytest.raises(UrlRefused, match="only http"):
            fetch(target, policy())
    assert is_url("HTTPS://example.com") and not is_url("docs/guide.md")


def test_a_public_name_resolving_to_a_private_address_is_refused() -> None:
    rebinding = policy(resolver=lambda host, port: ["93.184.216.34", "10.1.2.3"])

    with pytest.raises(UrlRefused, match=r"10\.1\.2\.3"):
        fetch("http://docs.example/page", rebinding)


def test_an_allowed_network_is_fetched_through_the_checked_address(site: tuple[Site, str]) -> None:
    web, url = site
    port = url.rsplit(":", 1)[1]
    pinned = policy(LOOPBACK, resolver=lambda host, p: ["127.0.0.1"])

    page = fetch(f"http://docs.test:{port}/page", pinned)
    notes = fetch(f"{url}/notes.md", pinned)

    assert page.data.decode() == PAGE
    assert (page.filename, page.media_type) == ("page.html", "text/html")
    assert notes.filename == "notes.md"
    # The connection went to the address that was checked; the name travelled as Host.
    assert web.hosts == [f"docs.test:{port}", f"127.0.0.1:{port}"]


def test_redirects_are_checked_again_at_every_hop(site: tuple[Site, str]) -> None:
    web, url = site
    port = url.rsplit(":", 1)[1]

    ok = fetch(f"{url}/to?url=/page", policy(LOOPBACK))
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.2"):
        fetch(f"{url}/to?url=http://127.0.0.2:{port}/page", policy(LOOPBACK))
    with pytest.raises(UrlRefused):
        fetch(f"{url}/to?url=http://169.254.169.254/latest/", policy(LOOPBACK))
    with pytest.raises(UrlFetchFailed, match="more than 5 redirects"):
        fetch(f"{url}/loop", policy(LOOPBACK))

    assert ok.url == f"{url}/page"
    assert web.hosts.count(f"127.0.0.1:{port}") == 2 + 1 + 1 + 6


def test_size_time_and_type_limits_fail_the_fetch(site: tuple[Site, str]) -> None:
    _, url = site

    with pytest.raises(UrlFetchFailed, match="limit"):
        fetch(f"{url}/big", policy(LOOPBACK, max_bytes=5000))
    with pytest.raises(UrlFetchFailed, match=r"within 0\.3s"):
        fetch(f"{url}/slow", policy(LOOPBACK, timeout=0.3))
    with pytest.raises(UrlFetchFailed, match=r"image/png"):
        fetch(f"{url}/image", policy(LOOPBACK))
    with pytest.raises(UrlFetchFailed, match="HTTP 404"):
        fetch(f"{url}/missing", policy(LOOPBACK))
