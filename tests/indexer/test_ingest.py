"""The ingestion contract: idempotent re-runs, cached vectors, per-file failures, Chinese text."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from indexer.chunking import chunk_document
from indexer.errors import Conflict
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem, source_for_path
from indexer.parsers import parse_bytes
from indexer.providers.local import HashingEmbedder
from indexer.records import Collection
from indexer.schema import chunks
from tests.conftest import INGEST_DATA, Cli, MakeCollection

# What a Chinese (or English) sentence may end with, closing quotes and brackets included.
TERMINATORS = tuple("。！？；…!?.”」』）")


def chunk_rows(index: Index, source: str) -> list[tuple[int, str, str]]:
    """(ordinal, text, embed sha256) of a document's chunks, by ordinal."""
    collection = index.catalog.list_collections()[0]
    document = index.catalog.find_document_by_source(collection.id, source)
    assert document is not None, source
    with index.catalog.engine.connect() as conn:
        rows = conn.execute(
            select(chunks.c.ordinal, chunks.c.text, chunks.c.embed_sha256)
            .where(chunks.c.document_id == document.id)
            .order_by(chunks.c.ordinal)
        ).all()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def search_sources(index: Index, collection: Collection, query: str) -> set[str]:
    """Sources of the documents whose chunks FTS5 finds for `query`."""
    hits = index.catalog.lexical_search(collection.id, query, 10)
    found = index.catalog.chunks_by_ids([chunk_id for chunk_id, _ in hits])
    return {chunk.source for chunk in found.values()}


def test_ingest_unchanged_files_compute_no_embeddings(cli: Cli, docs: Path) -> None:
    cli.create_collection()
    first = cli.json("ingest", docs, "-c", "docs")
    second = cli.json("ingest", docs, "-c", "docs")

    assert first["added"] == 3
    assert first["embedded"] == first["chunks"] > 0
    assert second["embedded"] == 0
    assert second["unchanged"] == 3
    assert (second["added"], second["updated"], second["chunks"]) == (0, 0, 0)


def test_ingest_renamed_file_reuses_cached_vectors(cli: Cli, docs: Path, index: Index) -> None:
    cli.create_collection()
    cli.json("ingest", docs, "-c", "docs")
    old = docs / "guide.md"
    chunk_count = len(chunk_rows(index, source_for_path(old)))
    new = old.rename(docs / "handbook.md")

    report = cli.json("ingest", docs, "-c", "docs", "--sync")

    assert report["embedded"] == 0
    assert report["reused"] == chunk_count == 3
    assert (report["added"], report["deleted"], report["unchanged"]) == (1, 1, 2)
    collection = index.catalog.get_collection("docs")
    sources = {d.source for d in index.catalog.list_documents(collection.id)}
    assert source_for_path(new) in sources
    assert source_for_path(old) not in sources


def test_ingest_changed_paragraph_reembeds_only_its_chunk(
    cli: Cli, docs: Path, index: Index
) -> None:
    cli.create_collection()
    cli.json("ingest", docs, "-c", "docs")
    guide = docs / "guide.md"
    before = chunk_rows(index, source_for_path(guide))
    text = guide.read_text()
    guide.write_text(text.replace("two cores and four gigabytes", "four cores and eight gigabytes"))

    report = cli.json("ingest", docs, "-c", "docs")

    after = chunk_rows(index, source_for_path(guide))
    changed = [a for a, b in zip(after, before, strict=True) if a[2] != b[2]]
    assert [row[0] for row in changed] == [0]  # only the "Installing" section's chunk
    assert report["embedded"] == len(changed) == 1
    assert report["reused"] == len(after) - 1 == 2
    assert (report["updated"], report["unchanged"], report["added"]) == (1, 2, 0)


def test_ingest_bad_files_fail_alone_with_clear_reasons(cli: Cli, docs: Path, index: Index) -> None:
    bad = {
        "broken.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog garbled \xff\xfe\x00 trailer",
        "fake.docx": b"This is plain text renamed to .docx\n",
        "blank.md": b"  \n\t\n   \n",
        "binary.txt": bytes(range(256)) * 4,
        "empty.txt": b"",
        "huge.txt": b"A sentence that repeats. " * 400,  # 10,000 bytes, over the limit below
    }
    for name, data in bad.items():
        (docs / name).write_bytes(data)
    cli.create_collection()

    result = cli("ingest", docs, "-c", "docs", "--json", env={"RAGSEARCH_MAX_FILE_BYTES": "4096"})

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    errors = {Path(f["source"]).name: f["error"] for f in report["failed"]}
    assert set(errors) == set(bad)
    assert errors["broken.pdf"].startswith("corrupt PDF")
    assert "not a DOCX file" in errors["fake.docx"]
    assert errors["blank.md"] == "file contains only whitespace"
    assert "binary data in a text file" in errors["binary.txt"]
    assert errors["empty.txt"] == "file is empty"
    assert errors["huge.txt"] == "file is 10,000 bytes; the limit is 4,096"
    assert report["added"] == 3
    collection = index.catalog.get_collection("docs")
    listed = {Path(d.source).name for d in index.catalog.list_documents(collection.id)}
    assert listed == {"guide.md", "notes.txt", "release.md"}
    assert search_sources(index, collection, "PPR-9087") == {source_for_path(docs / "notes.txt")}


def test_ingest_missing_path_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("ingest", tmp_path / "nowhere", "-c", "docs")

    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_ingest_missing_collection_option_is_a_usage_error(cli: Cli, docs: Path) -> None:
    result = cli("ingest", docs)

    assert result.exit_code == 2
    assert "--collection" in result.stderr


