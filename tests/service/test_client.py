"""The Python client against the real app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.settings import Settings
from service.client import ClientError, IngestReport, Job, RagsearchClient
from service.http.app import create_app
from tests.conftest import DATA, INGEST_DATA
from tests.fakes.live_server import LiveServer
from tests.service.chatbots import build_corpus
from tests.service.conftest import new_key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Settings]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("client") / "data")
    build_corpus(settings)
    key = new_key(settings, "ops", ["admin"])
    app = create_app(settings, job_poll_interval=0.02)
    with LiveServer(app) as live:
        yield live.url, key, settings


@pytest.fixture
def rag(server: tuple[str, str, Settings]) -> Iterator[RagsearchClient]:
    url, key, _ = server
    with RagsearchClient(url, api_key=key) as client:
        yield client


def test_client_searches_with_scores_per_retriever_and_filters(rag: RagsearchClient) -> None:
    found = rag.search("How often are logs rotated?", "docs", top_k=3)
    filtered = rag.search("logs", "docs", filter={"source": "https://docs.example/backups.md"})

    top = found.results[0]
    assert top.source == "https://docs.example/logs.md"
    assert set(top.scores) >= {"dense", "lexical"} and top.heading_path == ("Logs",)
    assert top.span is not None and top.span[1] > top.span[0]
    assert "total" in found.timings and len(found.results) == 3
    assert {h.source for h in filtered.results} == {"https://docs.example/backups.md"}


def test_client_answers_in_json_and_streams_the_same_answer(rag: RagsearchClient) -> None:
    answer = rag.answer("How often are logs rotated?", "docs")
    events = list(rag.stream_answer("How often are logs rotated?", "docs"))

    assert answer.grounded and answer.citations[0].source.endswith("logs.md")
    assert answer.route and answer.model
    names = [e.name for e in events]
    assert names[0] == "sources" and names[-1] == "done" and "delta" in names
    streamed = "".join(e.data["text"] for e in events if e.name == "delta")
    assert events[-1].data["answer"] == answer.answer
    assert streamed.strip()


def test_client_uploads_files_and_follows_a_job(rag: RagsearchClient) -> None:
    rag.create_collection("uploads", embedder="hashing")

    report = rag.upload("uploads", [INGEST_DATA / "guide.md"], metadata={"team": "ops"})
    job = rag.upload("uploads", [INGEST_DATA / "notes.txt", DATA / "broken.pdf"], run_async=True)
    assert isinstance(report, IngestReport) and report.added == 1
    assert isinstance(job, Job) and job.status == "queued"

    finished = rag.wait_for_job(job.id)

    assert finished.status == "done" and finished.report is not None
    assert finished.report.added == 1
    assert [source for source, _ in finished.report.failed] == ["broken.pdf"]
    assert finished.progress["files_done"] == 2
    assert [d["source"] for d in rag.documents("uploads", q="guide")] == ["guide.md"]
    assert rag.ingest_text("uploads", "kb://x", "Some text.").added == 1


def test_client_raises_the_servers_error_code(
    rag: RagsearchClient, server: tuple[str, str, Settings], tmp_path: Path
) -> None:
    url, _, _ = server
    with pytest.raises(ClientError) as refused:
        rag.ingest_url("docs", f"{url}/healthz")
    with pytest.raises(ClientError) as missing:
        rag.search("x", "nope")
    with (
        RagsearchClient(url, api_key="rsk_wrong") as stranger,
        pytest.raises(ClientError) as denied,
    ):
        stranger.collections()

    assert (refused.value.status, refused.value.code) == (400, "url_refused")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert missing.value.request_id
    assert denied.value.code == "unauthorized"
