"""Every way a request can be wrong gets the one error body, with the request id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from indexer.settings import Settings
from tests.service.conftest import FakeClock, ScriptedChat, assert_error, engine_client


def test_empty_query_is_400(loaded: TestClient) -> None:
    response = loaded.post("/v1/search", json={"query": "   ", "collection": "docs"})

    assert assert_error(response, 400, "invalid_input")["message"] == "query is empty"


def test_megabyte_query_is_400_with_the_limit(loaded: TestClient) -> None:
    response = loaded.post("/v1/search", json={"query": "a" * 1_000_000, "collection": "docs"})

    assert "the limit is 4,096" in assert_error(response, 400, "invalid_input")["message"]


def test_body_over_the_json_limit_is_413(loaded: TestClient) -> None:
    response = loaded.post("/v1/answer", json={"query": "a" * 2_000_000, "collection": "docs"})

    assert "over the limit" in assert_error(response, 413, "payload_too_large")["message"]


def test_body_growing_past_the_limit_without_content_length_is_413(loaded: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b'{"query": "' + b"a" * 600_000

    response = loaded.post(
        "/v1/search", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


def test_unknown_collection_is_404(loaded: TestClient) -> None:
    response = loaded.post("/v1/search", json={"query": "data", "collection": "nope"})

    assert assert_error(response, 404, "not_found")["message"] == "collection 'nope' does not exist"


def test_malformed_filter_is_400_with_the_filter_message(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/search",
        json={"query": "data", "collection": "docs", "filter": {"year": {"$regex": "2"}}},
    )

    assert "filter.year" in assert_error(response, 400, "invalid_input")["message"]


def test_wrong_content_type_is_415(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/search", content=b"query=data", headers={"Content-Type": "text/plain"}
    )

    assert "application/json" in assert_error(response, 415, "unsupported_media_type")["message"]


def test_invalid_field_is_422_naming_the_field(loaded: TestClient) -> None:
    response = loaded.post("/v1/search", json={"query": "data", "collection": "docs", "top_k": 0})

    assert assert_error(response, 422, "validation_error")["message"].startswith("top_k:")


def test_malformed_json_is_422(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/search", content=b'{"query": ', headers={"Content-Type": "application/json"}
    )

    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nowhere", 404, "not_found"),
        ("DELETE", "/v1/search", 405, "method_not_allowed"),
    ],
)
def test_unknown_route_and_method_use_the_error_body(
    client: TestClient, method: str, path: str, status: int, code: str
) -> None:
    response = client.request(method, path)

    assert path in assert_error(response, status, code)["message"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    made = client.get("/v1/nowhere")
    hostile = client.get("/healthz", headers={"X-Request-ID": "a b<script>" * 20})

    assert given.headers["x-request-id"] == "abc-123"
    assert made.json()["request_id"] == made.headers["x-request-id"] != ""
    assert hostile.headers["x-request-id"] not in ("", "a b<script>" * 20)


def test_unexpected_error_is_a_generic_500_without_details(
    settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    chat = ScriptedChat(["a ", "b"], fail_with=RuntimeError("secret internals"))
    with engine_client(settings, clock, chat) as client:
        client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
        client.post(
            "/v1/collections/docs/documents",
            json={"source": "a.md", "text": "Stop writers before copying the data directory."},
        )
        response = client.post(
            "/v1/answer",
            json={"query": "copying the data directory", "collection": "docs"},
            headers={"X-Request-ID": "boom-1"},
        )

    assert_error(response, 500, "internal_error")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert "secret internals" in caplog.text and "boom-1" in caplog.text
