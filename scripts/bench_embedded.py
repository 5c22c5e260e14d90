"""The embedded default on ONNX Runtime against the torch path, measured in the same run.

    python scripts/bench_embedded.py --data-dir DIR [--collection eval-scifact] [--only PART]

DIR holds a SciFact collection built with all-MiniLM-L6-v2 (e.g. by `ragsearch eval
/work/shared/datasets/scifact`); it is only read. Parts (every peer interleaved, round by round,
so drift on a shared machine hits each alike):

- `query`: one query's embedding, p50 over SciFact test claims: sentence-transformers on torch
  vs MiniLM on ONNX Runtime (float and int8), in-process, query cache off.
- `ingest`: embedding chunks/s over the collection's chunk texts: raw sentence-transformers
  `encode` (batch 64) vs `OnnxEmbedder.embed_documents` (float and int8).
- `http`: `/v1/search` hybrid over HTTP, p50 at one client and requests/s at 8, for the service
  with the ONNX runtime and with the torch runtime (today's default before this change), next
  to the torch query embedding p50 from `query`.
- `ask`: a cold `ragsearch ask` (new process, model load included), torch vs ONNX runtime.

`--baseline-tree DIR` adds "today's" service to `http`: the code of an older commit checked
out in DIR (e.g. `git worktree add --detach /tmp/before 5fa083d`, the state issue 11 was filed
against) run with that tree's own `.venv`, on its own copy of the data, so the throughput
target (>= 4x today's) is measured against the real thing in the same run.
`--collection-int8 NAME` also serves the default int8 model's collection of DIR, and
`--previous-tree DIR` an earlier commit of this code on it (a before/after in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from bench_search import (
    ROOT,
    Series,
    _http_c8,
    clean_env,
    free_port,
    http_c1,
    load_queries,
    wait_http,
)

from indexer.providers.onnx_local import MINILM, MINILM_INT8, OnnxEmbedder, minilm_dir

SERVER_CODE = """
import sys
from pathlib import Path
import uvicorn
from indexer.settings import Settings
from service.http.app import create_app
app = create_app(Settings(data_dir=Path(sys.argv[1])))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def p50(values: list[float]) -> float:
    return statistics.median(values)


def torch_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    return SentenceTransformer(str(minilm_dir()), device="cpu")


