"""The catalog on a real SQLite file: collections, documents, chunks, FTS rows, the vector cache."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError

from indexer.catalog import Catalog, CatalogError, CollectionSpec, NewDocument
from indexer.errors import Conflict, InputError, NotFound
from indexer.lexical import index_text
from indexer.records import ChunkDraft, Collection, NewChunk
from indexer.settings import Settings

DIMS = 4
MODEL = "hashing:hashing-4"


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    settings.data_dir.mkdir(parents=True)
    opened = Catalog(settings.resolved_catalog_url)
    yield opened
    opened.close()


@pytest.fixture
def collection(catalog: Catalog) -> Collection:
    return catalog.create_collection(
        CollectionSpec("docs", "hashing", "hashing-4", DIMS, chunk_tokens=64, overlap_sentences=0)
    )


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_chunks(*texts: str, start: int = 0) -> list[NewChunk]:
    """Chunks laid end to end (separated by one space) from offset `start`."""
    out = []
    for ordinal, text in enumerate(texts):
        draft = ChunkDraft(ordinal, text, start, start + len(text), (), None, len(text.split()))
        out.append(NewChunk(draft, sha(text), index_text(text)))
        start += len(text) + 1
    return out


def new_document(source: str = "/docs/a.md", content: str = "v1") -> NewDocument:
    return NewDocument(source, "A", "text/markdown", sha(content), {"team": "x"}, 10)


@pytest.mark.parametrize("name", ["", "-dash", ".dot", "has space", "x" * 129, "名字", "a/b"])
def test_catalog_collection_name_must_be_simple(catalog: Catalog, name: str) -> None:
    with pytest.raises(InputError, match="invalid collection name"):
        catalog.create_collection(CollectionSpec(name, "hashing", "h", DIMS, 64, 0))


def test_catalog_create_existing_collection_conflicts(
    catalog: Catalog, collection: Collection
) -> None:
    with pytest.raises(Conflict, match="collection 'docs' already exists"):
        catalog.create_collection(CollectionSpec("docs", "hashing", "h", DIMS, 64, 0))
    assert [c.name for c in catalog.list_collections()] == ["docs"]


def test_catalog_get_missing_collection_is_not_found(catalog: Catalog) -> None:
    assert catalog.find_collection("nope") is None
    with pytest.raises(NotFound, match="collection 'nope' does not exist"):
        catalog.get_collection("nope")


def test_catalog_write_document_replaces_its_chunks(
    catalog: Catalog, collection: Collection
) -> None:
    doc_id, first_ids, removed = catalog.write_document(
        collection, new_document(), new_chunks("alpha one", "beta two")
    )
    assert removed == []
    revision = catalog.revision(collection.id)

    written = catalog.write_document(
        collection, new_document(content="v2"), new_chunks("alpha one", "gamma", "delta")
    )
    second_ids = written.chunk_ids

    assert written.document_id == doc_id
    assert written.removed_ids == first_ids
    assert min(second_ids) > max(first_ids)  # ids are never reused: they are vector ids
    assert catalog.revision(collection.id) == revision + 1
    document = catalog.get_document(collection.id, doc_id)
    assert (document.chunk_count, document.content_sha256) == (3, sha("v2"))
    assert sorted(catalog.chunk_ids(collection.id).tolist()) == second_ids
    assert catalog.lexical_count(collection.id) == 3
    assert catalog.lexical_search(collection.id, "beta", 5) == []
    assert [i for i, _ in catalog.lexical_search(collection.id, "gamma", 5)] == [second_ids[1]]


def test_catalog_failed_write_keeps_the_previous_version(
    catalog: Catalog, collection: Collection
) -> None:
    doc_id, ids, _ = catalog.write_document(collection, new_document(), new_chunks("alpha one"))
    broken = new_chunks("fine", "broken")
    broken[1] = NewChunk(
        ChunkDraft(1, None, 5, 11, (), None, 1),  # type: ignore[arg-type]  # NOT NULL violation
        sha("broken"),
        "broken",
    )

    with pytest.raises(CatalogError, match="NOT NULL") as refused:
        catalog.write_document(collection, new_document(content="v2"), broken)

    assert isinstance(refused.value.__cause__, IntegrityError)
    assert catalog.chunk_ids(collection.id).tolist() == ids
    assert catalog.get_document(collection.id, doc_id).content_sha256 == sha("v1")
    assert catalog.lexical_count(collection.id) == 1


def test_catalog_chunk_ids_are_not_reused_after_delete(
    catalog: Catalog, collection: Collection
) -> None:
    doc_id, first_ids, _ = catalog.write_document(
        collection, new_document(), new_chunks("one", "two")
    )
    catalog.delete_document(collection.id, doc_id)

    _, again, _ = catalog.write_document(collection, new_document(), new_chunks("one", "two"))

    assert min(again) > max(first_ids)


def test_catalog_delete_document_removes_chunks_and_lexical_rows(
    catalog: Catalog, collection: Collection
) -> None:
    keep_id, _, _ = catalog.write_document(collection, new_document("/k.md"), new_chunks("keep"))
    doc_id, ids, _ = catalog.write_document(collection, new_document(), new_chunks("gone", "too"))

    removed = catalog.delete_document(collection.id, doc_id)

    assert removed == ids
    assert catalog.chunks_by_ids(ids) == {}
    assert catalog.count_documents(collection.id) == 1
    assert catalog.lexical_count(collection.id) == catalog.count_chunks(collection.id) == 1
    assert catalog.lexical_search(collection.id, "gone", 5) == []
    with pytest.raises(NotFound):
        catalog.delete_document(collection.id, doc_id)
    assert catalog.get_document(collection.id, keep_id).source == "/k.md"


def test_catalog_embedding_cache_is_keyed_by_model_and_dimension(catalog: Catalog) -> None:
    vector = np.asarray([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
    catalog.put_vectors(MODEL, DIMS, {"s1": vector})
    catalog.put_vectors(MODEL, DIMS, {"s1": vector * 0, "s2": -vector})  # s1 kept, not replaced

    found = catalog.cached_vectors(MODEL, DIMS, ["s1", "s2", "s3"])

    assert set(found) == {"s1", "s2"}
    np.testing.assert_array_equal(found["s1"], vector)
    np.testing.assert_array_equal(found["s2"], -vector)
    assert catalog.cached_vectors("zhipu:embedding-3", DIMS, ["s1"]) == {}
    assert catalog.cached_vectors(MODEL, 8, ["s1"]) == {}


def test_catalog_chunk_vectors_reports_chunks_missing_from_cache(
    catalog: Catalog, collection: Collection
) -> None:
    _, ids, _ = catalog.write_document(collection, new_document(), new_chunks("cached", "not"))
    vector = np.asarray([1, 0, 0, 0], dtype=np.float32)
    catalog.put_vectors(collection.cache_model_key, DIMS, {sha("cached"): vector})

    found, vectors, missing = catalog.chunk_vectors(collection, ids)

    assert (found, missing) == ([ids[0]], [ids[1]])
    assert vectors.shape == (1, DIMS)
    np.testing.assert_array_equal(vectors[0], vector)


def test_catalog_drop_collection_removes_everything_in_it(
    catalog: Catalog, collection: Collection
) -> None:
    other = catalog.create_collection(CollectionSpec("other", "hashing", "h", DIMS, 64, 0))
    catalog.write_document(collection, new_document(), new_chunks("mine"))
    catalog.write_document(other, new_document(), new_chunks("theirs"))

    catalog.drop_collection("docs")

    assert catalog.find_collection("docs") is None
    assert catalog.count_documents(collection.id) == 0
    assert catalog.count_chunks(collection.id) == 0
    assert catalog.lexical_count(other.id) == 1
    with catalog.engine.connect() as conn:
        tables = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert f"chunks_fts_{collection.id}" not in tables
    assert f"chunks_fts_{other.id}" in tables


def test_catalog_document_text_rebuilds_text_across_overlaps(
    catalog: Catalog, collection: Collection
) -> None:
    overlapping = [
        NewChunk(ChunkDraft(0, "One. Two.", 0, 9, (), None, 2), sha("a"), "one two"),
        NewChunk(ChunkDraft(1, "Two. Three.", 5, 16, (), None, 2), sha("b"), "two three"),
    ]
    doc_id, _, _ = catalog.write_document(collection, new_document(), overlapping)

    assert catalog.document_text(doc_id) == "One. Two. Three."


def test_catalog_list_documents_pages_in_source_order(
    catalog: Catalog, collection: Collection
) -> None:
    for name in ("c", "a", "b"):
        catalog.write_document(collection, new_document(f"/{name}.md"), new_chunks(name))

    everything = catalog.list_documents(collection.id)
    page = catalog.list_documents(collection.id, limit=1, offset=1)

    assert [d.source for d in everything] == ["/a.md", "/b.md", "/c.md"]
    assert [d.source for d in page] == ["/b.md"]
    assert everything[0].metadata == {"team": "x"}
    assert catalog.document_hashes(collection.id)["/c.md"] == (everything[2].id, sha("v1"))


def test_catalog_list_documents_searches_sources_and_titles(
    catalog: Catalog, collection: Collection
) -> None:
    for source, title in (
        ("/ops/Guide.md", "Runbook"),
        ("/x/100%_done.md", None),
        ("/y.md", "日志"),
    ):
        doc = NewDocument(source, title, "text/markdown", sha(source), {}, 10)
        catalog.write_document(collection, doc, new_chunks(source))

    def found(needle: str) -> list[str]:
        return [d.source for d in catalog.list_documents(collection.id, containing=needle)]

    assert found("guide") == found("RUNBOOK") == ["/ops/Guide.md"]
    assert found("%_") == ["/x/100%_done.md"]  # wildcards taken literally
    assert found("_") == ["/x/100%_done.md"]
    assert found("日志") == ["/y.md"]
    assert found("") == ["/ops/Guide.md", "/x/100%_done.md", "/y.md"]
    assert catalog.count_documents(collection.id, containing="md") == 3
    assert catalog.count_documents(collection.id, containing="none") == 0


def test_catalog_document_text_separates_chunks_with_gaps(
    catalog: Catalog, collection: Collection
) -> None:
    apart = [
        NewChunk(ChunkDraft(0, "First part.", 0, 11, (), None, 2), sha("a"), "first part"),
        NewChunk(ChunkDraft(1, "Second part.", 20, 32, (), None, 2), sha("b"), "second part"),
        NewChunk(ChunkDraft(2, "Glued", 32, 37, (), None, 1), sha("c"), "glued"),
    ]
    doc_id, _, _ = catalog.write_document(collection, new_document(), apart)

    assert catalog.document_text(doc_id) == "First part.\n\nSecond part.Glued"


def test_catalog_database_failure_is_a_catalog_error(catalog: Catalog) -> None:
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE api_keys")

    with pytest.raises(CatalogError, match="no such table: api_keys") as failed:
        catalog.list_keys()

    assert failed.value.status == 503
    assert catalog.list_collections() == []  # the rest of the catalog still answers


def test_catalog_document_frequencies_count_chunks_per_phrase(
    catalog: Catalog, collection: Collection
) -> None:
    catalog.write_document(
        collection,
        new_document(),
        new_chunks("mounting sub applications", "mount the app", "中间件在每个请求之前运行"),
    )
    total, counts = catalog.document_frequencies(
        collection.id, [("mount",), ("everest",), ("中间", "间件"), ("间件", "中间")]
    )
    assert total == 3
    # Stemmed like the index ("mounting" counts for "mount"); bigram phrases in order only.
    assert counts == [2, 0, 1, 0]
