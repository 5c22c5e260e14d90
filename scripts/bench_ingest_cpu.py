"""Ingest without embedding, this tree against another checkout, interleaved in one run.

    python scripts/bench_ingest_cpu.py [--corpus DIR] [--rounds N] [--peer-tree DIR
        --peer-path EXTRA]

Times `Ingestor.run` over a corpus (default: the FastAPI docs, en + zh) into a new collection
whose vectors are all in the embedding cache already, so it measures read + parse + chunk
(MiniLM int8's real token counter, new for every run: no words remembered from a previous
one) + lexical tokens + catalog, FTS5, tantivy and FAISS writes: everything but the model.
With `--peer-tree` the same runs alternate with that checkout's code (e.g. the commit before
a change, `git worktree add --detach /tmp/old COMMIT`), each in a child process, so load on a
shared machine hits both alike. `--peer-path` adds to the peer's PYTHONPATH (a dependency the
peer needs that this tree dropped, e.g. `pip install --target /tmp/jieba jieba`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("/work/shared/datasets/fastapi_docs_en_zh")

CHILD = """
import asyncio, json, sys, tempfile, time
from pathlib import Path
import numpy as np
from indexer.index import Index
from indexer.ingest import Ingestor, discover
from indexer.providers.base import Embeddings
from indexer.providers.onnx_local import MINILM_INT8, OnnxEmbedder
from indexer.records import CollectionSpec, Usage
from indexer.settings import Settings

class CachedOnly:
    provider, model, dimensions, max_input_tokens = "local", MINILM_INT8, 384, 254
    max_batch_inputs = 100_000
    def __init__(self):
        self.count_tokens = OnnxEmbedder(MINILM_INT8).count_tokens
    async def embed_documents(self, texts):  # only for the warm-up run that fills the cache
        v = np.random.default_rng(len(texts)).normal(size=(len(texts), 384)).astype(np.float32)
        return Embeddings(v / np.linalg.norm(v, axis=1, keepdims=True), Usage(model=self.model))
    async def embed_query(self, text): raise NotImplementedError
    async def aclose(self): pass

items = discover([Path(sys.argv[1])])
index = Index(Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-cpu-"))), writer=True)
def run(name):
    spec = CollectionSpec(name=name, embedder_provider="local", embedder_model=MINILM_INT8,
                          dimensions=384, chunk_tokens=254, overlap_sentences=1)
    collection = index.catalog.create_collection(spec)
    embedder = CachedOnly()
    t0 = time.perf_counter()
    report = asyncio.run(Ingestor(index, collection, embedder).run(items))
    return report.chunks, time.perf_counter() - t0
run("warm")  # fills the embedding cache; every later run finds all its vectors there
chunks, seconds = run("timed")
print(json.dumps({"chunks": chunks, "seconds": seconds}))
"""


def child(tree: Path, extra: str | None, corpus: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree) + (os.pathsep + extra if extra else "")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(corpus)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-tree", type=Path, default=None)
    parser.add_argument("--peer-path", default=None)
    args = parser.parse_args()
    trees = {"this tree": (ROOT, None)}
    if args.peer_tree is not None:
        trees["peer tree"] = (args.peer_tree.resolve(), args.peer_path)
    rates: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, (tree, extra) in trees.items():
            result = child(tree, extra, args.corpus)
            rates[name].append(result["chunks"] / result["seconds"])
            print(f"  {name}: {result['chunks']} chunks in {result['seconds']:.2f} s", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, values in rates.items():
        print(
            f"{name:<10} median {statistics.median(values):7.0f} chunks/s, everything but the model"
        )
    if args.peer_tree is not None:
        ratio = statistics.median(rates["this tree"]) / statistics.median(rates["peer tree"])
        print(f"this tree: {ratio:.2f}x the peer")


if __name__ == "__main__":
    main()
