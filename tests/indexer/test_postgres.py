"""The catalog, lexical search, filters and ingest on PostgreSQL (the scale-out catalog).

Every test here runs with `settings.catalog_url` pointing at a throwaway database created for
the session (see `postgres_database` in conftest). The key SQLite specifications are imported
and run again unchanged against PostgreSQL; the focused tests below cover what differs
(tsvector literals, stemming, the shared `chunk_lexical` table).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from indexer.catalog import Catalog, CatalogError
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem, discover, source_for_path
from indexer.lexical_store import PostgresLexicalIndex, tsquery_literal, tsvector_literal
from indexer.providers.local import HashingEmbedder
from indexer.records import Collection
from indexer.settings import Settings
from tests.conftest import INGEST_DATA, MakeCollection

# The same specifications as on SQLite, collected again here with this module's `settings`.
from tests.indexer.test_catalog import (  # noqa: F401
    catalog,
    collection,
    new_chunks,
    new_document,
    test_catalog_chunk_ids_are_not_reused_after_delete,
    test_catalog_chunk_vectors_reports_chunks_missing_from_cache,
    test_catalog_create_existing_collection_conflicts,
    test_catalog_delete_document_removes_chunks_and_lexical_rows,
    test_catalog_document_frequencies_count_chunks_per_phrase,
    test_catalog_document_text_rebuilds_text_across_overlaps,
    test_catalog_embedding_cache_is_keyed_by_model_and_dimension,
    test_catalog_list_documents_pages_in_source_order,
    test_catalog_list_documents_searches_sources_and_titles,
    test_catalog_write_document_replaces_its_chunks,
)
from tests.indexer.test_filters import (  # noqa: F401
    catalog_docs,
    test_filter_compares_numbers_as_numbers_and_strings_as_strings,
    test_filter_matching_nothing_returns_nothing_from_either_retriever,
    test_filter_restricts_lexical_and_dense_search_alike,
    test_filter_selects_documents,
)
from tests.indexer.test_ingest import (  # noqa: F401
    search_sources,
    test_lexical_search_finds_chinese_words_and_whole_identifiers,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    """Settings whose catalog is the session's PostgreSQL database (vectors stay FAISS)."""
    return Settings(data_dir=tmp_path / "data", catalog_url=postgres_url)


def ingest(index: Index, coll: Collection, folder: Path, *, sync: bool = False) -> Ingestor:
    ingestor = Ingestor(index, coll, HashingEmbedder(256))
    scope = [folder] if sync else None
    asyncio.run(ingestor.run(discover([folder]), sync_scope=scope))
    return ingestor


def test_postgres_catalog_uses_the_shared_lexical_table(index: Index) -> None:
    assert index.catalog.engine.dialect.name == "postgresql"
    assert isinstance(index.catalog.lexical, PostgresLexicalIndex)


def test_postgres_ingest_unchanged_files_compute_no_embeddings(
    index: Index, make_collection: MakeCollection, docs: Path
) -> None:
    coll = make_collection()
    first = ingest(index, coll, docs).report
    second = ingest(index, coll, docs).report

    assert first.added == 3
    assert first.embedded == first.chunks > 0
    assert (second.embedded, second.unchanged, second.added, second.chunks) == (0, 3, 0, 0)
    assert index.status(coll).consistent


def test_postgres_ingest_update_replaces_chunks_and_sync_deletes(
    index: Index, make_collection: MakeCollection, docs: Path
) -> None:
    coll = make_collection()
    ingest(index, coll, docs)
    guide = docs / "guide.md"
    before = set(index.catalog.chunk_ids(coll.id).tolist())
    guide.write_text(guide.read_text() + "\n\nA new paragraph about zeppelins.\n")
    (docs / "release.md").unlink()

    report = ingest(index, coll, docs, sync=True).report

    assert (report.updated, report.deleted, report.unchanged) == (1, 1, 1)
    after = set(index.catalog.chunk_ids(coll.id).tolist())
    assert min(after - before) > max(before)  # replaced chunks got new, never reused, ids
    assert search_sources(index, coll, "zeppelins") == {source_for_path(guide)}
    assert index.catalog.lexical_count(coll.id) == index.catalog.count_chunks(coll.id)
    status = index.status(coll)
    assert (status.documents, status.consistent) == (2, True)
    assert status.vectors == status.chunks == len(after)


