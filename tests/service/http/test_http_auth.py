"""API keys: open without keys, bearer keys with scopes and collections, widget keys, limits."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from indexer.settings import Settings
from tests.conftest import Cli
from tests.service.conftest import FakeClock, assert_error, bearer, fill, new_key, upload

SEARCH = {"query": "data directory", "collection": "docs"}
SITE = "https://site.example"


@pytest.fixture
def two(loaded: TestClient) -> TestClient:
    """`docs` plus a second collection `other`, both filled while the service is open."""
    fill(loaded, "other", ["release.md"])
    return loaded


def test_without_keys_everything_is_open(two: TestClient) -> None:
    assert two.post("/v1/search", json=SEARCH).status_code == 200
    assert two.get("/metrics").status_code == 200


def test_once_a_key_exists_requests_need_it(two: TestClient, settings: Settings) -> None:
    new_key(settings, "ops", ["admin"])

    assert (
        "Bearer"
        in assert_error(two.post("/v1/search", json=SEARCH), 401, "unauthorized")["message"]
    )
    assert_error(
        two.post("/v1/search", json=SEARCH, headers=bearer("rsk_wrong")), 401, "unauthorized"
    )
    assert_error(two.get("/v1/collections"), 401, "unauthorized")
    assert_error(two.get("/readyz"), 401, "unauthorized")
    assert two.get("/healthz").json() == {"status": "ok"}


def test_scopes_decide_what_a_key_may_do(two: TestClient, settings: Settings) -> None:
    reader = bearer(new_key(settings, "reader", ["read"]))
    writer = bearer(new_key(settings, "writer", ["write"]))

    assert two.post("/v1/search", json=SEARCH, headers=reader).status_code == 200
    assert_error(upload(two, "docs", "release.md", headers=reader), 403, "forbidden")
    assert upload(two, "docs", "release.md", headers=writer).status_code == 201
    assert two.post("/v1/search", json=SEARCH, headers=writer).status_code == 200
    creating = two.post(
        "/v1/collections", json={"name": "x", "embedder": "hashing"}, headers=writer
    )
    assert "'admin'" in assert_error(creating, 403, "forbidden")["message"]


def test_key_limited_to_a_collection_cannot_touch_another(
    two: TestClient, settings: Settings
) -> None:
    key = bearer(new_key(settings, "docs-rw", ["write"], collections=["docs"]))

    assert two.post("/v1/search", json=SEARCH, headers=key).status_code == 200
    read_other = two.post("/v1/search", json={**SEARCH, "collection": "other"}, headers=key)
    write_other = upload(two, "other", "guide.md", headers=key)
    listed = two.get("/v1/collections", headers=key).json()["collections"]

    assert "'other'" in assert_error(read_other, 403, "forbidden")["message"]
    assert_error(write_other, 403, "forbidden")
    assert [c["name"] for c in listed] == ["docs"]


def test_revoked_key_stops_working(two: TestClient, settings: Settings, cli: Cli) -> None:
    new_key(settings, "ops", ["admin"])
    key = bearer(new_key(settings, "temp", ["read"]))
    assert two.post("/v1/search", json=SEARCH, headers=key).status_code == 200

    assert cli("keys", "revoke", "temp").exit_code == 0

    assert_error(two.post("/v1/search", json=SEARCH, headers=key), 401, "unauthorized")


def test_widget_key_only_searches_and_answers_its_collection(
    two: TestClient, settings: Settings
) -> None:
    key = new_key(
        settings, "site", ["read"], collections=["docs"], allowed_origins=[SITE], rate_per_minute=30
    )
    headers = {**bearer(key), "Origin": SITE}

    assert two.post("/v1/search", json=SEARCH, headers=headers).status_code == 200
    answer = two.post("/v1/answer", json={**SEARCH, "query": "data directory?"}, headers=headers)
    assert answer.status_code == 200
    for response in (
        two.get("/v1/collections", headers=headers),
        two.get("/v1/collections/docs/documents", headers=headers),
        upload(two, "docs", "release.md", headers=headers),
        two.delete("/v1/collections/docs/documents/1", headers=headers),
        two.delete("/v1/collections/docs", headers=headers),
        two.post("/v1/search", json={**SEARCH, "collection": "other"}, headers=headers),
    ):
        assert_error(response, 403, "forbidden")


def test_widget_key_from_a_foreign_origin_is_403(two: TestClient, settings: Settings) -> None:
    key = new_key(settings, "site", ["read"], collections=["docs"], allowed_origins=[SITE])
    headers = {**bearer(key), "Origin": "https://evil.example"}

    response = two.post("/v1/search", json=SEARCH, headers=headers)

    assert "evil.example" in assert_error(response, 403, "forbidden")["message"]


def test_rate_limit_is_429_until_the_bucket_refills(
    two: TestClient, settings: Settings, clock: FakeClock
) -> None:
    key = new_key(
        settings, "site", ["read"], collections=["docs"], allowed_origins=[SITE], rate_per_minute=2
    )
    headers = {**bearer(key), "Origin": SITE}

    statuses = [two.post("/v1/search", json=SEARCH, headers=headers).status_code for _ in range(2)]
    limited = two.post("/v1/search", json=SEARCH, headers=headers)
    assert statuses == [200, 200]
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "30"

    clock.advance(29)
    assert two.post("/v1/search", json=SEARCH, headers=headers).status_code == 429
    clock.advance(30)  # 59 s after the burst: almost two tokens back
    assert two.post("/v1/search", json=SEARCH, headers=headers).status_code == 200


def test_keys_cli_creates_lists_and_revokes(cli: Cli, loaded: TestClient) -> None:
    created = cli(
        "keys", "create", "site", "--widget", "-c", "docs", "--origin", SITE, "--rate", "30"
    )
    assert created.exit_code == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("rsk_") and len(secret) > 40
    assert "not shown again" in created.stderr

    listed = cli.json("keys", "list")["keys"]
    assert [(k["name"], k["kind"], k["scopes"], k["collections"]) for k in listed] == [
        ("site", "widget", ["read"], ["docs"])
    ]
    assert listed[0]["allowed_origins"] == [SITE]
    assert listed[0]["rate_per_minute"] == 30
    assert secret not in json.dumps(listed)
    assert secret[:12] == listed[0]["prefix"]

    headers = {**bearer(secret), "Origin": SITE}
    assert loaded.post("/v1/search", json=SEARCH, headers=headers).status_code == 200
    assert cli("keys", "revoke", "site").exit_code == 0
    assert cli.json("keys", "list")["keys"] == []


@pytest.mark.parametrize(
    "args",
    [
        ("--widget", "-c", "docs"),  # no origin
        ("--widget", "-c", "docs", "-c", "other", "--origin", SITE),  # two collections
        ("--widget", "-c", "docs", "--origin", SITE, "--scope", "write"),
        ("--origin", SITE),  # origins without --widget
        ("-c", "missing"),  # unknown collection
    ],
)
def test_keys_cli_refuses_bad_keys(cli: Cli, loaded: TestClient, args: tuple[str]) -> None:
    result = cli("keys", "create", "k", *args)

    assert result.exit_code in (2, 3), result.stdout
    assert result.stderr.startswith("error: ")


def test_serve_refuses_a_public_address_without_keys(cli: Cli) -> None:
    result = cli("serve", "--host", "0.0.0.0", "--port", "1")

    assert result.exit_code == 2
    assert "no API key exists, so refusing to bind to 0.0.0.0" in result.stderr
    assert "--allow-open" in result.stderr


def test_server_bound_publicly_refuses_requests_while_no_key_exists(
    settings: Settings, clock: FakeClock
) -> None:
    from service.http.app import create_app

    with TestClient(create_app(settings, clock=clock, open_without_keys=False)) as client:
        response = client.get("/v1/collections")
        health = client.get("/healthz")

    assert "ragsearch keys create" in assert_error(response, 401, "unauthorized")["message"]
    assert health.status_code == 200
