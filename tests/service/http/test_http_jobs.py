"""Ingestion jobs over HTTP: async uploads, progress and its event stream, restart, resume.

The restart test kills a real server process (SIGKILL) while its job waits for the writer
lock, then starts the app again on the same data directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from indexer.settings import Settings
from indexer.writer_lock import WriterLock
from tests.conftest import DATA, INGEST_DATA
from tests.fakes.live_server import LiveServer
from tests.indexer.test_url_fetch import PAGE, Site
from tests.service.conftest import (
    FakeClock,
    assert_error,
    bearer,
    make_app,
    new_key,
    parse_sse,
)


def files(*paths: Path) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (p.name, p.read_bytes())) for p in paths]


def events_until_done(client: TestClient, job_id: int) -> list[tuple[str, dict[str, Any]]]:
    response = client.get(f"/v1/jobs/{job_id}/events")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


@pytest.fixture
def jobs_client(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = make_app(settings, clock)
    app.state.job_poll_interval = 0.02
    with TestClient(app) as client:
        created = client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
        assert created.status_code == 201
        yield client


def test_async_upload_returns_a_job_that_reports_progress_and_its_report(
    jobs_client: TestClient,
) -> None:
    response = jobs_client.post(
        "/v1/collections/docs/documents",
        files=files(INGEST_DATA / "guide.md", INGEST_DATA / "chinese.md", DATA / "broken.pdf"),
        data={"async": "true", "metadata": '{"team": "ops"}'},
    )

    assert response.status_code == 202, response.text
    job = response.json()["job"]
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["progress"]["files_total"] == 3
    assert job["sources"] == ["guide.md", "chinese.md", "broken.pdf"]

    events = events_until_done(jobs_client, job["id"])

    name, final = events[-1]
    assert name == "done" and [n for n, _ in events[:-1]] == ["progress"] * (len(events) - 1)
    assert final["status"] == "done"
    assert final["progress"]["files_done"] == 3
    assert final["progress"]["files_failed"] == 1
    assert final["progress"]["chunks_embedded"] == final["report"]["chunks"] > 0
    assert final["report"]["added"] == 2
    assert [f["source"] for f in final["report"]["failed"]] == ["broken.pdf"]
    assert jobs_client.get(f"/v1/jobs/{job['id']}").json() == final
    docs = jobs_client.get("/v1/collections/docs/documents").json()["documents"]
    assert sorted(d["source"] for d in docs) == ["chinese.md", "guide.md"]
    assert all(d["metadata"]["team"] == "ops" for d in docs)
    listed = jobs_client.get("/v1/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_jobs_need_read_on_their_collection_and_resume_only_when_stopped(
    jobs_client: TestClient, settings: Settings
) -> None:
    job = jobs_client.post(
        "/v1/collections/docs/documents",
        json={"source": "kb://a", "text": "Alpha.", "async": True},
    ).json()["job"]
    events_until_done(jobs_client, job["id"])
    other = bearer(new_key(settings, "other-reader", ["read"], collections=["other"]))
    admin = bearer(new_key(settings, "ops", ["admin"]))

    assert_error(jobs_client.get(f"/v1/jobs/{job['id']}", headers=other), 403, "forbidden")
    assert jobs_client.get("/v1/jobs", headers=other).json() == {"jobs": []}
    resumed = jobs_client.post(f"/v1/jobs/{job['id']}/resume", headers=admin)
    assert "only interrupted or failed" in assert_error(resumed, 409, "conflict")["message"]
    assert_error(jobs_client.get("/v1/jobs/9999", headers=admin), 404, "not_found")


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "service.cli", "--data-dir", str(data_dir), "serve"]
    return subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_job_killed_with_its_server_is_interrupted_and_resumes(
    settings: Settings, clock: FakeClock
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = serve(settings.data_dir, port)
    try:
        wait_ready(url, process)
        assert httpx.post(
            f"{url}/v1/collections", json={"name": "docs", "embedder": "hashing"}
        ).is_success
        # Another writer holds the lock, so the job waits inside the server when it dies.
        with WriterLock(settings.data_dir, operation="ingest"):
            accepted = httpx.post(
                f"{url}/v1/collections/docs/documents",
                files=files(INGEST_DATA / "guide.md", INGEST_DATA / "notes.txt"),
                data={"async": "true"},
            )
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job"]["id"]
            deadline = time.monotonic() + 10
            while httpx.get(f"{url}/v1/jobs/{job_id}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    app = make_app(settings, clock)
    app.state.job_poll_interval = 0.02
    with TestClient(app) as client:
        stopped = client.get(f"/v1/jobs/{job_id}").json()
        assert stopped["status"] == "interrupted"
        assert "resume" in stopped["error"]
        resumed = client.post(f"/v1/jobs/{job_id}/resume")
        assert resumed.status_code == 202
        final = events_until_done(client, job_id)[-1][1]
        docs = client.get("/v1/collections/docs/documents").json()["documents"]

    assert final["status"] == "done" and final["report"]["added"] == 2
    assert final["error"] is None
    assert sorted(d["source"] for d in docs) == ["guide.md", "notes.txt"]
    assert not (settings.data_dir / "jobs" / str(job_id)).exists()  # staged files removed


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    web = Site()
    with LiveServer(web.app) as server:
        yield web, server.url


def test_url_ingest_refuses_loopback_unless_allowed(
    settings: Settings, clock: FakeClock, site: tuple[Site, str]
) -> None:
    web, url = site
    body = {"url": f"{url}/page", "metadata": {"kind": "web"}}
    with TestClient(make_app(settings, clock)) as client:
        client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
        refused = client.post("/v1/collections/docs/documents", json=body)
    assert "loopback" in assert_error(refused, 400, "url_refused")["message"]
    assert web.hosts == []

    allowed = settings.model_copy(update={"url_fetch_allowed_networks": ["127.0.0.1/32"]})
    app = make_app(allowed, clock)
    app.state.job_poll_interval = 0.02
    with TestClient(app) as client:
        added = client.post("/v1/collections/docs/documents", json=body)
        job = client.post(
            "/v1/collections/docs/documents",
            json={"url": f"{url}/notes.md", "async": True},
        ).json()["job"]
        finished = events_until_done(client, job["id"])[-1][1]
        bad_job = client.post(
            "/v1/collections/docs/documents",
            json={"url": "http://169.254.169.254/latest/", "async": True},
        ).json()["job"]
        failed = events_until_done(client, bad_job["id"])[-1][1]
        docs = client.get("/v1/collections/docs/documents").json()["documents"]

    assert added.status_code == 201, added.text
    assert finished["status"] == "done" and finished["kind"] == "url"
    assert failed["status"] == "failed"
    assert "link-local" in failed["report"]["failed"][0]["error"]
    assert {d["source"]: d["metadata"].get("kind") for d in docs} == {
        f"{url}/page": "web",
        f"{url}/notes.md": None,
    }
    assert "Rotated nightly" in PAGE


def test_json_upload_needs_exactly_text_or_url(jobs_client: TestClient) -> None:
    both = jobs_client.post(
        "/v1/collections/docs/documents", json={"source": "a", "text": "x", "url": "http://a/"}
    )
    neither = jobs_client.post("/v1/collections/docs/documents", json={"source": "a"})
    no_source = jobs_client.post("/v1/collections/docs/documents", json={"text": "x"})

    not_web = jobs_client.post(
        "/v1/collections/docs/documents", json={"url": "file:///etc/passwd", "async": True}
    )

    for response in (both, neither, no_source):
        assert_error(response, 422, "validation_error")
    assert_error(not_web, 400, "url_refused")
    assert jobs_client.get("/v1/jobs").json() == {"jobs": []}


def test_a_server_that_stops_gracefully_leaves_its_waiting_job_interrupted(
    settings: Settings, clock: FakeClock
) -> None:
    with TestClient(make_app(settings, clock)) as client:
        client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
    with WriterLock(settings.data_dir, operation="ingest"):
        with TestClient(make_app(settings, clock)) as client:
            job = client.post(
                "/v1/collections/docs/documents",
                json={"source": "kb://a", "text": "Alpha.", "async": True},
            ).json()["job"]
            running = client.get(f"/v1/jobs/{job['id']}").json()
        # The client closed: the lifespan stopped the job.
        with TestClient(make_app(settings, clock)) as client:
            stopped = client.get(f"/v1/jobs/{job['id']}").json()

    assert running["status"] in ("queued", "running")
    assert stopped["status"] == "interrupted" and "resume" in stopped["error"]
