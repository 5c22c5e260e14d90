"""Collections and documents over HTTP: create, upload, list, read, delete, limits and locks."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from indexer.settings import Settings
from indexer.writer_lock import WriterLock
from tests.conftest import DATA, INGEST_DATA, Cli
from tests.service.conftest import FakeClock, assert_error, make_app, upload


def search_sources(client: TestClient, query: str) -> list[str]:
    response = client.post("/v1/search", json={"query": query, "collection": "docs"})
    assert response.status_code == 200, response.text
    return [r["source"] for r in response.json()["results"]]


def test_collections_are_created_listed_and_dropped(client: TestClient) -> None:
    created = client.post(
        "/v1/collections", json={"name": "docs", "embedder": "hashing", "dimensions": 64}
    )
    duplicate = client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
    listed = client.get("/v1/collections").json()["collections"]
    dropped = client.delete("/v1/collections/docs")

    assert created.status_code == 201
    assert created.json()["dimensions"] == 64
    assert_error(duplicate, 409, "conflict")
    assert [(c["name"], c["documents"]) for c in listed] == [("docs", 0)]
    assert dropped.json() == {"deleted": "docs"}
    assert client.get("/v1/collections").json() == {"collections": []}
    assert_error(client.delete("/v1/collections/docs"), 404, "not_found")


def test_invalid_collection_name_is_400(client: TestClient) -> None:
    response = client.post("/v1/collections", json={"name": "../etc", "embedder": "hashing"})

    assert_error(response, 400, "invalid_input")


def test_upload_reports_what_it_did_and_is_idempotent(loaded: TestClient) -> None:
    again = upload(loaded, "docs", "guide.md")

    assert again.status_code == 200
    assert again.json()["unchanged"] == 1
    assert again.json()["added"] == 0


def test_uploaded_json_text_is_searchable_with_its_metadata(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/collections/docs/documents",
        json={
            "source": "kb://faq/rotation",
            "text": "Rotate the signing keys every ninety days.",
            "metadata": {"team": "security"},
        },
    )

    assert response.status_code == 201
    assert response.json()["added"] == 1
    filtered = loaded.post(
        "/v1/search",
        json={"query": "signing keys", "collection": "docs", "filter": {"team": "security"}},
    ).json()["results"]
    assert [r["source"] for r in filtered] == ["kb://faq/rotation"]


def test_documents_are_listed_paged_read_and_deleted(loaded: TestClient) -> None:
    listed = loaded.get("/v1/collections/docs/documents").json()
    page = loaded.get("/v1/collections/docs/documents?limit=1&offset=1").json()
    guide = next(d for d in listed["documents"] if d["source"] == "guide.md")
    one = loaded.get(f"/v1/collections/docs/documents/{guide['id']}").json()

    assert [d["source"] for d in listed["documents"]] == ["chinese.md", "guide.md", "notes.txt"]
    assert listed["total"] == 3
    assert [d["source"] for d in page["documents"]] == ["guide.md"]
    assert set(guide) >= {"id", "source", "title", "chunks", "media_type", "metadata"}
    assert guide["chunks"] == one["chunks"] > 0
    assert "Stop writers before copying the data directory." in one["text"]

    deleted = loaded.delete(f"/v1/collections/docs/documents/{guide['id']}")

    assert deleted.json() == {"deleted": guide["id"]}
    assert_error(loaded.get(f"/v1/collections/docs/documents/{guide['id']}"), 404, "not_found")
    assert "guide.md" not in search_sources(loaded, "copying the data directory")
    assert_error(loaded.delete(f"/v1/collections/docs/documents/{guide['id']}"), 404, "not_found")


def test_upload_with_some_broken_files_lists_the_failures(loaded: TestClient) -> None:
    files = [
        ("files", ("release.md", (INGEST_DATA / "release.md").read_bytes())),
        ("files", ("broken.pdf", (DATA / "broken.pdf").read_bytes())),
    ]
    response = loaded.post("/v1/collections/docs/documents", files=files)

    assert response.status_code == 201
    assert response.json()["added"] == 1
    assert [f["source"] for f in response.json()["failed"]] == ["broken.pdf"]


def test_upload_where_every_file_fails_is_422(loaded: TestClient) -> None:
    files = [("files", ("broken.pdf", (DATA / "broken.pdf").read_bytes()))]
    response = loaded.post("/v1/collections/docs/documents", files=files)

    assert "broken.pdf" in assert_error(response, 422, "unparseable_document")["message"]


def test_unsupported_file_suffix_is_415(loaded: TestClient) -> None:
    files = [("files", ("tool.exe", b"MZ\x90\x00"))]
    response = loaded.post("/v1/collections/docs/documents", files=files)

    assert "'.exe'" in assert_error(response, 415, "unsupported_media_type")["message"]


def test_upload_in_another_content_type_is_415(loaded: TestClient) -> None:
    response = loaded.post(
        "/v1/collections/docs/documents", content=b"hello", headers={"Content-Type": "text/plain"}
    )

    assert_error(response, 415, "unsupported_media_type")


def test_upload_to_unknown_collection_is_404(loaded: TestClient) -> None:
    assert_error(upload(loaded, "nope", "guide.md"), 404, "not_found")


def test_upload_over_the_size_limit_is_413(tmp_path: Path, clock: FakeClock) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_upload_bytes=2_000)
    with TestClient(make_app(settings, clock)) as client:
        client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
        big = [("files", ("big.txt", b"word " * 100_000))]
        declared = client.post("/v1/collections/docs/documents", files=big)
        small_body_big_file = client.post(
            "/v1/collections/docs/documents",
            files=[("files", ("big.txt", b"word " * 1_000))],
        )
        text = client.post(
            "/v1/collections/docs/documents", json={"source": "t", "text": "word " * 1_000}
        )

    assert_error(declared, 413, "payload_too_large")
    assert_error(small_body_big_file, 413, "payload_too_large")
    assert_error(text, 413, "payload_too_large")


def test_upload_while_another_writer_holds_the_lock_is_409(
    loaded: TestClient, settings: Settings
) -> None:
    with WriterLock(settings.data_dir):
        response = upload(loaded, "docs", "release.md")
        dropped = loaded.delete("/v1/collections/docs")

    assert "cannot upload: " in assert_error(response, 409, "locked")["message"]
    assert "cannot drop a collection: " in assert_error(dropped, 409, "locked")["message"]
    assert upload(loaded, "docs", "release.md").status_code == 201


def test_cli_ingest_is_searchable_without_restart(loaded: TestClient, cli: Cli) -> None:
    assert "release.md" not in " ".join(search_sources(loaded, "publish the changelog wheel"))

    result = cli("ingest", INGEST_DATA / "release.md", "-c", "docs", "-q")

    assert result.exit_code == 0, result.stderr
    assert search_sources(loaded, "publish the changelog wheel")[0].endswith("release.md")
