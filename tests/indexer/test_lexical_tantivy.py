"""The tantivy lexical engine: same tokens and answers as FTS5, derived and self-repairing."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from indexer.filters import compile_filter
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem, delete_documents
from indexer.lexical_tantivy import SyncState, TantivyLexicon
from indexer.providers.local import HashingEmbedder
from indexer.records import Collection
from indexer.settings import Settings
from tests.conftest import MakeCollection

TEXTS = {
    "printer": ("Error PPR-9087 means the printer queue is full.", {"team": "ops"}),
    "tray": ("Error PPR-9088 means the paper tray is empty.", {"team": "ops"}),
    "release": ("Version v2.3.1 fixes the running jobs scheduler.", {"team": "dev"}),
    "zh": ("北京是中华人民共和国的首都，也是全国的政治中心。", {"team": "zh"}),
}


def ingest(
    index: Index, collection: Collection, texts: dict[str, tuple[str, dict[str, str]]]
) -> None:
    items = [
        SourceItem(name, f"{name}.txt", data=text.encode(), metadata=meta)
        for name, (text, meta) in texts.items()
    ]
    report = asyncio.run(Ingestor(index, collection, HashingEmbedder(256)).run(items))
    assert report.failed == []


def sources(index: Index, hits: list[tuple[int, float]]) -> list[str]:
    found = index.catalog.chunks_by_ids([chunk_id for chunk_id, _ in hits])
    return [found[chunk_id].source for chunk_id, _ in hits if chunk_id in found]


@pytest.fixture
def collection(index: Index, make_collection: MakeCollection) -> Collection:
    made = make_collection()
    ingest(index, made, TEXTS)
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("PPR-9087", ["printer"]),  # identifiers whole: not PPR-9088
        ("ppr", ["printer", "tray"]),  # and their parts
        ("v2.3.1", ["release"]),
        ("run scheduler", ["release"]),  # stemmed: run ~ running
        ("中国的首都是哪里", ["zh"]),  # jieba words and bigrams
    ],
)
def test_tantivy_finds_what_fts5_finds(
    index: Index, collection: Collection, query: str, expected: list[str]
) -> None:
    lexicon = index.lexicon(collection)
    assert lexicon is not None and lexicon.num_docs() == len(TEXTS)

    found = sources(index, index.lexical_search(collection, query, 10))
    fts5 = sources(index, index.catalog.lexical_search(collection.id, query, 10))

    assert sorted(found) == sorted(expected) == sorted(fts5)


def test_tantivy_applies_metadata_filters(index: Index, collection: Collection) -> None:
    condition = compile_filter({"team": {"$eq": "ops"}})
    nothing = compile_filter({"team": {"$eq": "nobody"}})

    assert sorted(sources(index, index.lexical_search(collection, "error", 10, condition))) == [
        "printer",
        "tray",
    ]
    assert index.lexical_search(collection, "version", 10, condition) == []
    assert index.lexical_search(collection, "error", 10, nothing) == []


def test_reader_sees_writes_and_deletes_through_tantivy(
    index: Index, settings: Settings, collection: Collection
) -> None:
    reader = Index(settings)
    try:
        assert sources(reader, reader.lexical_search(collection, "printer", 10)) == ["printer"]
        ingest(index, collection, {"new": ("A brand new zeppelin manual.", {})})
        document = index.catalog.find_document_by_source(collection.id, "printer")
        assert document is not None
        gone = index.catalog.document_chunk_ids([document.id])
        delete_documents(index, collection, [document.id])

        assert sources(reader, reader.lexical_search(collection, "zeppelin", 10)) == ["new"]
        hits = reader.lexical_search(collection, "printer queue", 10)
        assert not {chunk_id for chunk_id, _ in hits} & set(gone)
    finally:
        reader.close()


def test_lost_or_damaged_tantivy_index_is_rebuilt_from_the_catalog(
    index: Index, settings: Settings, collection: Collection
) -> None:
    index.close()
    (path,) = settings.lexical_dir.iterdir()
    shutil.rmtree(path)
    path.mkdir()
    (path / "meta.json").write_text("not json")

    writer = Index(settings, writer=True)
    try:
        lexicon = writer.lexicon(collection)
        assert lexicon is not None and lexicon.num_docs() == len(TEXTS)
        assert sources(writer, writer.lexical_search(collection, "PPR-9087", 10)) == ["printer"]
    finally:
        writer.close()


def test_writer_replays_changes_a_stale_tantivy_index_missed(
    index: Index, settings: Settings, collection: Collection
) -> None:
    index.close()
    (path,) = settings.lexical_dir.iterdir()
    stale = path.parent / "stale"
    shutil.copytree(path, stale)
    writer = Index(settings, writer=True)
    try:
        ingest(writer, collection, {"new": ("A brand new zeppelin manual.", {})})
        document = writer.catalog.find_document_by_source(collection.id, "printer")
        assert document is not None
        delete_documents(writer, collection, [document.id])
    finally:
        writer.close()
    # A crash before tantivy committed these changes leaves the older index behind.
    shutil.rmtree(path)
    shutil.copytree(stale, path)

    reopened = Index(settings, writer=True)
    try:
        lexicon = reopened.lexicon(collection)
        assert lexicon is not None and lexicon.num_docs() == len(TEXTS)  # +1 new, -1 deleted
        assert sources(reopened, reopened.lexical_search(collection, "zeppelin", 10)) == ["new"]
        assert reopened.lexical_search(collection, "PPR-9087", 10) == []
    finally:
        reopened.close()


def test_reader_uses_the_database_until_tantivy_was_built(
    index: Index, settings: Settings, collection: Collection
) -> None:
    index.close()
    shutil.rmtree(settings.lexical_dir)

    reader = Index(settings)
    try:
        lexicon = reader.lexicon(collection)
        assert lexicon is not None and lexicon.state() == SyncState(0, 0)
        assert sources(reader, reader.lexical_search(collection, "PPR-9087", 10)) == ["printer"]
    finally:
        reader.close()


def test_database_engine_setting_skips_tantivy(settings: Settings, collection: Collection) -> None:
    database = Index(settings.model_copy(update={"lexical_engine": "database"}))
    try:
        assert database.lexicon(collection) is None
        assert sources(database, database.lexical_search(collection, "v2.3.1", 10)) == ["release"]
    finally:
        database.close()


def test_a_readers_known_state_follows_every_commit_of_another_handle(tmp_path: Path) -> None:
    writer = TantivyLexicon(tmp_path / "lex")
    reader = TantivyLexicon(tmp_path / "lex")  # e.g. a serving process
    try:
        assert reader.state() == SyncState(0, 0)
        for high in (3, 7, 11):
            writer.add([high], [f"word{high}"])
            writer.commit(SyncState(high, 1))
            assert reader.state() == SyncState(high, 1)  # read again: the file was replaced
            assert reader.state() == SyncState(high, 1)  # and kept while it is not
    finally:
        writer.release()
        reader.release()
