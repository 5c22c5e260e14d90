"""Malformed input: each case is a 4xx with a message, answered within a second, never a 500."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import assert_error

HUGE = 10**30
JSON = {"content-type": "application/json"}


def timed(call: Any) -> Any:
    """The response of `call`, which must come within a second (best of three tries, so a
    load spike on a shared machine is not mistaken for slow work)."""
    fastest = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        response = call()
        fastest = min(fastest, time.perf_counter() - started)
        if fastest < 1.0:
            break
    assert fastest < 1.0, "malformed input must be refused at once"
    return response


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/collections/docs/documents/{HUGE}", None),
        ("DELETE", f"/v1/collections/docs/documents/{HUGE}", None),
        ("GET", f"/v1/collections/docs/documents?offset={HUGE}", None),
        (
            "POST",
            "/v1/answer",
            {"query": "x", "collection": "docs", "scope": "documents", "document_ids": [HUGE]},
        ),
        ("POST", "/v1/search", {"query": "x", "collection": "docs", "filter": {"year": HUGE}}),
    ],
)
def test_integers_beyond_64_bits_are_refused(
    loaded: TestClient, method: str, path: str, body: Any
) -> None:
    response = timed(lambda: loaded.request(method, path, json=body))
    assert 400 <= response.status_code < 500, response.text
    assert "9007199254740991" in response.text or "64 bits" in response.text


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/v1/search", '{"query": "x\\ud800", "collection": "docs"}'),
        ("/v1/answer", '{"query": "x\\ud800", "collection": "docs"}'),
        ("/v1/search", '{"query": "x", "collection": "docs", "filter": {"a": "\\ud800"}}'),
        (
            "/v1/chat/completions",
            '{"model": "ragsearch:docs", "messages": [{"role": "user", "content": "x\\ud800"}]}',
        ),
    ],
)
def test_lone_surrogates_are_refused(loaded: TestClient, path: str, raw: str) -> None:
    response = timed(lambda: loaded.post(path, content=raw, headers=JSON))
    assert response.status_code in (400, 422), response.text
    assert "surrogate" in response.text or "unicode string" in response.text


def test_a_query_of_nul_characters_is_empty(loaded: TestClient) -> None:
    response = loaded.post("/v1/search", json={"query": "\x00\x00 \x01", "collection": "docs"})
    assert "empty" in assert_error(response, 400, "invalid_input")["message"]


def test_non_finite_metadata_is_refused_and_filters_keep_working(loaded: TestClient) -> None:
    url = "/v1/collections/docs/documents"
    multipart = loaded.post(
        url, files=[("files", ("n.txt", b"hello nan"))], data={"metadata": '{"year": NaN}'}
    )
    as_json = loaded.post(
        url, content='{"source": "i.txt", "text": "hi", "metadata": {"y": Infinity}}', headers=JSON
    )
    search = loaded.post(
        "/v1/search", json={"query": "data", "collection": "docs", "filter": {"year": 2020}}
    )

    assert "NaN" in assert_error(multipart, 400, "invalid_input")["message"]
    assert 400 <= as_json.status_code < 500, as_json.text
    assert search.status_code == 200, search.text
    sources = [d["source"] for d in loaded.get(url).json()["documents"]]
    assert "n.txt" not in sources and "i.txt" not in sources


def test_deeply_nested_metadata_is_refused(loaded: TestClient) -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    url = "/v1/collections/docs/documents"
    multipart = timed(
        lambda: loaded.post(url, files=[("files", ("d.txt", b"hi"))], data={"metadata": deep})
    )
    as_json = timed(
        lambda: loaded.post(
            url, content='{"source": "d.txt", "text": "hi", "metadata": ' + deep + "}", headers=JSON
        )
    )
    shallow_enough = '{"a":' * 20 + "1" + "}" * 20
    twenty = loaded.post(
        url, files=[("files", ("d.txt", b"hi"))], data={"metadata": shallow_enough}
    )

    assert_error(multipart, 400, "invalid_input")
    assert 400 <= as_json.status_code < 500
    assert "deeper than" in assert_error(twenty, 400, "invalid_input")["message"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"a\x00b": 1}, "NUL"),
        ({"a": {"$in": list(range(100_000))}}, "limit is 1,024"),
        ({"$or": [{"a": i} for i in range(5_000)]}, "limit is 1,024"),
        ({"a": float("inf")} if False else {"a": {"$gte": HUGE}}, "64 bits"),
    ],
)
def test_hostile_filters_are_refused_at_once(loaded: TestClient, spec: Any, says: str) -> None:
    body = json.dumps({"query": "data", "collection": "docs", "filter": spec})
    response = timed(lambda: loaded.post("/v1/search", content=body, headers=JSON))
    assert says in assert_error(response, 400, "invalid_input")["message"]


def test_filter_nested_beyond_the_setting_is_refused(loaded: TestClient) -> None:
    spec: dict[str, Any] = {"a": 1}
    for _ in range(50):
        spec = {"$and": [spec]}
    response = timed(
        lambda: loaded.post("/v1/search", json={"query": "x", "collection": "docs", "filter": spec})
    )
    assert "deeper than" in assert_error(response, 400, "invalid_input")["message"]


def test_a_filter_within_the_bounds_still_works(loaded: TestClient) -> None:
    spec = {"source": {"$in": ["guide.md", *(f"other-{i}" for i in range(500))]}}
    response = loaded.post(
        "/v1/search", json={"query": "data", "collection": "docs", "filter": spec}
    )
    assert response.status_code == 200, response.text
    assert {r["source"] for r in response.json()["results"]} == {"guide.md"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "z", "embedder": "zhipu"}, "no Zhipu API key"),
        ({"name": "z", "embedder": "local", "model": "/nonexistent/model"}, "not available"),
        ({"name": "z", "model": "/etc"}, "not available"),
        ({"name": "z", "embedder": "local", "model": "../../etc"}, "not available"),
    ],
)
def test_collection_requests_the_server_cannot_serve_are_client_errors(
    client: TestClient, body: dict[str, Any], says: str
) -> None:
    response = timed(lambda: client.post("/v1/collections", json=body))
    assert says in assert_error(response, 400, "invalid_input")["message"]
