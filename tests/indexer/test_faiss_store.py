"""FaissStore: chunk ids as vector ids, atomic saves, restricted search, IVF past a threshold."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from indexer.providers.base import Vectors
from indexer.vectors.faiss_store import FaissStore, IdArray

DIMS = 32


def unit_vectors(count: int, seed: int = 0, dims: int = DIMS) -> Vectors:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dims)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def ids(*values: int) -> IdArray:
    return np.asarray(values, dtype=np.int64)


@pytest.fixture
def store(tmp_path: Path) -> FaissStore:
    return FaissStore(tmp_path / "vectors" / "1-docs.faiss", DIMS)


def test_faiss_store_search_returns_own_id_first_with_cosine_score(store: FaissStore) -> None:
    vectors = unit_vectors(20)
    store.add(np.arange(100, 120, dtype=np.int64), vectors)

    hits = store.search(vectors[7], 3)

    assert len(hits) == 3
    assert hits[0][0] == 107
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert hits[0][1] >= hits[1][1] >= hits[2][1]


def test_faiss_store_empty_or_zero_k_returns_nothing(store: FaissStore) -> None:
    assert store.search(unit_vectors(1)[0], 5) == []
    store.add(ids(1), unit_vectors(1))
    assert store.search(unit_vectors(1)[0], 0) == []
    assert len(store.search(unit_vectors(1)[0], 50)) == 1  # k larger than the index


def test_faiss_store_remove_drops_ids_from_search(store: FaissStore) -> None:
    vectors = unit_vectors(10)
    store.add(np.arange(10, dtype=np.int64), vectors)

    removed = store.remove(ids(3, 4, 99))

    assert removed == 2
    assert sorted(store.ids().tolist()) == [0, 1, 2, 5, 6, 7, 8, 9]
    assert {hit for hit, _ in store.search(vectors[3], 10)}.isdisjoint({3, 4})
    assert store.remove(ids()) == 0


def test_faiss_store_save_load_round_trip(store: FaissStore, tmp_path: Path) -> None:
    vectors = unit_vectors(15)
    store.add(np.arange(500, 515, dtype=np.int64), vectors)
    assert store.dirty
    store.save()
    assert not store.dirty

    loaded = FaissStore(store.path, DIMS)
    assert loaded.load() is True

    assert sorted(loaded.ids().tolist()) == list(range(500, 515))
    assert loaded.search(vectors[4], 1) == store.search(vectors[4], 1)


def test_faiss_store_save_is_atomic_and_leaves_no_temp_file(store: FaissStore) -> None:
    store.add(ids(1, 2), unit_vectors(2))
    store.save()
    first = store.path.read_bytes()
    store.add(ids(3), unit_vectors(1, seed=1))

    store.save()

    assert [p.name for p in store.path.parent.iterdir()] == [store.path.name]
    assert store.path.read_bytes() != first


def test_faiss_store_load_rejects_missing_corrupt_or_wrong_dimension(tmp_path: Path) -> None:
    path = tmp_path / "x.faiss"
    assert FaissStore(path, DIMS).load() is False
    path.write_bytes(b"\x00" * 64)
    assert FaissStore(path, DIMS).load() is False
    other = FaissStore(path, DIMS * 2)
    other.add(ids(1), unit_vectors(1, dims=DIMS * 2))
    other.save()

    store = FaissStore(path, DIMS)

    assert store.load() is False
    assert len(store) == 0


def test_faiss_store_allowed_ids_restrict_results(store: FaissStore) -> None:
    vectors = unit_vectors(30)
    store.add(np.arange(30, dtype=np.int64), vectors)

    hits = store.search(vectors[0], 5, allowed=ids(10, 20, 25))

    assert {hit for hit, _ in hits} == {10, 20, 25}
    assert store.search(vectors[0], 5, allowed=ids()) == []  # a filter matching nothing
    assert store.search(vectors[0], 5, allowed=ids(999)) == []


def test_faiss_store_switches_to_ivf_past_threshold(tmp_path: Path) -> None:
    store = FaissStore(tmp_path / "ivf.faiss", DIMS, ann_threshold=200, nprobe=16)
    vectors = unit_vectors(2_000, seed=3)
    all_ids = np.arange(10_000, 12_000, dtype=np.int64)
    store.add(all_ids[:150], vectors[:150])
    assert not store.is_approximate

    store.add(all_ids[150:], vectors[150:])

    assert store.is_approximate
    assert sorted(store.ids().tolist()) == all_ids.tolist()
    probes = range(0, 2_000, 20)
    own_first = sum(store.search(vectors[i], 1)[0][0] == all_ids[i] for i in probes)
    assert own_first >= 0.9 * len(probes)
    assert store.remove(all_ids[:100]) == 100
    assert len(store) == 1_900
    assert all(store.search(vectors[i], 5)[0][0] != all_ids[i] for i in range(0, 100, 10))
    restricted = store.search(vectors[500], 5, allowed=all_ids[500:503])
    assert {hit for hit, _ in restricted} <= set(all_ids[500:503].tolist())
    assert restricted[0][0] == all_ids[500]

    store.save()
    loaded = FaissStore(store.path, DIMS, ann_threshold=200, nprobe=16)
    assert loaded.load()

    assert loaded.is_approximate
    assert sorted(loaded.ids().tolist()) == all_ids[100:].tolist()
    assert loaded.search(vectors[1_234], 1)[0][0] == all_ids[1_234]


def test_faiss_store_ivf_survives_being_dropped_and_reloaded(tmp_path: Path) -> None:
    # Regression: the IVF quantizer was freed twice, and a loaded IVF index was read through
    # a proxy that did not own it; both crashed the process once garbage was collected.
    path = tmp_path / "ivf.faiss"
    vectors = unit_vectors(400, seed=5)
    for round_ in range(3):
        store = FaissStore(path, DIMS, ann_threshold=200)
        if round_ == 0:
            store.add(np.arange(400, dtype=np.int64), vectors)
        else:
            assert store.load()
        assert store.is_approximate
        store.save()
        del store
        gc.collect()
        _ = [FaissStore(path, DIMS) for _ in range(20)]  # reuse the freed memory

    reloaded = FaissStore(path, DIMS)
    assert reloaded.load()
    assert len(reloaded.ids()) == 400
    assert reloaded.search(vectors[42], 1)[0][0] == 42


def test_faiss_store_ivf_grows_its_lists_in_the_background_losing_no_change(
    tmp_path: Path,
) -> None:
    store = FaissStore(tmp_path / "grow.faiss", DIMS, ann_threshold=200, nprobe=4)
    vectors = unit_vectors(3_000, seed=11)
    all_ids = np.arange(3_000, dtype=np.int64)
    store.add(all_ids[:400], vectors[:400])
    first_nlist = store.nlist  # 400 // 39 = 10 lists

    for start in range(400, 3_000, 100):  # grows 7.5x: a resize starts on the way
        store.add(all_ids[start : start + 100], vectors[start : start + 100])
        store.remove(all_ids[start - 50 : start - 40])  # changes while it runs
    store.wait_for_resize()

    assert store.nlist >= 2 * first_nlist
    expected = sorted(
        set(all_ids.tolist()) - {i for s in range(400, 3_000, 100) for i in range(s - 50, s - 40)}
    )
    assert sorted(store.ids().tolist()) == expected  # nothing lost, nothing doubled
    probes = expected[::30]
    own_first = sum(store.search(vectors[i], 1)[0][0] == i for i in probes)
    assert own_first >= 0.9 * len(probes)
