"""The Milvus vector store on Milvus Lite (an embedded server in a local `.db` file).

The same surface as FAISS: add, remove, ids, search with `allowed`, and the index's
reconciliation against the catalog. One Lite server per module keeps the file fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.index import Index
from indexer.ingest import Ingestor, discover
from indexer.providers.local import HashingEmbedder
from indexer.settings import Settings
from indexer.vectors.milvus_store import (
    MilvusStore,
    VectorStoreError,
    collection_name,
    connect,
    milvus_uri,
)
from tests.conftest import MakeCollection

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'ragsearch[scale]')")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install milvus-lite)")

DIMS = 4


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    opened = connect(str(tmp_path_factory.mktemp("milvus") / "vectors.db"))
    yield opened
    opened.close()


@pytest.fixture
def store(client: Any, request: pytest.FixtureRequest) -> Iterator[MilvusStore]:
    """An empty store in its own Milvus collection, dropped afterwards."""
    opened = MilvusStore(client, request.node.name[:200], DIMS)
    opened.delete_file()
    yield opened
    opened.delete_file()


def unit(*rows: list[float]) -> np.ndarray[Any, np.dtype[np.float32]]:
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def ids(*values: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.asarray(values, dtype=np.int64)


def test_milvus_store_adds_searches_and_lists_ids(store: MilvusStore) -> None:
    assert store.load() is False  # no collection yet: an empty store
    assert (len(store), store.ids().tolist(), store.search(unit([1, 0, 0, 0])[0], 3)) == (0, [], [])

    store.add(ids(10, 11, 12), unit([1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]))

    assert store.load() is True
    assert sorted(store.ids().tolist()) == [10, 11, 12]
    assert len(store) == 3
    hits = store.search(unit([1, 0, 0, 0])[0], 2)
    assert [i for i, _ in hits] == [10, 12]
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert hits[1][1] == pytest.approx(np.sqrt(0.5), abs=1e-5)
    assert store.dirty is False  # nothing to save: Milvus persisted the writes


def test_milvus_store_add_overwrites_an_existing_id(store: MilvusStore) -> None:
    store.add(ids(1), unit([1, 0, 0, 0]))
    store.add(ids(1), unit([0, 1, 0, 0]))  # a repair racing a writer: never a duplicate

    assert store.ids().tolist() == [1]
    assert store.search(unit([0, 1, 0, 0])[0], 5) == [(1, pytest.approx(1.0, abs=1e-5))]


def test_milvus_store_remove_reports_only_present_ids(store: MilvusStore) -> None:
    store.add(ids(1, 2, 3), unit([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]))

    assert store.remove(ids(2, 99)) == 1
    assert store.remove(ids()) == 0
    assert sorted(store.ids().tolist()) == [1, 3]
    assert 2 not in {i for i, _ in store.search(unit([0, 1, 0, 0])[0], 5)}


def test_milvus_store_search_respects_allowed_ids(store: MilvusStore) -> None:
    store.add(ids(1, 2, 3), unit([1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 0, 1, 0]))
    query = unit([1, 0, 0, 0])[0]

    assert [i for i, _ in store.search(query, 5, allowed=ids(2, 3))] == [2, 3]
    assert store.search(query, 5, allowed=ids()) == []
    # More ids than one filter expression holds: searched in slices, merged exactly.
    many = np.arange(0, 25_000, dtype=np.int64)
    assert [i for i, _ in store.search(query, 2, allowed=many)] == [1, 2]


def test_milvus_store_drops_a_collection_of_another_dimension(client: Any) -> None:
    wide = MilvusStore(client, "t_dimension", 8)
    wide.delete_file()
    wide.add(ids(1), np.ones((1, 8), dtype=np.float32))

    narrow = MilvusStore(client, "t_dimension", DIMS)

    assert narrow.load() is False
    assert narrow.ids().tolist() == []
    narrow.delete_file()


def test_milvus_uri_accepts_lite_files_and_servers(tmp_path: Path) -> None:
    assert milvus_uri(str(tmp_path / "x" / "m.db")) == str(tmp_path / "x" / "m.db")
    assert milvus_uri("http://milvus:19530") == "http://milvus:19530"
    with pytest.raises(VectorStoreError, match="neither `faiss`, a Milvus Lite file"):
        milvus_uri("milvus")
    assert collection_name(7) == "rs_7"


# --- the index on Milvus Lite ------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose vector store is a Milvus Lite file in the test's directory."""
    return Settings(data_dir=tmp_path / "data", vector_store=str(tmp_path / "milvus.db"))


