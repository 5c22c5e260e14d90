"""Storage faults: a damaged vector file, a full disk, commits waiting in the WAL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from indexer.errors import StorageFull
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.providers.local import HashingEmbedder
from indexer.settings import Settings
from tests.conftest import Cli, MakeCollection


def ingest(cli: Cli, folder: Path, *extra: str) -> dict[str, Any]:
    result = cli("ingest", folder, "-c", "docs", "--json", *extra)
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def status(cli: Cli) -> dict[str, Any]:
    [collection] = cli.json("status")["collections"]
    return dict(collection)


def damage_middle(path: Path) -> None:
    """Overwrite bytes in the middle, keeping the length: the file still loads."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 512] = b"\x7f" * 512
    path.write_bytes(bytes(data))


# --- 19: a damaged vector file ---------------------------------------------------------------


def test_a_damaged_vector_file_is_reported_and_rebuilt(cli: Cli, docs: Path) -> None:
    cli.create_collection()
    ingest(cli, docs)
    [vectors] = (cli.data_dir / "vectors").glob("*.faiss")
    assert status(cli)["checksum"] == "ok"

    damage_middle(vectors)
    damaged = status(cli)
    text = cli("status").stdout

    assert damaged["consistent"] is False and damaged["checksum"] == "mismatch"
    assert "does not match its checksum" in text

    again = ingest(cli, docs)  # any write opens the collection and rebuilds the file
    repaired = status(cli)

    assert again["unchanged"] == 3
    assert repaired["consistent"] is True and repaired["checksum"] == "ok"
    assert repaired["vectors"] == repaired["chunks"]


def test_readyz_reports_a_checksum_mismatch(cli: Cli, docs: Path, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from service.http.app import create_app

    cli.create_collection()
    ingest(cli, docs)
    [vectors] = (cli.data_dir / "vectors").glob("*.faiss")
    damage_middle(vectors)

    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")

    assert ready.status_code == 503
    [check] = [c for c in ready.json()["checks"] if c["name"] == "collection:docs"]
    assert check["checksum"] == "mismatch" and not check["ok"]


# --- 20: a full disk -------------------------------------------------------------------------


def fill_catalog_at(index: Index, pages: int) -> None:
    """Make SQLite report SQLITE_FULL ("database or disk is full") past `pages` pages."""

    def limit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(index.catalog.engine, "connect", limit)
    index.catalog.engine.dispose()


def test_a_full_catalog_is_one_storage_error_and_keeps_the_report(
    index: Index, make_collection: MakeCollection
) -> None:
    collection = make_collection()
    first = Ingestor(index, collection, HashingEmbedder())
    asyncio.run(first.run([SourceItem("a.txt", "a.txt", data=b"kept document text")]))
    with index.catalog.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    fill_catalog_at(index, int(pages) + 2)
    big = [
        SourceItem(f"{i}.txt", f"{i}.txt", data=(f"document {i} " + "word " * 4000).encode())
        for i in range(20)
    ]
    second = Ingestor(index, collection, HashingEmbedder())

    with pytest.raises(StorageFull, match="the disk is full") as caught:
        asyncio.run(second.run(big))

    assert caught.value.status == 507 and caught.value.exit_code == 7
    assert second.report.error is not None and "disk is full" in second.report.error
    assert index.catalog.find_document_by_source(collection.id, "a.txt") is not None


def test_stale_temp_files_are_removed_when_a_writer_opens(settings: Settings) -> None:
    stale = settings.vectors_dir / ".1-docs.faiss.4242.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    Index(settings).close()
    assert stale.exists()  # readers never touch them
    Index(settings, writer=True).close()
    assert not stale.exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (needs root; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_cli_ingest_on_a_full_disk_exits_7_with_its_report(tiny_disk: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        (folder / f"doc{i:03}.txt").write_text(
            " ".join(f"w{i}x{j} lorem ipsum dolor" for j in range(2000))
        )
    cli = Cli(tiny_disk / "data")
    cli.create_collection()

    result = cli("ingest", folder, "-c", "docs", "--json")

    assert result.exit_code == 7, result.stderr
    assert "the disk is full" in result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert "disk is full" in report["error"]
    assert not list((tiny_disk / "data" / "vectors").glob(".*.tmp"))
    # Nothing committed was lost: what the report counts as added is in the catalog.
    with sqlite3.connect(tiny_disk / "data" / "catalog.sqlite3") as conn:
        stored = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert stored == report["added"]


# --- 21: commits waiting in the WAL ----------------------------------------------------------


def test_ingest_checkpoints_while_another_connection_holds_the_catalog(
    cli: Cli, docs: Path, tmp_path: Path
) -> None:
    cli.create_collection()
    catalog = cli.data_dir / "catalog.sqlite3"
    holder = sqlite3.connect(catalog)  # e.g. a running server's pool
    try:
        holder.execute("SELECT count(*) FROM documents").fetchone()
        report = ingest(cli, docs)
        # Only the main file, as a damaged or lost -wal file would leave it.
        alone = tmp_path / "alone.sqlite3"
        shutil.copyfile(catalog, alone)
        with sqlite3.connect(alone) as conn:
            stored = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    finally:
        holder.close()
    assert report["added"] == 3
    assert stored == 3


def test_status_notes_documents_the_catalog_lost(cli: Cli, docs: Path) -> None:
    cli.create_collection()
    ingest(cli, docs)
    with sqlite3.connect(cli.data_dir / "catalog.sqlite3") as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("DELETE FROM documents WHERE source LIKE '%guide.md'")
    lost = status(cli)
    assert lost["consistent"] is False
    assert any("lost committed documents" in n for n in lost["notes"])


def test_an_upload_on_a_full_disk_is_507_with_its_report(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from service.http.app import create_app

    url = "/v1/collections/docs/documents"
    with TestClient(create_app(settings, writer_lock_timeout=0)) as client:
        client.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
        assert client.post(url, json={"source": "a.txt", "text": "kept"}).status_code == 201
        writer: Index = client.app.state.writer_index  # type: ignore[attr-defined]
        with writer.catalog.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        fill_catalog_at(writer, int(pages) + 2)
        files = [("files", (f"{i}.txt", ("word " * 4000).encode())) for i in range(20)]
        full = client.post(url, files=files)

    assert full.status_code == 507, full.text
    body = full.json()
    assert body["error"]["code"] == "insufficient_storage"
    assert "disk is full" in body["report"]["error"]


def test_the_server_checkpoints_commits_of_other_writers(
    settings: Settings, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from service.http.app import create_app
    from service.http.auth import create_key

    catalog = settings.data_dir / "catalog.sqlite3"
    with TestClient(create_app(settings, checkpoint_seconds=0.05)):
        writer = Index(settings)  # another process's commit, e.g. `ragsearch keys create`
        try:
            create_key(writer.catalog, "ops", ["admin"])
        finally:
            writer.close()  # the server still holds the database: no checkpoint on close
        alone = tmp_path / "alone.sqlite3"
        # A generous bound: on a loaded machine the 0.05 s checkpoint loop can lag by seconds.
        deadline = time.monotonic() + 90
        keys = 0
        while keys == 0 and time.monotonic() < deadline:
            shutil.copyfile(catalog, alone)  # the database file alone, without its WAL
            conn = sqlite3.connect(alone)
            # Until a checkpoint even the schema is only in the WAL ("no such table"); a copy
            # taken mid-checkpoint may be torn ("malformed"): both mean "not yet", try again.
            with contextlib.closing(conn), contextlib.suppress(sqlite3.DatabaseError):
                keys = conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]
            if keys == 0:
                time.sleep(0.05)
    assert keys == 1