def test_ingest_sync_deletes_only_vanished_files_under_given_paths(
    cli: Cli, tmp_path: Path, index: Index
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        for name in ("guide.md", "release.md"):
            shutil.copy(INGEST_DATA / name, folder / name)
    cli.create_collection()
    cli.json("ingest", first, second, "-c", "docs")
    (first / "guide.md").unlink()
    (second / "guide.md").unlink()

    report = cli.json("ingest", first, "-c", "docs", "--sync")

    assert report["deleted"] == 1
    collection = index.catalog.get_collection("docs")
    sources = {d.source for d in index.catalog.list_documents(collection.id)}
    assert sources == {
        source_for_path(first / "release.md"),
        source_for_path(second / "guide.md"),  # vanished, but outside the synced path
        source_for_path(second / "release.md"),
    }
    assert index.status(collection).consistent


def test_ingest_sync_scope_is_not_a_path_prefix_match(
    cli: Cli, tmp_path: Path, index: Index
) -> None:
    # `docs` must not sweep up `docs-old`: the scope is a directory, not a string prefix.
    docs, docs_old = tmp_path / "docs", tmp_path / "docs-old"
    for folder in (docs, docs_old):
        folder.mkdir()
        shutil.copy(INGEST_DATA / "release.md", folder / "release.md")
    cli.create_collection()
    cli.json("ingest", docs, docs_old, "-c", "docs")
    (docs_old / "release.md").unlink()

    report = cli.json("ingest", docs, "-c", "docs", "--sync")

    assert report["deleted"] == 0


def test_ingest_into_collection_with_other_embedder_is_refused(cli: Cli, index: Index) -> None:
    cli.create_collection("narrow", "--dimensions", "128")
    collection = index.catalog.get_collection("narrow")

    with pytest.raises(Conflict) as caught:
        Ingestor(index, collection, HashingEmbedder(256))

    message = caught.value.message
    assert "'narrow' was created with hashing hashing-128 (128 dimensions)" in message
    assert "cannot take vectors from hashing hashing-256 (256 dimensions)" in message


def test_ingest_chinese_chunks_end_at_sentence_terminators(
    index: Index, make_collection: MakeCollection, tmp_path: Path
) -> None:
    collection = make_collection(chunk_tokens=40)
    embedder = HashingEmbedder(256)
    data = (INGEST_DATA / "chinese.md").read_bytes()
    asyncio.run(
        Ingestor(index, collection, embedder).run(
            [SourceItem(source="chinese.md", filename="chinese.md", data=data)]
        )
    )
    parsed = parse_bytes(data, "chinese.md")

    stored = index.catalog.chunks_by_ids(index.catalog.chunk_ids(collection.id).tolist())
    ordered = sorted(stored.values(), key=lambda c: c.ordinal)

    assert len(ordered) >= 6
    cut_at_budget = 0
    for chunk in ordered:
        assert parsed.text[chunk.start : chunk.end] == chunk.text
        if chunk.text.endswith(TERMINATORS):
            continue
        # A cut mid-sentence is allowed only inside a sentence too long for any chunk.
        text = parsed.text
        start = max(text.rfind(t, 0, chunk.end) for t in "。！？；\n") + 1
        end = min(i for i in range(chunk.end, len(text)) if text[i] in "。！？；")
        prefix = " > ".join(chunk.heading_path) + "\n"
        assert embedder.count_tokens(prefix + text[start : end + 1]) > 40, chunk.text
        cut_at_budget += 1
    assert cut_at_budget < len(ordered) // 2
    # The same text chunked directly agrees with what was stored.
    drafts = chunk_document(
        parsed, max_tokens=40, overlap_sentences=1, count_tokens=embedder.count_tokens
    )
    assert [d.text for d in drafts] == [c.text for c in ordered]


def test_lexical_search_finds_chinese_words_and_whole_identifiers(
    index: Index, make_collection: MakeCollection
) -> None:
    collection = make_collection()
    items = [
        SourceItem(source=name, filename=name, data=(INGEST_DATA / name).read_bytes())
        for name in ("chinese.md", "notes.txt", "release.md")
    ]
    report = asyncio.run(Ingestor(index, collection, HashingEmbedder(256)).run(items))
    assert report.added == 3

    assert search_sources(index, collection, "PPR-9087") == {"notes.txt"}
    assert search_sources(index, collection, "PPR-9088") == set()
    assert search_sources(index, collection, "v2.3.1") == {"notes.txt"}
    assert search_sources(index, collection, "v2.3.2") == set()
    assert search_sources(index, collection, "结巴分词") == {"chinese.md"}
    assert search_sources(index, collection, "嵌入缓存") == {"chinese.md"}


@pytest.mark.slow  # loads the real MiniLM model
def test_ingest_default_embedder_is_local_minilm(cli: Cli, docs: Path, index: Index) -> None:
    # The one test that loads the real model: no key, no `collections create`.
    result = cli("ingest", docs, "-c", "default", "--json")

    assert result.exit_code == 0, result.stderr
    assert "using the embedded default (all-MiniLM-L6-v2" in result.stderr
    collection = index.catalog.get_collection("default")
    assert (collection.embedder_provider, collection.dimensions) == ("local", 384)
    status = cli.json("status")["collections"]
    assert status == [
        {
            "name": "default",
            "documents": 3,
            "chunks": 5,
            "vectors": 5,
            "consistent": True,
            "checksum": "ok",
            "notes": [],
        }
    ]
    store = index.store(collection)
    found, vectors, missing = index.catalog.chunk_vectors(collection, store.ids().tolist())
    assert missing == []
    assert store.search(vectors[0], 1)[0][0] == found[0]
