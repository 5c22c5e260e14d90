"""ANN index variants for the FAISS store at 100K-1M vectors (issue 12): build time, memory,
recall@10 against exact search and single-query latency, one thread.

Vectors are drawn around real MiniLM embeddings exactly as `scripts/bench_scale.py` draws
them (its `base()`/`dataset()`: SciFact and CMRC document embeddings plus Gaussian noise,
renormalised; its cache, read-only, when present). Queries: the 300 SciFact test queries,
embedded with MiniLM. Inner product throughout (the vectors are unit length).

Variants:
- `flat`: exact `IndexFlatIP` (also the ground truth).
- `ivf_flat`: the production store's IVF (`indexer.vectors.faiss_store`): nlist = 4*sqrt(N)
  (`ideal_nlist`), trained on 64 points per list, nprobe = max(32, nlist/24); also at 2x nprobe.
- `ivf_sq8`: the same with 8-bit scalar-quantised codes (`IndexIVFScalarQuantizer`, QT_8bit).
- `hnsw32`: `IndexHNSWFlat`, M 32, efConstruction 80, efSearch 64, 128, 256 and 512.
- `hnsw32_sq8`: `IndexHNSWSQ`, QT_8bit, same graph settings.

Memory is the length of `faiss.serialize_index` (what the store writes to disk and holds).

    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_ann.py --sizes 100000 300000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import faiss  # noqa: E402
from bench_scale import base, dataset  # noqa: E402

from indexer.vectors.faiss_store import _LISTS_PER_PROBE, ideal_nlist  # noqa: E402

DIMS = 384
K = 10
VARIANTS = ("flat", "ivf_flat", "ivf_sq8", "hnsw32", "hnsw32_sq8")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


def production_nprobe(nlist: int, nprobe: int = 32) -> int:
    """`FaissStore._nprobe_for` with the store's default nprobe."""
    return max(nprobe, -(-nlist // _LISTS_PER_PROBE))


def vectors_for(size: int, data: dict[str, Any], seed: int = 7) -> np.ndarray:
    """`bench_scale.dataset()`'s vectors; above 300K the same recipe in float32 blocks (its
    float64 noise would take ~7 GiB at 1M), so the values differ but not the distribution."""
    if size <= 300_000:
        return dataset(size, data, seed)[1]
    from bench_scale import CHINESE_SHARE, NOISE

    rng = np.random.default_rng(seed)
    en, zh = data["en"][1], data["zh"][1]
    out = np.empty((size, DIMS), np.float32)
    for start in range(0, size, 100_000):
        count = min(100_000, size - start)
        chinese = rng.random(count) < CHINESE_SHARE
        block = np.where(
            chinese[:, None],
            zh[rng.integers(0, len(zh), count)],
            en[rng.integers(0, len(en), count)],
        )
        block = block + rng.standard_normal((count, DIMS), dtype=np.float32) * NOISE
        out[start : start + count] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build(variant: str, vectors: np.ndarray) -> tuple[Any, float, int]:
    """(index, build seconds, nlist or 0)."""
    t0 = time.perf_counter()
    nlist = 0
    index: Any
    if variant == "flat":
        index = faiss.IndexFlatIP(DIMS)
    elif variant.startswith("ivf"):
        nlist = ideal_nlist(len(vectors))
        quantizer = faiss.IndexFlatIP(DIMS)
        if variant == "ivf_flat":
            index = faiss.IndexIVFFlat(quantizer, DIMS, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, DIMS, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        step = max(1, len(vectors) // (nlist * 64))  # as FaissStore._trained_ivf
        index.train(np.ascontiguousarray(vectors[::step]))
    elif variant == "hnsw32":
        index = faiss.IndexHNSWFlat(DIMS, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    elif variant == "hnsw32_sq8":
        index = faiss.IndexHNSWSQ(
            DIMS,
            faiss.ScalarQuantizer.QT_8bit,  # type: ignore[arg-type]  # an int in the stubs
            32,
            faiss.METRIC_INNER_PRODUCT,
        )
        index.hnsw.efConstruction = 80
        index.train(vectors[:: max(1, len(vectors) // 100_000)])
    else:
        raise ValueError(variant)
    for start in range(0, len(vectors), 50_000):
        index.add(vectors[start : start + 50_000])
    return index, time.perf_counter() - t0, nlist


def settings(variant: str, index: Any) -> list[tuple[str, Callable[[], None]]]:
    """(label, apply) for each search setting measured."""
    if variant.startswith("ivf"):
        default = production_nprobe(index.nlist)

        def probe(n: int) -> Callable[[], None]:
            return lambda: setattr(index, "nprobe", n)

        return [
            (f"nprobe {default}", probe(default)),
            (f"nprobe {2 * default}", probe(2 * default)),
        ]
    if variant.startswith("hnsw"):

        def ef(n: int) -> Callable[[], None]:
            return lambda: setattr(index.hnsw, "efSearch", n)

        return [(f"efSearch {n}", ef(n)) for n in (64, 128, 256, 512)]
    return [("exact", lambda: None)]


def measure(index: Any, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    latencies: list[float] = []
    found: list[np.ndarray] = []
    for _ in range(2):  # warm-up pass, then the timed pass
        latencies, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            _, ids = index.search(q.reshape(1, -1), K)
            latencies.append((time.perf_counter() - t0) * 1000)
            found.append(ids[0])
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return {
        "recall@10": round(hits / (len(queries) * K), 4),
        "p50_ms": pct(latencies, 0.5),
        "p95_ms": pct(latencies, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rs-scale-cache"))
    parser.add_argument("--json", type=Path, help="append one JSON line per result here")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    data = base(args.cache)
    queries = np.ascontiguousarray(data["queries"][1], dtype=np.float32)
    print(f"faiss {faiss.__version__}, {len(queries)} queries, one thread", flush=True)
    header = (
        f"{'N':>8} {'variant':11} {'setting':13} {'build s':>8} {'MiB':>8} "
        f"{'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7}"
    )
    for size in args.sizes:
        vectors = vectors_for(size, data)
        exact = faiss.IndexFlatIP(DIMS)
        exact.add(vectors)
        truth = exact.search(queries, K)[1]
        del exact
        print(f"\n{header}", flush=True)
        for variant in args.variants:
            index, seconds, nlist = build(variant, vectors)
            memory = len(faiss.serialize_index(index))
            for label, apply in settings(variant, index):
                apply()
                row = measure(index, queries, truth)
                print(
                    f"{size:>8} {variant:11} {label:13} {seconds:8.1f} {memory / 2**20:8.1f} "
                    f"{row['recall@10']:9.4f} {row['p50_ms']:7.3f} {row['p95_ms']:7.3f}",
                    flush=True,
                )
                if args.json:
                    record = {
                        "size": size,
                        "variant": variant,
                        "setting": label,
                        "nlist": nlist,
                        "build_s": round(seconds, 1),
                        "bytes": memory,
                        **row,
                    }
                    with args.json.open("a") as fh:
                        fh.write(json.dumps(record) + "\n")
            del index


if __name__ == "__main__":
    main()
