"""What callers get to see: readiness per key, embedded keys, logs, docs, provider errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from indexer.settings import Settings
from service.http.app import create_app
from service.query.engine import Engine
from tests.service.conftest import FakeClock, assert_error, bearer, fill, make_app, new_key

SITE = "https://site.example"
DEAD_ZHIPU = "http://127.0.0.1:9/api/paas/v4"  # nothing listens on the discard port


@pytest.fixture
def two(loaded: TestClient) -> TestClient:
    fill(loaded, "other", ["release.md"])
    return loaded


def test_readyz_names_only_collections_the_key_may_read(
    two: TestClient, settings: Settings
) -> None:
    widget = bearer(
        new_key(settings, "site", ["read"], collections=["docs"], allowed_origins=[SITE])
    )
    limited = bearer(new_key(settings, "docs-only", ["read"], collections=["docs"]))
    admin = bearer(new_key(settings, "ops", ["admin"]))

    def names(headers: dict[str, str]) -> list[str]:
        response = two.get("/readyz", headers=headers)
        assert response.status_code == 200, response.text
        return [c["name"] for c in response.json()["checks"]]

    assert names(widget) == ["catalog", "models"]
    assert names(limited) == ["catalog", "models", "collection:docs"]
    assert names(admin) == ["catalog", "models", "collection:docs", "collection:other"]


def test_widget_page_embeds_only_widget_keys(loaded: TestClient, settings: Settings) -> None:
    admin = new_key(settings, "ops", ["admin"])
    widget = new_key(settings, "site", ["read"], collections=["docs"], allowed_origins=[SITE])

    refused = loaded.get("/widget", params={"collection": "docs", "key": admin})
    unknown = loaded.get("/widget", params={"collection": "docs", "key": "rsk_madeup"})
    page = loaded.get("/widget", params={"collection": "docs", "key": widget})

    assert "widget key" in assert_error(refused, 403, "forbidden")["message"]
    assert admin not in refused.text
    assert_error(unknown, 403, "forbidden")
    assert page.status_code == 200 and widget in page.text


def test_keys_in_logged_urls_are_redacted(app: object, caplog: pytest.LogCaptureFixture) -> None:
    secret = "rsk_" + "A1b2C3d4" * 5
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # uvicorn's access line: client, method, path with query, HTTP version, status
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/widget?collection=docs&key={secret}",
            "1.1",
            200,
        )
    assert secret not in caplog.text
    assert "key=[redacted]" in caplog.text


def test_docs_work_offline_and_the_schema_is_public(loaded: TestClient, settings: Settings) -> None:
    new_key(settings, "ops", ["admin"])
    docs = loaded.get("/docs")
    script = loaded.get("/docs-assets/swagger-ui-bundle.js")
    schema = loaded.get("/openapi.json")

    assert docs.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text
    assert schema.status_code == 200
    assert schema.json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert_error(loaded.get("/v1/collections"), 401, "unauthorized")


@pytest.fixture
def dead_provider(seeded: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """A loaded app whose Zhipu chat, rerank and embedding calls cannot connect."""
    settings = seeded.model_copy(
        update={
            "zhipu_api_key": SecretStr("test-key"),
            "zhipu_base_url": DEAD_ZHIPU,
            "zhipu_max_retries": 0,
        }
    )
    engine = Engine(settings)
    try:
        with TestClient(make_app(settings, clock, engine)) as client:
            yield client
    finally:
        asyncio.run(engine.aclose())


def test_provider_failures_are_one_503_without_the_upstream_url(
    dead_provider: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    question = {"query": "How do I back up the data directory?", "collection": "docs"}
    with caplog.at_level(logging.WARNING):
        answered = dead_provider.post("/v1/answer", json=question)
        searched = dead_provider.post("/v1/search", json=question)

    message = assert_error(answered, 503, "provider_unavailable")["message"]
    assert message == "the model provider is unavailable; try again later"
    assert "127.0.0.1" not in answered.text and "Zhipu" not in answered.text
    assert searched.status_code == 200
    assert "127.0.0.1" not in searched.text
    assert "cannot reach Zhipu at http://127.0.0.1:9" in caplog.text  # kept for the operator


def test_upload_during_an_embedding_outage_is_503_not_422(dead_provider: TestClient) -> None:
    created = dead_provider.post("/v1/collections", json={"name": "z", "embedder": "zhipu"})
    assert created.status_code == 201, created.text
    uploaded = dead_provider.post(
        "/v1/collections/z/documents", json={"source": "a.txt", "text": "some text to embed"}
    )
    assert_error(uploaded, 503, "provider_unavailable")
    assert "127.0.0.1" not in uploaded.text


def test_create_app_builds_without_network(settings: Settings) -> None:
    assert create_app(settings).openapi()["openapi"].startswith("3.")