def test_postgres_lexical_search_stems_both_sides(
    index: Index, make_collection: MakeCollection
) -> None:
    coll = make_collection()
    item = SourceItem("mem://s.md", "s.md", data=b"The servers were running nightly backups.")
    asyncio.run(Ingestor(index, coll, HashingEmbedder(256)).run([item]))

    assert search_sources(index, coll, "run backup") == {"mem://s.md"}
    assert search_sources(index, coll, "server") == {"mem://s.md"}
    assert search_sources(index, coll, "walked") == set()


def test_postgres_lexical_search_ranks_more_matches_first(
    index: Index, make_collection: MakeCollection
) -> None:
    coll = make_collection()
    items = [
        SourceItem("mem://one.md", "one.md", data=b"Kafka is mentioned once among many words."),
        SourceItem("mem://two.md", "two.md", data=b"Kafka, kafka and Kafka again: kafka."),
    ]
    asyncio.run(Ingestor(index, coll, HashingEmbedder(256)).run(items))

    hits = index.catalog.lexical_search(coll.id, "kafka", 10)
    found = index.catalog.chunks_by_ids([i for i, _ in hits])
    assert [found[i].source for i, _ in hits] == ["mem://two.md", "mem://one.md"]
    assert hits[0][1] > hits[1][1] > 0


def test_postgres_drop_collection_removes_its_lexical_rows(
    index: Index, make_collection: MakeCollection, docs: Path
) -> None:
    kept, dropped = make_collection("kept"), make_collection("dropped")
    ingest(index, kept, docs)
    ingest(index, dropped, docs)

    index.catalog.drop_collection("dropped")

    with index.catalog.engine.connect() as conn:
        per_collection = dict(
            conn.execute(
                text("SELECT collection_id, count(*) FROM chunk_lexical GROUP BY collection_id")
            ).all()
        )
    assert per_collection == {kept.id: index.catalog.count_chunks(kept.id)}


def test_postgres_lexical_rows_with_quotes_and_backslashes_round_trip(
    index: Index, make_collection: MakeCollection
) -> None:
    coll = make_collection()
    _, ids, _ = index.catalog.write_document(
        coll, new_document(), new_chunks("O'Brien's path C:\\temp\\x_y", "plain words")
    )

    assert [i for i, _ in index.catalog.lexical_search(coll.id, "O'Brien's", 5)] == [ids[0]]
    assert [i for i, _ in index.catalog.lexical_search(coll.id, "x_y", 5)] == [ids[0]]


def test_postgres_tsvector_literal_keeps_identifiers_whole_with_positions() -> None:
    literal = tsvector_literal(["ppr-9087", "ppr", "9087", "it's", "a\\b", "ppr"])

    assert literal == "'ppr-9087':1 'ppr':2,6 '9087':3 'it''s':4 'a\\\\b':5"
    assert tsquery_literal(["ppr-9087", "x", "ppr-9087", ""]) == "'ppr-9087' | 'x'"
    assert tsquery_literal([]) == ""


def test_postgres_reopening_keeps_data_and_reconciles_vectors(
    settings: Settings, make_collection: MakeCollection, index: Index
) -> None:
    coll = make_collection()
    asyncio.run(
        Ingestor(index, coll, HashingEmbedder(256)).run(
            [SourceItem("notes.txt", "notes.txt", data=(INGEST_DATA / "notes.txt").read_bytes())]
        )
    )
    shutil.rmtree(settings.vectors_dir)  # the FAISS file is derived: PostgreSQL rebuilds it

    reopened = Index(settings, writer=True)
    try:
        store = reopened.store(coll)
        assert sorted(store.ids().tolist()) == sorted(reopened.catalog.chunk_ids(coll.id).tolist())
        query = asyncio.run(HashingEmbedder(256).embed_query("PPR-9087")).vectors[0]
        assert store.search(query, 1)[0][0] in reopened.catalog.chunk_ids(coll.id)
        assert np.all(reopened.catalog.chunk_ids(coll.id) > 0)
    finally:
        reopened.close()


def test_postgres_other_databases_are_refused() -> None:
    with pytest.raises(CatalogError, match="unsupported catalog database 'mysql'"):
        Catalog("mysql+pymysql://u@127.0.0.1/x")


def test_postgres_daily_token_spend_adds_up_under_concurrent_charges(settings: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from datetime import date

    settings.data_dir.mkdir(parents=True)
    replicas = [Catalog(settings.resolved_catalog_url) for _ in range(2)]
    day = date(2026, 1, 1)
    try:
        with ThreadPoolExecutor(8) as pool:
            charges = [replicas[i % 2] for i in range(40)]
            list(pool.map(lambda c: c.add_tokens_spent(7, day, 5), charges))
        assert [r.tokens_spent(7, day) for r in replicas] == [200, 200]
    finally:
        for replica in replicas:
            replica.close()