def interleave(peers: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(rounds):
        for name, run in peers.items():
            out[name].append(run())
    return out


def part_query(queries: list[str], rounds: int) -> dict[str, float]:
    st = torch_model()
    onnx = {m: OnnxEmbedder(m, query_cache_size=0) for m in (MINILM, MINILM_INT8)}

    def timed(embed: Callable[[str], Any]) -> Callable[[], float]:
        def run() -> float:
            times = []
            for q in queries:
                t0 = time.perf_counter()
                embed(q)
                times.append((time.perf_counter() - t0) * 1000)
            return p50(times)

        return run

    import torch

    cores = max(1, len(os.sched_getaffinity(0)))

    def torch_with(threads: int) -> Callable[[str], Any]:
        def embed(q: str) -> Any:
            torch.set_num_threads(threads)
            return st.encode([q], normalize_embeddings=True, show_progress_bar=False)

        return embed

    peers = {
        # As the torch embedder runs (all cores), and on one thread as the ONNX session does.
        "torch (sentence-transformers)": timed(torch_with(cores)),
        "torch, 1 thread": timed(torch_with(1)),
        "onnx float": timed(onnx[MINILM].embed_query_sync),
        "onnx int8": timed(onnx[MINILM_INT8].embed_query_sync),
    }
    results = {name: p50(v) for name, v in interleave(peers, rounds).items()}
    base = results["torch (sentence-transformers)"]
    print("\nquery embedding p50 (ms), one query at a time")
    for name, ms in results.items():
        print(f"  {name:<32} {ms:8.2f}  {ms / base:5.2f}x torch")
    return results


def chunk_texts(data_dir: Path, limit: int) -> list[str]:
    with sqlite3.connect(data_dir / "catalog.sqlite3") as db:
        rows = db.execute("SELECT text FROM chunks ORDER BY id LIMIT ?", (limit,)).fetchall()
    return [r[0] for r in rows]


def part_ingest(texts: list[str], rounds: int) -> dict[str, float]:
    st = torch_model()
    onnx = {m: OnnxEmbedder(m) for m in (MINILM, MINILM_INT8)}

    def rate(embed: Callable[[list[str]], Any]) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            embed(texts)
            return len(texts) / (time.perf_counter() - t0)

        return run

    peers = {
        "raw sentence-transformers": rate(
            lambda t: st.encode(
                t, batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
        ),
        "onnx float": rate(lambda t: asyncio.run(onnx[MINILM].embed_documents(t))),
        "onnx int8": rate(lambda t: asyncio.run(onnx[MINILM_INT8].embed_documents(t))),
    }
    results = {name: p50(v) for name, v in interleave(peers, rounds).items()}
    base = results["raw sentence-transformers"]
    print(f"\ningest embedding, {len(texts)} chunks (chunks/s, median of rounds)")
    for name, value in results.items():
        print(f"  {name:<32} {value:8.1f}  {value / base:5.2f}x raw sentence-transformers")
    return results


def baseline_server_code(tree: Path) -> str:
    """The server code for an older tree: before the restructuring the app lived in
    `service.app`."""
    if (tree / "service" / "http" / "app.py").exists():
        return SERVER_CODE
    return SERVER_CODE.replace("service.http.app", "service.app")


@contextlib.contextmanager
def server(data_dir: Path, runtime: str, baseline: Path | None = None) -> Iterator[str]:
    port = free_port()
    # The query cache off: every round repeats the same queries, which it would answer.
    env = {**clean_env(), "RAGSEARCH_LOCAL_EMBEDDING_RUNTIME": runtime}
    env["RAGSEARCH_QUERY_CACHE_SIZE"] = "0"
    python, code, cwd = sys.executable, SERVER_CODE, ROOT
    if baseline is not None:  # today's code: its own tree, its own venv (torch, jieba)
        python, code, cwd = (
            str(baseline / ".venv" / "bin" / "python"),
            baseline_server_code(baseline),
            baseline,
        )
        env["PYTHONPATH"] = str(baseline)
    proc = subprocess.Popen([python, "-c", code, str(data_dir), str(port)], cwd=cwd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc)
        deadline = time.monotonic() + 300
        while httpx.get(base + "/readyz").status_code != 200:  # models loaded at start-up
            if time.monotonic() > deadline:
                raise RuntimeError(f"{runtime} server never became ready")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def part_http(
    data_dir: Path,
    collection: str,
    queries: list[str],
    rounds: int,
    baseline: Path | None = None,
    collection_int8: str | None = None,
    previous: Path | None = None,
) -> None:
    # (label, runtime, collection, baseline tree), every one on the same queries and rounds.
    configs: list[tuple[str, str, str, Path | None]] = []
    if baseline is not None:
        configs.append(("today", "torch", collection, baseline))
    configs += [("torch", "torch", collection, None), ("onnx", "onnx", collection, None)]
    if collection_int8:
        configs.append(("onnx-int8", "onnx", collection_int8, None))
        if previous is not None:  # an earlier commit of this code, on the same default
            configs.append(("prev-int8", "onnx", collection_int8, previous))
    results: dict[str, tuple[float, float | None]] = {}
    # Every server up at once (an idle one costs nothing) and the rounds interleaved, A B C D
    # A B C D ..., so drift on a shared machine hits every configuration alike.
    with contextlib.ExitStack() as stack, httpx.Client(timeout=60) as client:
        urls: dict[str, str] = {}
        series: dict[str, tuple[Series, Series]] = {}
        for label, runtime, name, tree in configs:
            served = data_dir if tree is None else data_dir.with_name(f"{label}-data")
            if tree is not None and not served.exists():
                shutil.copytree(data_dir, served)
            urls[label] = stack.enter_context(server(served, runtime, tree)) + "/v1/search"
            # Today's server loaded its model on the first query, after /readyz said ready.
            warm = {"query": "warm up", "collection": name, "mode": "hybrid"}
            client.post(urls[label], json=warm, timeout=600).raise_for_status()
            series[label] = (Series(f"{label} c1"), Series(f"{label} c8", 8))
        for _ in range(rounds):
            for label, _runtime, name, _tree in configs:
                c1, c8 = series[label]
                http_c1(client, urls[label], queries, name, "hybrid", None, c1)
                asyncio.run(_http_c8(urls[label], queries, name, "hybrid", None, 8, c8))
    for label, (c1, c8) in series.items():
        s1, s8 = c1.summary(), c8.summary()
        results[label] = (s1["p50_ms"], s8["rps"])
        print(f"  {label:<10} hybrid c1 p50 {s1['p50_ms']:7.2f} ms   c8 {s8['rps']} req/s")
    for peer in ("today", "torch"):
        if peer in results:
            peer_rps = results[peer][1] or 1.0
            for label in ("onnx", "onnx-int8", "prev-int8"):
                if label in results:
                    ratio = (results[label][1] or 0) / peer_rps
                    print(f"  {label} c8 throughput: {ratio:.2f}x the {peer} service")


def part_ask(data_dir: Path, collection: str, rounds: int) -> None:
    question = "Does vitamin D deficiency increase the risk of fractures?"
    times: dict[str, list[float]] = {"torch": [], "onnx": []}
    for _ in range(rounds):
        for runtime in times:
            env = {**clean_env(), "RAGSEARCH_LOCAL_EMBEDDING_RUNTIME": runtime}
            argv = [sys.executable, "-c", "from service.cli import run; run()"]
            argv += ["--data-dir", str(data_dir), "ask", question, "--collection", collection]
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
            times[runtime].append(time.perf_counter() - t0)
    print("\ncold `ragsearch ask` wall time (s, median)")
    for runtime, values in times.items():
        print(f"  {runtime:<6} {p50(values):6.2f}   runs: {', '.join(f'{v:.1f}' for v in values)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--collection", default="eval-scifact")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("query", "ingest", "http", "ask"), action="append")
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument(
        "--previous-tree",
        type=Path,
        default=None,
        help="an earlier commit of this code (its own checkout; .venv may be a link to this "
        "one's): served on the int8 collection beside this tree, for a before/after",
    )
    parser.add_argument("--collection-int8", default=None)
    args = parser.parse_args()
    parts = args.only or ["query", "ingest", "http", "ask"]
    queries = load_queries(args.queries)
    print(f"loaded machine? load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    # Servers write (checkpoints, locks): they get a copy, the source stays as it was.
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        shutil.copytree(args.data_dir, data_dir)
        if "query" in parts:
            part_query(queries, args.rounds)
        if "ingest" in parts:
            part_ingest(chunk_texts(data_dir, args.chunks), args.rounds)
        if "http" in parts:
            print("\n/v1/search hybrid over HTTP")
            part_http(
                data_dir,
                args.collection,
                queries,
                args.rounds,
                args.baseline_tree,
                args.collection_int8,
                args.previous_tree,
            )
        if "ask" in parts:
            part_ask(data_dir, args.collection, args.rounds)


if __name__ == "__main__":
    main()
