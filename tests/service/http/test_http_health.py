"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

from fastapi.testclient import TestClient

from indexer.settings import Settings
from tests.service.conftest import assert_error

QUESTION = "How do I back up the data directory?"


def test_healthz_is_always_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_collection(loaded: TestClient) -> None:
    response = loaded.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    docs = next(c for c in body["checks"] if c["name"] == "collection:docs")
    assert docs["ok"] is True
    assert docs["chunks"] == docs["vectors"] > 0


def test_readyz_is_503_when_a_vector_file_disagrees_with_the_catalog(
    loaded: TestClient, settings: Settings
) -> None:
    for path in settings.vectors_dir.glob("*.faiss"):
        path.unlink()

    response = loaded.get("/readyz")

    assert "collection:docs" in assert_error(response, 503, "not_ready")["message"]
    docs = next(c for c in response.json()["checks"] if c["name"] == "collection:docs")
    assert docs["ok"] is False
    assert docs["vectors"] == 0


def test_metrics_count_requests_and_stage_latencies(loaded: TestClient) -> None:
    loaded.post("/v1/search", json={"query": "data directory", "collection": "docs"})
    loaded.post("/v1/search", json={"query": "  ", "collection": "docs"})
    loaded.get("/v1/nowhere")

    text = loaded.get("/metrics").text

    assert (
        'ragsearch_http_requests_total{method="POST",route="/v1/search",status="200"} 1.0' in text
    )
    assert (
        'ragsearch_http_requests_total{method="POST",route="/v1/search",status="400"} 1.0' in text
    )
    assert 'ragsearch_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'ragsearch_search_stage_duration_seconds_count{stage="lexical"} 1.0' in text
    assert 'ragsearch_search_stage_duration_seconds_count{stage="search"} 1.0' in text
    assert 'ragsearch_http_request_duration_seconds_count{method="POST",route="/v1/search"}' in text


def test_metrics_count_model_tokens_by_model(chat_client: TestClient) -> None:
    chat_client.post("/v1/answer", json={"query": QUESTION, "collection": "docs"})
    chat_client.post("/v1/answer", json={"query": QUESTION, "collection": "docs", "stream": True})

    text = chat_client.get("/metrics").text

    assert 'ragsearch_model_tokens_total{kind="prompt",model="glm-4.6"} 200.0' in text
    assert 'ragsearch_model_tokens_total{kind="completion",model="glm-4.6"} 20.0' in text
    assert 'ragsearch_search_stage_duration_seconds_count{stage="generate"} 2.0' in text


def test_each_app_has_its_own_metrics(loaded: TestClient, settings: Settings) -> None:
    from service.http.app import create_app

    loaded.post("/v1/search", json={"query": "data directory", "collection": "docs"})
    other = create_app(settings)
    with TestClient(other) as fresh:
        text = fresh.get("/metrics").text

    assert 'route="/v1/search"' not in text
