"""The `ragsearch` command line contracts: JSON shapes, exit codes, the writer lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from indexer.errors import Locked
from indexer.index import Index
from indexer.ingest import source_for_path
from indexer.settings import Settings
from indexer.writer_lock import WriterLock
from tests.conftest import Cli

REPORT_COUNTS = ("added", "updated", "unchanged", "deleted", "chunks", "embedded", "reused")


def test_cli_ingest_json_prints_exactly_one_report_object(cli: Cli, docs: Path) -> None:
    cli.create_collection()
    (docs / "empty.txt").write_bytes(b"")

    result = cli("ingest", docs, "-c", "docs", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert isinstance(report, dict)
    for key in REPORT_COUNTS:
        assert type(report[key]) is int, key
    assert (report["added"], report["chunks"], report["embedded"]) == (3, 5, 5)
    assert report["failed"] == [
        {"source": source_for_path(docs / "empty.txt"), "error": "file is empty"}
    ]


def test_cli_ingest_without_json_prints_summary_and_failures(cli: Cli, docs: Path) -> None:
    cli.create_collection()
    (docs / "empty.txt").write_bytes(b"")

    result = cli("ingest", docs, "-c", "docs")

    assert result.exit_code == 1
    assert result.stdout.startswith("docs: 3 added, 0 updated, 0 unchanged, 0 deleted, 1 failed")
    assert f"failed: {source_for_path(docs / 'empty.txt')}: file is empty" in result.stderr


def test_cli_status_json_reports_counts_and_consistency(cli: Cli, docs: Path) -> None:
    cli.create_collection("docs")
    cli.create_collection("empty")
    cli.json("ingest", docs, "-c", "docs")

    status = cli.json("status")

    assert status == {
        "collections": [
            {
                "name": "docs",
                "documents": 3,
                "chunks": 5,
                "vectors": 5,
                "consistent": True,
                "checksum": "ok",
                "notes": [],
            },
            {
                "name": "empty",
                "documents": 0,
                "chunks": 0,
                "vectors": 0,
                "consistent": True,
                "checksum": "none",
                "notes": [],
            },
        ]
    }


def test_cli_documents_json_lists_each_document(cli: Cli, docs: Path) -> None:
    cli.create_collection()
    cli.json("ingest", docs, "-c", "docs")

    listed = cli.json("documents", "-c", "docs")["documents"]

    by_name = {Path(d["source"]).name: d for d in listed}
    assert set(by_name) == {"guide.md", "notes.txt", "release.md"}
    guide = by_name["guide.md"]
    assert (guide["title"], guide["media_type"], guide["chunks"]) == (
        "Operator guide",
        "text/markdown",
        3,
    )
    assert guide["size_bytes"] == (docs / "guide.md").stat().st_size
    assert len(guide["sha256"]) == 64
    assert guide["created_at"] <= guide["updated_at"]  # the same fields as over HTTP


def test_cli_documents_of_missing_collection_exits_3(cli: Cli) -> None:
    result = cli("documents", "-c", "nope")

    assert result.exit_code == 3
    assert result.stderr == "error: collection 'nope' does not exist\n"


def test_cli_delete_source_removes_document_chunks_text_and_vectors(
    cli: Cli, docs: Path, index: Index
) -> None:
    cli.create_collection()
    cli.json("ingest", docs, "-c", "docs")
    collection = index.catalog.get_collection("docs")
    notes = index.catalog.find_document_by_source(
        collection.id, source_for_path(docs / "notes.txt")
    )
    assert notes is not None
    notes_chunks = index.catalog.document_chunk_ids([notes.id])
    assert index.catalog.lexical_search(collection.id, "PPR-9087", 10)

    deleted = cli.json("delete", "-c", "docs", "--source", docs / "notes.txt")

    assert deleted == {"deleted": 1}
    assert index.catalog.find_document_by_source(collection.id, notes.source) is None
    assert index.catalog.chunks_by_ids(notes_chunks) == {}
    assert index.catalog.lexical_search(collection.id, "PPR-9087", 10) == []
    assert index.catalog.lexical_count(collection.id) == index.catalog.count_chunks(collection.id)
    assert not set(notes_chunks) & set(index.store(collection).ids().tolist())
    status = cli.json("status")["collections"][0]
    assert (status["documents"], status["chunks"], status["vectors"]) == (2, 4, 4)
    assert status["consistent"] is True


def test_cli_delete_unknown_source_exits_3(cli: Cli, docs: Path) -> None:
    cli.create_collection()

    result = cli("delete", "-c", "docs", "--source", docs / "missing.md")

    assert result.exit_code == 3
    assert "no document with source" in result.stderr


def test_cli_delete_without_target_is_a_usage_error(cli: Cli) -> None:
    cli.create_collection()

    result = cli("delete", "-c", "docs")

    assert result.exit_code == 2
    assert "name at least one --source or --id" in result.stderr


def test_cli_collections_create_list_drop(cli: Cli, docs: Path) -> None:
    created = cli.json(
        "collections", "create", "manuals", "--embedder", "hashing", "--dimensions", "64",
        "--chunk-tokens", "100", "--overlap", "0",
    )  # fmt: skip
    assert created == {
        "name": "manuals",
        "embedder": "hashing",
        "model": "hashing-64",
        "dimensions": 64,
        "chunk_tokens": 100,
        "overlap_sentences": 0,
    }
    cli.json("ingest", docs, "-c", "manuals")
    assert [c["name"] for c in cli.json("collections", "list")["collections"]] == ["manuals"]

    dropped = cli("collections", "drop", "manuals", "--yes")

    assert dropped.exit_code == 0
    assert cli.json("collections", "list") == {"collections": []}
    assert not list((cli.data_dir / "vectors").glob("*manuals*"))


def test_cli_collections_drop_needs_confirmation(cli: Cli) -> None:
    cli.create_collection()

    result = cli("collections", "drop", "docs", input="n\n")

    assert result.exit_code == 1
    assert [c["name"] for c in cli.json("collections", "list")["collections"]] == ["docs"]


def test_cli_collections_drop_of_a_missing_collection_is_not_found_before_any_question(
    cli: Cli,
) -> None:
    result = cli("collections", "drop", "nope")  # no input: a question would abort with 1

    assert result.exit_code == 3
    assert "collection 'nope' does not exist" in result.stderr
    assert "drop collection" not in result.stderr


def test_cli_collections_create_existing_exits_4(cli: Cli) -> None:
    cli.create_collection("docs")

    result = cli("collections", "create", "docs", "--embedder", "hashing")

    assert result.exit_code == 4
    assert result.stderr == "error: collection 'docs' already exists\n"


def test_cli_collections_create_invalid_name_exits_2(cli: Cli) -> None:
    result = cli("collections", "create", "no spaces", "--embedder", "hashing")

    assert result.exit_code == 2
    assert "invalid collection name 'no spaces'" in result.stderr


def test_writer_lock_conflicts_within_one_process(settings: Settings) -> None:
    # flock belongs to the open file description, so a second open() in this process
    # conflicts with the first: the CLI test below relies on it.
    with WriterLock(settings.data_dir), pytest.raises(Locked):
        WriterLock(settings.data_dir).acquire()
    with WriterLock(settings.data_dir):  # released on exit, so it can be taken again
        pass


def test_cli_ingest_while_locked_exits_with_clear_message(
    cli: Cli, docs: Path, settings: Settings
) -> None:
    cli.create_collection()

    with WriterLock(settings.data_dir, operation="ingest"):
        result = cli("ingest", docs, "-c", "docs")

    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"error: cannot ingest: {settings.data_dir} is locked by pid {os.getpid()} (ingest)"
    )
    assert cli.json("documents", "-c", "docs") == {"documents": []}


def test_cli_lock_message_names_both_operations(cli: Cli, docs: Path, settings: Settings) -> None:
    cli.create_collection()
    cli("ingest", docs, "-c", "docs")

    with WriterLock(settings.data_dir, operation="drop a collection"):
        result = cli("delete", "-c", "docs", "--id", "1")

    assert result.exit_code == 4
    assert "error: cannot delete:" in result.stderr
    assert f"locked by pid {os.getpid()} (drop a collection)" in result.stderr


def test_cli_ingest_reports_unsupported_files_in_a_directory_as_skipped(
    cli: Cli, docs: Path
) -> None:
    cli.create_collection()
    (docs / "diagram.png").write_bytes(b"\x89PNG\r\n")
    (docs / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")

    report = cli.json("ingest", docs, "-c", "docs")

    assert report["added"] == 3 and report["failed"] == []
    assert report["skipped"] == [
        {
            "source": source_for_path(docs / "diagram.png"),
            "error": "images are not indexed (no OCR); extract the text first ('diagram.png')",
        },
        {
            "source": source_for_path(docs / "old.doc"),
            "error": "legacy Word (.doc) files are not supported; save it as .docx ('old.doc')",
        },
    ]


def test_cli_ingest_where_every_file_fails_leaves_no_new_collection(
    cli: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.md").write_bytes(b"")
    (folder / "slides.key").write_bytes(b"keynote")

    result = cli("ingest", folder, "-c", "fresh")

    assert result.exit_code == 1
    assert "fresh: nothing was ingested; the new collection was not kept" in result.stderr
    assert "skipped: " in result.stderr and "unsupported file type ('.key')" in result.stderr
    assert cli.json("collections", "list") == {"collections": []}