@pytest.fixture
def milvus(settings: Settings) -> Iterator[Any]:
    """A second client on the index's Milvus: what another replica (or an accident) sees."""
    opened = connect(settings.vector_store)
    yield opened
    opened.close()


def test_milvus_index_ingests_reconciles_and_searches(
    settings: Settings, index: Index, make_collection: MakeCollection, docs: Path, milvus: Any
) -> None:
    collection = make_collection()
    embedder = HashingEmbedder(256)
    report = asyncio.run(Ingestor(index, collection, embedder).run(discover([docs])))
    assert report.added == 3
    chunk_ids = sorted(index.catalog.chunk_ids(collection.id).tolist())
    status = index.status(collection)
    assert (status.vectors, status.consistent) == (len(chunk_ids), True)

    # Damage Milvus behind the index's back: one vector lost, one stray from nowhere.
    store = MilvusStore(milvus, collection_name(collection.id), 256)
    store.remove(ids(chunk_ids[0]))
    store.add(ids(10**9), np.ones((1, 256), dtype=np.float32) / 16)
    assert not index.status(collection).consistent

    reopened = Index(settings, writer=True)
    try:
        repaired = reopened.store(collection)  # a writer reconciles against the catalog
        assert sorted(repaired.ids().tolist()) == chunk_ids
        query = asyncio.run(embedder.embed_query("PPR-9087 regression")).vectors[0]
        hits = repaired.search(query, 3)
        assert len(hits) == 3 and all(i in chunk_ids for i, _ in hits)
        assert reopened.status(collection).consistent
    finally:
        reopened.close()


def test_milvus_index_reader_never_repairs_the_shared_store(
    settings: Settings, index: Index, make_collection: MakeCollection, docs: Path, milvus: Any
) -> None:
    collection = make_collection()
    asyncio.run(Ingestor(index, collection, HashingEmbedder(256)).run(discover([docs])))
    stray = MilvusStore(milvus, collection_name(collection.id), 256)
    stray.add(ids(10**9), np.ones((1, 256), dtype=np.float32) / 16)

    reader = Index(settings, writer=False)
    try:
        assert 10**9 in reader.store(collection).ids().tolist()  # a writer's job, not a reader's
    finally:
        reader.close()


def test_milvus_index_forget_drops_the_collection(
    index: Index, make_collection: MakeCollection, docs: Path, milvus: Any
) -> None:
    collection = make_collection()
    asyncio.run(Ingestor(index, collection, HashingEmbedder(256)).run(discover([docs])))

    index.forget(collection)

    assert not milvus.has_collection(collection_name(collection.id))


@pytest.mark.postgres
def test_milvus_with_postgres_catalog_is_the_scale_out_stack(
    tmp_path: Path, postgres_url: str, docs: Path
) -> None:
    from indexer.collections import create_collection
    from indexer.providers.factory import EmbedderCache, EmbedderSpec

    settings = Settings(
        data_dir=tmp_path / "data", catalog_url=postgres_url, vector_store=str(tmp_path / "m.db")
    )
    index = Index(settings, writer=True)
    try:
        spec = EmbedderSpec("hashing", "hashing", 256)
        collection = create_collection(index, EmbedderCache(settings), "docs", spec)
        embedder = HashingEmbedder(256)
        first = asyncio.run(Ingestor(index, collection, embedder).run(discover([docs])))
        again = asyncio.run(Ingestor(index, collection, embedder).run(discover([docs])))

        assert (first.added, again.unchanged, again.embedded) == (3, 3, 0)
        assert index.status(collection).consistent
        query = asyncio.run(embedder.embed_query("PPR-9087")).vectors[0]
        dense = {i for i, _ in index.store(collection).search(query, 50)}
        lexical = {i for i, _ in index.catalog.lexical_search(collection.id, "PPR-9087", 5)}
        assert lexical and lexical <= dense == set(index.catalog.chunk_ids(collection.id).tolist())
    finally:
        index.close()
