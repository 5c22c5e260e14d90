"""Hostile callers: revoked keys, cross-site requests and DNS rebinding in open mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.index import Index
from indexer.settings import Settings
from service.auth import revoke_key
from tests.service.conftest import FakeClock, assert_error, bearer, make_app, new_key, upload

SEARCH = {"query": "data directory", "collection": "docs"}
EVIL = "https://evil.example"
ROOT = Path(__file__).resolve().parents[2]


def revoke_all(settings: Settings, *names: str) -> None:
    index = Index(settings)
    try:
        for name in names:
            revoke_key(index.catalog, name)
    finally:
        index.close()


def test_revoking_every_key_keeps_the_service_closed(
    loaded: TestClient, settings: Settings
) -> None:
    new_key(settings, "ops", ["admin"])
    reader = bearer(new_key(settings, "reader", ["read"], collections=["docs"]))
    revoke_all(settings, "ops", "reader")

    with_revoked = loaded.post("/v1/search", json=SEARCH, headers=reader)
    without = loaded.get("/v1/collections")

    assert_error(with_revoked, 401, "unauthorized")
    assert "stays closed" in assert_error(without, 401, "unauthorized")["message"]
    assert_error(loaded.get("/metrics", headers=reader), 401, "unauthorized")
    assert_error(
        loaded.post("/v1/collections", json={"name": "x", "embedder": "hashing"}, headers=reader),
        401,
        "unauthorized",
    )


def test_open_after_keys_reopens_only_when_set(seeded: Settings, clock: FakeClock) -> None:
    new_key(seeded, "ops", ["admin"])
    revoke_all(seeded, "ops")
    reopened = seeded.model_copy(update={"open_after_keys": True})
    with TestClient(make_app(reopened, clock)) as client:
        assert client.post("/v1/search", json=SEARCH).status_code == 200


@pytest.fixture
def local_only(seeded: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """An open service (no keys) with no public origins, called as http://localhost."""
    settings = seeded.model_copy(update={"public_origins": []})
    with TestClient(make_app(settings, clock), base_url="http://localhost:8000") as client:
        yield client


def test_open_mode_refuses_a_foreign_host(local_only: TestClient) -> None:
    rebound = local_only.post("/v1/search", json=SEARCH, headers={"Host": "evil.example"})
    assert "Host 'evil.example'" in assert_error(rebound, 403, "forbidden")["message"]
    assert local_only.post("/v1/search", json=SEARCH).status_code == 200
    ip = local_only.post("/v1/search", json=SEARCH, headers={"Host": "127.0.0.1:8000"})
    assert ip.status_code == 200


def test_open_mode_refuses_a_cross_site_upload(local_only: TestClient) -> None:
    planted = upload(local_only, "docs", "release.md", headers={"Origin": EVIL})
    assert "cross-site" in assert_error(planted, 403, "forbidden")["message"]
    sources = [
        d["source"] for d in local_only.get("/v1/collections/docs/documents").json()["documents"]
    ]
    assert "release.md" not in sources
    local_page = upload(
        local_only, "docs", "release.md", headers={"Origin": "http://localhost:5173"}
    )
    assert local_page.status_code == 201, local_page.text


def test_public_origins_are_accepted_in_open_mode(seeded: Settings, clock: FakeClock) -> None:
    settings = seeded.model_copy(update={"public_origins": ["https://search.example"]})
    with TestClient(make_app(settings, clock), base_url="https://search.example") as client:
        ok = client.post("/v1/search", json=SEARCH, headers={"Origin": "https://search.example"})
        evil = client.post("/v1/search", json=SEARCH, headers={"Origin": EVIL})
    assert ok.status_code == 200, ok.text
    assert_error(evil, 403, "forbidden")


def test_mcp_refuses_a_rebound_host_even_with_a_key(
    local_only: TestClient, seeded: Settings
) -> None:
    key = bearer(new_key(seeded, "ops", ["admin"]))
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {**key, "Accept": "application/json, text/event-stream"}
    rebound = local_only.post("/mcp", json=call, headers={**headers, "Host": "evil.example"})
    local = local_only.post("/mcp", json=call, headers=headers)
    assert rebound.status_code == 421
    assert local.status_code == 200, local.text


def test_the_container_never_starts_an_open_server() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    command = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert "--allow-open" not in command
    assert "RAGSEARCH_ALLOW_OPEN_REMOTE" not in dockerfile
