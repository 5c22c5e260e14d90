"""ragsearch at 100K-1M chunks, next to raw FAISS + FTS5, Chroma and LanceDB in the same run.

Data: chunk texts are runs of SciFact sentences plus 5% CMRC (Chinese) passages; each chunk's
vector is its source document's real MiniLM embedding plus Gaussian noise, renormalised
(never uniform noise: the clusters and the query geometry stay MiniLM's). Queries: the 300
SciFact test queries, embedded with MiniLM once (no query embedding in the timings). Dense
recall@10 is measured against exact search over the same vectors.

Each system is built in one child process and served in another (so open time and RSS are
its own): ours through `ragsearch import` of a Parquet file (nothing embedded), raw FAISS
(IVF, nlist 4*sqrt(N), nprobe 32) + sqlite3 FTS5 over the same tokens, Chroma
(PersistentClient, HNSW cosine), LanceDB (IVF_PQ cosine index + its full-text index).
Hybrid is dense + lexical top-100 fused by RRF plus fetching the top 15 texts, where a
system has both. "stall" is the first query after a one-document write by another process
(ours) or the same client (peers), minus the median query.

    pip install -e '.[bench]'    # and '.[torch]' to embed the centres without --base-catalog
    python scripts/bench_scale.py --sizes 100000 300000 [--work /tmp/rs-scale] [--plots docs]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATASETS = Path("/work/shared/datasets")
DIMS = 384
NOISE = 0.035  # per dimension: a chunk vector keeps cosine ~0.8 with its document's
CHINESE_SHARE = 0.05
CHUNKS_PER_DOCUMENT = 4
SYSTEMS = ("ours", "raw", "chroma", "lancedb")
K = 10
CANDIDATES = 100


# --- data --------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _embed(texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    from indexer.providers.local import MINILM, _minilm_path, _quiet_offline_hub

    _quiet_offline_hub()
    model = SentenceTransformer(_minilm_path(MINILM), device="cpu")
    model.max_seq_length = 128  # the centres need MiniLM's geometry, not every token
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True))


def _from_catalog(catalog: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """Chunk texts with their cached MiniLM vectors from a data directory ingested with it."""
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT c.name, k.text, e.vector FROM chunks k JOIN collections c "
        "ON c.id = k.collection_id JOIN embedding_cache e ON e.text_sha256 = k.embed_sha256 "
        "AND e.model = 'local:all-MiniLM-L6-v2' ORDER BY k.id"
    ).fetchall()
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for lang in ("en", "zh"):
        # FastAPI's docs are partly Chinese: keep the 5% share of Chinese chunks honest.
        kept = [
            (t, v)
            for name, t, v in rows
            if (name == "cmrc") == (lang == "zh") and (lang == "zh" or not _CJK.search(t))
        ]
        vectors = np.frombuffer(b"".join(v for _, v in kept), np.float32).reshape(-1, DIMS)
        out[lang] = ([t for t, _ in kept], vectors)
    return out


def base(cache: Path, catalog: Path | None = None) -> dict[str, Any]:
    """Texts with real MiniLM embeddings (English and Chinese centres) and the SciFact test
    queries embedded. From `catalog` (a data directory's catalog.sqlite3 holding MiniLM
    collections: Chinese when named `cmrc`) or embedded here from the datasets."""
    target = cache / "base.json"
    if not target.exists():
        qrels = (DATASETS / "scifact" / "qrels" / "test.tsv").read_text().splitlines()[1:]
        wanted = {line.split("\t")[0] for line in qrels}
        queries = [
            q["text"] for q in _jsonl(DATASETS / "scifact" / "queries.jsonl") if q["_id"] in wanted
        ]
        if catalog is not None:
            centres = _from_catalog(catalog)
        else:
            en = _jsonl(DATASETS / "scifact" / "corpus.jsonl")[:2000]
            zh = _jsonl(DATASETS / "cmrc2018_zh" / "corpus.jsonl")[:300]
            en_texts = [f"{d.get('title') or ''}\n{d['text']}" for d in en]
            zh_texts = [d["text"] for d in zh]
            centres = {"en": (en_texts, _embed(en_texts)), "zh": (zh_texts, _embed(zh_texts))}
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache / "base.npz",
            en=centres["en"][1],
            zh=centres["zh"][1],
            queries=_embed(queries),
        )
        texts = {"en": centres["en"][0], "zh": centres["zh"][0], "queries": queries}
        target.write_text(json.dumps(texts, ensure_ascii=False))
    texts = json.loads(target.read_text())
    saved = np.load(cache / "base.npz")
    return {
        "en": (texts["en"], saved["en"]),
        "zh": (texts["zh"], saved["zh"]),
        "queries": (texts["queries"], saved["queries"].astype(np.float32)),
    }


_CJK = re.compile("[\u3400-\u9fff]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def dataset(size: int, data: dict[str, Any], seed: int = 7) -> tuple[list[str], np.ndarray]:
    """`size` chunk texts and vectors drawn around the real embeddings."""
    rng = np.random.default_rng(seed)
    en_texts, en_vectors = data["en"]
    zh_texts, zh_vectors = data["zh"]
    sentences = [_SENTENCE.split(t) for t in en_texts]
    chinese = rng.random(size) < CHINESE_SHARE
    sources = np.where(
        chinese, rng.integers(0, len(zh_texts), size), rng.integers(0, len(en_texts), size)
    )
    texts: list[str] = []
    for is_zh, source in zip(chinese, sources, strict=True):
        if is_zh:
            passage = zh_texts[source]
            start = int(rng.integers(0, max(1, len(passage) - 200)))
            texts.append(passage[start : start + 200])
        else:
            parts = sentences[source]
            start = int(rng.integers(0, len(parts)))
            texts.append(" ".join(parts[start : start + 3]))
    centres = np.empty((size, DIMS), np.float32)
    centres[chinese] = zh_vectors[sources[chinese]]
    centres[~chinese] = en_vectors[sources[~chinese]]
    vectors = centres + rng.normal(0, NOISE, (size, DIMS))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, vectors.astype(np.float32)


def write_parquet(path: Path, texts: list[str], vectors: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    count = len(texts)
    table = pa.table(
        {
            "source": [f"doc-{i // CHUNKS_PER_DOCUMENT:07d}" for i in range(count)],
            "text": texts,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIMS).cast(
                pa.list_(pa.float32())
            ),
            "model": ["all-MiniLM-L6-v2"] * count,
        }
    )
    pq.write_table(table, path, row_group_size=20_000)


def ground_truth(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(DIMS)
    flat.add(vectors)
    return np.asarray(flat.search(queries, K)[1])


# --- measuring ---------------------------------------------------------------------------


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(run: Callable[[int], Any], count: int) -> tuple[list[float], list[Any]]:
    latencies, results = [], []
    for i in range(count):
        t0 = time.perf_counter()
        results.append(run(i))
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies, results


def summary(latencies: list[float]) -> dict[str, float]:
    return {"p50": round(pct(latencies, 0.5), 2), "p95": round(pct(latencies, 0.95), 2)}


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f[:K]) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return round(hits / (len(found) * K), 4)


def rrf(lists: list[list[int]], k: int = 60) -> list[int]:
    scores: dict[int, float] = {}
    for hits in lists:
        for rank, item in enumerate(hits, start=1):
            scores[item] = scores.get(item, 0.0) + 1 / (k + rank)
    return sorted(scores, key=lambda i: -scores[i])


# --- systems -----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return {k: v for k, v in env.items() if not k.startswith("RAGSEARCH_")}


def _ragsearch(data_dir: Path, *args: str) -> str:
    command = [sys.executable, "-m", "service.cli", "--data-dir", str(data_dir), *args]
    done = subprocess.run(command, check=True, env=_env(), capture_output=True, text=True)
    return done.stdout


class Ours:
    name = "ours"

    def __init__(self, work: Path) -> None:
        self.dir = work / "ours"

    def build(self, parquet: Path) -> None:
        _ragsearch(
            self.dir, "collections", "create", "bench", "--embedder", "local",
            "--model", "all-MiniLM-L6-v2",
        )  # fmt: skip
        # What `ragsearch import` runs, in this process, timed as raw is: its libraries'
        # imports included, the interpreter's and the CLI's start-up (~0.9 s) not.
        t0 = time.perf_counter()
        from indexer.cli_context import writing
        from indexer.importer import Importer
        from indexer.settings import Settings
        from indexer.vector_files import documents, read_rows

        with writing(Settings(data_dir=self.dir)) as index:
            target = index.catalog.get_collection("bench")
            Importer(index, target).run(documents(read_rows(parquet)))
        self.write_seconds = time.perf_counter() - t0

    def open(self) -> None:
        from indexer import chunk_changes
        from indexer.index import Index
        from indexer.settings import Settings

        self.index = Index(Settings(data_dir=self.dir))
        self.collection = self.index.catalog.get_collection("bench")
        self.index.store(self.collection)
        self.index.lexicon(self.collection)
        self.id_of = chunk_changes.chunk_ids(self.index.catalog.engine, self.collection.id)
        self.row_of = {int(c): i for i, c in enumerate(self.id_of)}

    def dense(self, vector: np.ndarray, k: int) -> list[int]:
        hits = self.index.store(self.collection).search(vector, k)
        return [self.row_of.get(i, -1) for i, _ in hits]

    def lexical(self, text: str, k: int) -> list[int]:
        hits = self.index.lexical_search(self.collection, text, k)
        return [self.row_of.get(i, -1) for i, _ in hits]

    def fetch(self, rows: list[int]) -> None:
        self.index.catalog.chunks_by_ids([int(self.id_of[r]) for r in rows if r >= 0])

    def write_one(self, parquet: Path) -> None:
        _ragsearch(self.dir, "import", str(parquet), "-c", "bench")


class Raw:
    name = "raw"

    def __init__(self, work: Path) -> None:
        self.dir = work / "raw"

    def build(self, parquet: Path) -> None:
        import faiss
        import pyarrow.parquet as pq

        from indexer.lexical import FTS5_TOKENIZE, index_text

        self.dir.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(parquet, columns=["text", "vector"])
        vectors = np.asarray(table["vector"].combine_chunks().flatten()).reshape(-1, DIMS)
        db = sqlite3.connect(self.dir / "fts.sqlite3")
        db.execute(f'CREATE VIRTUAL TABLE t USING fts5(terms, tokenize="{FTS5_TOKENIZE}")')
        texts = table["text"].to_pylist()
        db.executemany(
            "INSERT INTO t(rowid, terms) VALUES (?, ?)",
            ((i, index_text(t)) for i, t in enumerate(texts)),
        )
        db.commit()
        nlist = int(4 * math.sqrt(len(vectors)))
        quantizer = faiss.IndexFlatIP(DIMS)
        ivf = faiss.IndexIVFFlat(quantizer, DIMS, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors[:: max(1, len(vectors) // (nlist * 39))])
        ivf.add(vectors)
        faiss.write_index(ivf, str(self.dir / "vectors.faiss"))
        self.texts = texts

    def open(self) -> None:
        import faiss

        self.ivf = faiss.read_index(str(self.dir / "vectors.faiss"))
        self.ivf.nprobe = 32
        self.db = sqlite3.connect(self.dir / "fts.sqlite3", check_same_thread=False)

    def dense(self, vector: np.ndarray, k: int) -> list[int]:
        return [int(i) for i in self.ivf.search(vector.reshape(1, -1), k)[1][0] if i >= 0]

    def lexical(self, text: str, k: int) -> list[int]:
        from indexer.lexical import fts_match_expression, query_tokens

        expression = fts_match_expression(query_tokens(text))
        rows = self.db.execute(
            "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT ?", (expression, k)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def fetch(self, rows: list[int]) -> None:
        marks = ",".join("?" * len(rows))
        self.db.execute(f"SELECT terms FROM t WHERE rowid IN ({marks})", rows).fetchall()

    def write_one(self, parquet: Path) -> None:
        """Raw FAISS has no serving story: a reader re-reads the file."""
        self.open()


class Chroma:
    name = "chroma"

    def __init__(self, work: Path) -> None:
        self.dir = work / "chroma"

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        return chromadb.PersistentClient(
            path=str(self.dir), settings=ChromaSettings(anonymized_telemetry=False)
        )

    def build(self, parquet: Path) -> None:
        import pyarrow.parquet as pq

        table = pq.read_table(parquet, columns=["text", "vector"])
        vectors = np.asarray(table["vector"].combine_chunks().flatten()).reshape(-1, DIMS)
        texts = table["text"].to_pylist()
        coll = self._client().create_collection("bench", metadata={"hnsw:space": "cosine"})
        step = 5000
        for at in range(0, len(texts), step):
            coll.add(
                ids=[str(i) for i in range(at, min(at + step, len(texts)))],
                embeddings=vectors[at : at + step],
                documents=texts[at : at + step],
            )

    def open(self) -> None:
        self.coll = self._client().get_collection("bench")
        self.coll.query(query_embeddings=[np.zeros(DIMS, np.float32)], n_results=1)

    def dense(self, vector: np.ndarray, k: int) -> list[int]:
        found = self.coll.query(query_embeddings=[vector], n_results=k, include=[])
        return [int(i) for i in found["ids"][0]]

    lexical = None  # Chroma has no BM25 (only substring filters)

    def fetch(self, rows: list[int]) -> None:
        self.coll.get(ids=[str(r) for r in rows], include=["documents"])

    def write_one(self, parquet: Path) -> None:
        vector = np.ones(DIMS, np.float32) / math.sqrt(DIMS)
        self.coll.add(ids=["written"], embeddings=[vector], documents=["a new zeppelin"])


class Lance:
    name = "lancedb"

    def __init__(self, work: Path) -> None:
        self.dir = work / "lancedb"

    def build(self, parquet: Path) -> None:
        import lancedb
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(parquet, columns=["text", "vector"])
        vectors = table["vector"].combine_chunks().flatten()
        data = pa.table(
            {
                "row": pa.array(np.arange(table.num_rows)),
                "text": table["text"],
                "vector": pa.FixedSizeListArray.from_arrays(vectors, DIMS),
            }
        )
        db = lancedb.connect(str(self.dir))
        tbl = db.create_table("bench", data=data)
        tbl.create_index(
            metric="cosine",
            num_partitions=int(4 * math.sqrt(table.num_rows)),
            num_sub_vectors=48,
        )
        tbl.create_fts_index("text")

    def open(self) -> None:
        import lancedb

        self.tbl = lancedb.connect(str(self.dir)).open_table("bench")
        self.tbl.search(np.zeros(DIMS, np.float32)).limit(1).to_list()

    def dense(self, vector: np.ndarray, k: int) -> list[int]:
        query = self.tbl.search(vector).metric("cosine").nprobes(32).refine_factor(4)
        return [int(r["row"]) for r in query.select(["row"]).limit(k).to_list()]

    def lexical(self, text: str, k: int) -> list[int]:
        query = self.tbl.search(text, query_type="fts").select(["row"]).limit(k)
        return [int(r["row"]) for r in query.to_list()]

    def fetch(self, rows: list[int]) -> None:
        self.tbl.search().where(f"row IN ({','.join(map(str, rows))})").select(["text"]).to_list()

    def write_one(self, parquet: Path) -> None:
        import pyarrow as pa

        vector = np.ones(DIMS, np.float32) / math.sqrt(DIMS)
        self.tbl.add(
            pa.table(
                {
                    "row": pa.array([10**9]),
                    "text": ["a new zeppelin"],
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(vector), DIMS),
                }
            )
        )


CLASSES = {"ours": Ours, "raw": Raw, "chroma": Chroma, "lancedb": Lance}


# --- children ----------------------------------------------------------------------------


def child_build(system: str, work: Path, parquet: Path) -> dict[str, Any]:
    target = CLASSES[system](work)
    t0 = time.perf_counter()
    target.build(parquet)
    seconds = time.perf_counter() - t0
    built = {"build_seconds": round(seconds, 2)}
    if hasattr(target, "write_seconds"):
        built["write_seconds"] = round(target.write_seconds, 2)
    return built


def child_serve(system: str, work: Path, size: int, cache: Path) -> dict[str, Any]:
    data = base(cache)
    query_texts, query_vectors = data["queries"]
    truth = np.load(work / "truth.npy")
    rss_before = rss_mib()
    target = CLASSES[system](work)
    t0 = time.perf_counter()
    target.open()
    out: dict[str, Any] = {"open_seconds": round(time.perf_counter() - t0, 3)}
    out["rss_open_mib"] = round(rss_mib() - rss_before, 1)
    count = len(query_texts)
    dense_ms, dense_rows = timed(lambda i: target.dense(query_vectors[i], CANDIDATES), count)
    out["dense"] = summary(dense_ms)
    out["recall@10"] = recall([r[:K] for r in dense_rows], truth)
    if target.lexical is not None:
        lexical_ms, _ = timed(lambda i: target.lexical(query_texts[i], CANDIDATES), count)
        out["lexical"] = summary(lexical_ms)

        def hybrid(i: int) -> None:
            found: dict[str, list[int]] = {}
            thread = threading.Thread(
                target=lambda: found.update(lexical=target.lexical(query_texts[i], CANDIDATES))
            )
            thread.start()
            found["dense"] = target.dense(query_vectors[i], CANDIDATES)
            thread.join()
            target.fetch(rrf([found["dense"], found["lexical"]])[:15])

        hybrid_ms, _ = timed(hybrid, count)
        out["hybrid"] = summary(hybrid_ms)
    out["rss_serving_mib"] = round(rss_mib() - rss_before, 1)
    baseline = statistics.median(dense_ms)
    stalls = []
    for round_ in range(3):
        one = work / f"one-{round_}.parquet"
        write_parquet(one, [f"a new zeppelin manual {round_}"], query_vectors[round_ : round_ + 1])
        target.write_one(one)
        t0 = time.perf_counter()
        target.dense(query_vectors[round_], CANDIDATES)
        stalls.append((time.perf_counter() - t0) * 1000 - baseline)
    out["stall_ms"] = round(max(stalls), 1)
    out["rss_after_writes_mib"] = round(rss_mib() - rss_before, 1)
    return out


def run_child(kind: str, system: str, work: Path, size: int, cache: Path) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--child", kind, "--system", system,
        "--work", str(work), "--sizes", str(size), "--cache", str(cache),
    ]  # fmt: skip
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report ------------------------------------------------------------------------------


def table(results: dict[int, dict[str, dict[str, Any]]]) -> str:
    head = (
        "| N | system | import chunks/s | open s | RSS MiB | dense p50/p95 ms | recall@10 "
        "| lexical p50/p95 ms | hybrid p50/p95 ms | stall ms |"
    )
    lines = [head, "|" + "---|" * 10]
    for size, systems in results.items():
        for name, r in systems.items():
            if "error" in r:
                lines.append(f"| {size:,} | {name} | error: {r['error'][:80]} |||||||")
                continue

            def pair(key: str, r: dict[str, Any] = r) -> str:
                return f"{r[key]['p50']} / {r[key]['p95']}" if key in r else "n/a"

            lines.append(
                f"| {size:,} | {name} | {size / r['build_seconds']:,.0f} | {r['open_seconds']} "
                f"| {r['rss_serving_mib']:,.0f} | {pair('dense')} | {r['recall@10']} "
                f"| {pair('lexical')} | {pair('hybrid')} | {r['stall_ms']} |"
            )
    for size, systems in results.items():
        ours, raw = systems.get("ours", {}), systems.get("raw", {})
        if "write_seconds" in ours and "build_seconds" in raw:
            wall = raw["build_seconds"] / ours["build_seconds"]
            own = raw["build_seconds"] / ours["write_seconds"]
            lines.append(
                f"\n{size:,}: write path vs raw {own:.2f}x (the import alone; "
                f"{wall:.2f}x with `collections create`'s CLI start-up)"
            )
    return "\n".join(lines)


def plot(results: dict[int, dict[str, dict[str, Any]]], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    names = sorted({n for s in results.values() for n in s})
    colour = {name: f"C{i}" for i, name in enumerate(names)}  # the same in every panel
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    panels = [("dense", "dense p50 ms"), ("lexical", "lexical p50 ms"), ("hybrid", "hybrid p50 ms")]
    for ax, (key, title) in zip(axes, panels, strict=False):
        for name in names:
            points = [
                (s, results[s][name][key]["p50"]) for s in sizes if key in results[s].get(name, {})
            ]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name, color=colour[name])
        ax.set(title=title, xlabel="chunks", xscale="log", yscale="log")
    for name in names:
        points = [
            (s, s / results[s][name]["build_seconds"])
            for s in sizes
            if "build_seconds" in results[s].get(name, {})
        ]
        if points:
            axes[3].plot(*zip(*points, strict=True), marker="o", label=name, color=colour[name])
    axes[3].set(title="import chunks/s", xlabel="chunks", xscale="log")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("ragsearch at scale (loaded machine: read the ratios)")
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / "bench_scale.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/rs-scale"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rs-scale-cache"))
    parser.add_argument("--plots", type=Path, default=ROOT / "docs")
    parser.add_argument(
        "--base-catalog",
        type=Path,
        default=None,
        help="catalog.sqlite3 of a data directory with MiniLM collections: reuse its vectors",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help="keep WORK/N/data.parquet and truth.npy from an earlier run (rebuild only --systems)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        default=None,
        help="no run: print the table and plot from these --json results (later files' "
        "entries replace earlier ones, e.g. a system rebuilt after a fix)",
    )
    parser.add_argument("--child", choices=["build", "serve"], default=None)
    parser.add_argument("--system", default=None)
    args = parser.parse_args()
    if args.child:
        size = args.sizes[0]
        if args.child == "build":
            result = child_build(args.system, args.work, args.work / "data.parquet")
        else:
            result = child_serve(args.system, args.work, size, args.cache)
        print(json.dumps(result))
        return
    if args.from_json:
        merged: dict[int, dict[str, dict[str, Any]]] = {}
        for path in args.from_json:
            for size, systems in json.loads(path.read_text()).items():
                merged.setdefault(int(size), {}).update(systems)
        print(table(merged))
        plot(merged, args.plots)
        return
    import shutil

    data = base(args.cache, args.base_catalog)
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for size in args.sizes:
        work = args.work / str(size)
        systems = args.systems.split(",")
        if args.reuse_data and (work / "data.parquet").exists() and (work / "truth.npy").exists():
            for system in systems:  # the same data again; only these systems' builds go
                shutil.rmtree(work / system, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            texts, vectors = dataset(size, data)
            write_parquet(work / "data.parquet", texts, vectors)
            np.save(work / "truth.npy", ground_truth(vectors, data["queries"][1]))
            del texts, vectors
        results[size] = {}
        for system in systems:
            built = run_child("build", system, work, size, args.cache)
            served = (
                run_child("serve", system, work, size, args.cache) if "error" not in built else {}
            )
            results[size][system] = {**built, **served}
            print(f"{size:,} {system}: {results[size][system]}", file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    plot(results, args.plots)


if __name__ == "__main__":
    main()
