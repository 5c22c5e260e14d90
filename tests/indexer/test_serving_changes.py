"""A serving reader applies what a writer changed instead of reloading its vectors."""

from __future__ import annotations

import asyncio

import numpy as np

from indexer.chunk_changes import sorted_difference, tombstones_after
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem, delete_documents
from indexer.providers.local import HashingEmbedder
from indexer.records import Collection
from indexer.settings import Settings
from tests.conftest import MakeCollection


def ingest(index: Index, collection: Collection, texts: dict[str, str]) -> None:
    items = [SourceItem(name, f"{name}.txt", data=text.encode()) for name, text in texts.items()]
    report = asyncio.run(Ingestor(index, collection, HashingEmbedder(256)).run(items))
    assert report.failed == []


def dense_ids(index: Index, collection: Collection, text: str) -> list[int]:
    query = asyncio.run(HashingEmbedder(256).embed_query(text)).vectors[0]
    return [chunk_id for chunk_id, _ in index.store(collection).search(query, 50)]


def chunk_ids_of(index: Index, collection: Collection, source: str) -> list[int]:
    document = index.catalog.find_document_by_source(collection.id, source)
    assert document is not None
    return index.catalog.document_chunk_ids([document.id])


def test_reader_sees_writes_and_deletes_without_reloading(
    index: Index, settings: Settings, make_collection: MakeCollection
) -> None:
    collection = make_collection()
    ingest(index, collection, {"a": "Apples grow on trees.", "b": "Bananas are yellow."})
    reader = Index(settings)
    try:
        store = reader.store(collection)
        assert reader.reloads == 1
        old_b = chunk_ids_of(index, collection, "b")

        ingest(index, collection, {"c": "Cherries are red.", "b": "Blueberries are blue."})
        new_c = chunk_ids_of(index, collection, "c")
        new_b = chunk_ids_of(index, collection, "b")
        assert set(new_c) <= set(dense_ids(reader, collection, "Cherries are red."))
        assert set(new_b) <= set(dense_ids(reader, collection, "Blueberries are blue."))
        assert not set(old_b) & set(store.ids().tolist())  # the replaced chunks are gone

        document = index.catalog.find_document_by_source(collection.id, "a")
        assert document is not None
        gone = chunk_ids_of(index, collection, "a")
        delete_documents(index, collection, [document.id])
        served = set(dense_ids(reader, collection, "Apples grow on trees."))

        assert not served & set(gone)
        assert reader.store(collection) is store  # the same vectors in memory, changed
        assert reader.reloads == 1  # opened once, never re-read
        assert sorted(store.ids().tolist()) == sorted(new_b + new_c)
    finally:
        reader.close()


def test_deletes_are_logged_by_the_catalog_whatever_deletes_them(
    index: Index, make_collection: MakeCollection
) -> None:
    collection = make_collection()
    ingest(index, collection, {"a": "One document.", "b": "Another document."})
    before = chunk_ids_of(index, collection, "a") + chunk_ids_of(index, collection, "b")
    _, start = tombstones_after(index.catalog.engine, collection.id, 0)

    index.catalog.drop_collection(collection.name)

    removed, newest = tombstones_after(index.catalog.engine, collection.id, start)
    assert sorted(removed.tolist()) == sorted(before)
    assert newest > start


def test_reader_opened_on_a_stale_file_is_repaired_then_follows_changes(
    index: Index, settings: Settings, make_collection: MakeCollection
) -> None:
    collection = make_collection()
    ingest(index, collection, {"a": "Apples grow on trees."})
    index.close()  # saves the file
    writer = Index(settings, writer=True)
    try:
        ingest(writer, collection, {"b": "Bananas are yellow."})  # small: saved at once
        reader = Index(settings)
        try:
            assert sorted(reader.store(collection).ids().tolist()) == sorted(
                chunk_ids_of(writer, collection, "a") + chunk_ids_of(writer, collection, "b")
            )
            ingest(writer, collection, {"c": "Cherries are red."})
            assert set(chunk_ids_of(writer, collection, "c")) <= set(
                reader.store(collection).ids().tolist()
            )
            assert reader.reloads == 1
        finally:
            reader.close()
    finally:
        writer.close()


def test_sorted_difference_keeps_what_the_other_lacks() -> None:
    values = np.asarray([1, 3, 5, 7, 9], dtype=np.int64)
    other = np.asarray([0, 3, 4, 9, 12], dtype=np.int64)

    assert sorted_difference(values, other).tolist() == [1, 5, 7]
    assert sorted_difference(values, other[:0]).tolist() == values.tolist()
    assert sorted_difference(other, values).tolist() == [0, 4, 12]


def test_a_writer_closing_during_an_ivf_resize_saves_the_resized_index(
    settings: Settings, make_collection: MakeCollection
) -> None:
    # A bulk write can end while the larger IVF it set off is still training: the file must
    # get the larger one, or every serving process resizes it again under load.
    from indexer.vectors.faiss_store import FaissStore

    collection = make_collection(dimensions=16)
    small = settings.model_copy(update={"ann_threshold": 200})
    writer = Index(small, writer=True)
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(20_000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = writer.store(collection)
    assert isinstance(store, FaissStore)
    store.add(np.arange(1, 401, dtype=np.int64), vectors[:400])  # IVF of ~80 lists
    first_nlist = store.nlist
    store.add(np.arange(401, 20_001, dtype=np.int64), vectors[400:])  # 50x: a resize starts
    writer.close()

    saved = FaissStore(store.path, 16, ann_threshold=200)
    assert saved.load()
    assert saved.nlist >= 4 * first_nlist
    assert len(saved.ids()) == 20_000


def test_a_small_vector_file_is_saved_at_most_every_few_seconds_and_when_the_run_ends(
    index: Index, make_collection: MakeCollection
) -> None:
    from indexer.vectors.faiss_store import FaissStore

    collection = make_collection(dimensions=16)
    store = index.store(collection)
    assert isinstance(store, FaissStore)
    vectors = np.random.default_rng(3).normal(size=(101, 16)).astype(np.float32)
    first = np.arange(1, 101, dtype=np.int64)

    def saved_ids() -> list[int]:
        saved = FaissStore(store.path, 16)
        assert saved.load()
        return sorted(saved.ids().tolist())

    store.add(first, vectors[:100])
    index.mark_current(collection, store, 100)  # the first save of a run happens at once
    assert saved_ids() == first.tolist()
    store.add(np.array([101], dtype=np.int64), vectors[100:])
    # 1% more, within SMALL_SAVE_SECONDS of the last save: the file is not rewritten yet.
    index.mark_current(collection, store, 1)
    assert saved_ids() == first.tolist()
    index.finish_writing(collection)  # the end of the run saves what is left
    assert saved_ids() == [*first.tolist(), 101]
