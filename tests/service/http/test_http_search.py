"""`POST /v1/search` and `POST /v1/answer`: shapes, streaming and its agreement with JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from indexer.errors import ProviderUnavailable
from indexer.settings import Settings
from service.http.errors import PROVIDER_MESSAGE
from tests.service.conftest import FakeClock, ScriptedChat, engine_client, fill, parse_sse

QUESTION = "How do I back up the data directory?"


def test_search_returns_ranked_chunks_with_scores_and_timings(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/search", json={"query": "backing up the data directory", "collection": "docs"}
    )

    assert response.status_code == 200
    body = response.json()
    top = body["results"][0]
    assert top["source"] == "guide.md"
    assert "Stop writers before copying" in top["text"]
    assert {"chunk_id", "document_id", "title", "score", "span", "metadata"} <= set(top)
    assert {"dense", "lexical"} <= set(top["scores"])
    assert [r["score"] for r in body["results"]] == sorted(
        (r["score"] for r in body["results"]), reverse=True
    )
    assert {"dense", "lexical", "fuse", "total"} <= set(body["timings"])


def test_search_finds_chinese_text(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/search", json={"query": "结巴分词", "collection": "docs", "mode": "lexical"}
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["source"] == "chinese.md"
    assert "结巴分词" in results[0]["text"]


def test_search_honours_top_k_and_filter(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/search",
        json={
            "query": "data directory",
            "collection": "docs",
            "top_k": 1,
            "filter": {"source": {"$in": ["notes.txt"]}},
        },
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["source"] for r in results] == ["notes.txt"]


def test_answer_json_cites_the_sources_it_used(loaded: TestClient) -> None:
    response = loaded.post("/v1/answer", json={"query": QUESTION, "collection": "docs"})

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "extractive"
    assert body["grounded"] is True
    assert "[1]" in body["answer"]
    source_chunks = {s["chunk_id"] for s in body["sources"]}
    assert body["citations"]
    assert {c["chunk_id"] for c in body["citations"]} <= source_chunks
    assert {"answer", "citations", "sources", "route", "timings", "usage"} <= set(body)


def test_answer_stream_sends_events_in_order_and_agrees_with_json(loaded: TestClient) -> None:
    request = {"query": QUESTION, "collection": "docs"}
    plain = loaded.post("/v1/answer", json=request).json()

    response = loaded.post("/v1/answer", json={**request, "stream": True})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "sources"
    assert names[-2:] == ["citations", "done"]
    assert set(names[1:-2]) == {"delta"}
    data = dict(events)
    assert data["done"]["answer"] == plain["answer"]
    assert data["citations"]["citations"] == plain["citations"]
    assert "".join(d["text"] for n, d in events if n == "delta") == plain["answer"]
    sent = {s["chunk_id"] for s in data["sources"]["sources"]}
    assert {c["chunk_id"] for c in data["citations"]["citations"]} <= sent


def test_answer_stream_ends_with_one_error_event_when_the_model_fails(
    settings: Settings, clock: FakeClock
) -> None:
    chat = ScriptedChat(["first piece ", "never sent"], fail_with=ProviderUnavailable("GLM down"))
    with engine_client(settings, clock, chat) as client:
        fill(client)
        response = client.post(
            "/v1/answer",
            json={"query": QUESTION, "collection": "docs", "stream": True},
            headers={"X-Request-ID": "stream-1"},
        )

    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["sources", "delta", "error"]
    assert events[-1][1] == {
        "error": {"code": "provider_unavailable", "message": PROVIDER_MESSAGE},
        "request_id": "stream-1",
    }


def test_answer_stream_refuses_bad_input_before_streaming(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/answer", json={"query": QUESTION, "collection": "nope", "stream": True}
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_answer_with_a_chat_model_reports_the_model_and_its_usage(
    chat_client: TestClient,
) -> None:
    body = chat_client.post("/v1/answer", json={"query": QUESTION, "collection": "docs"}).json()

    assert body["model"] == "glm-4.6"
    assert body["answer"] == "Stop writers before copying the data directory [1]."
    assert body["citations"][0]["source"] == "guide.md"
    assert {"model": "glm-4.6", "prompt_tokens": 100, "completion_tokens": 10}.items() <= next(
        u for u in body["usage"] if u["model"] == "glm-4.6"
    ).items()
