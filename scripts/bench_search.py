"""`/v1/search` latency and throughput on SciFact, next to peers measured in the same run.

Ours: the real service over HTTP (uvicorn in a subprocess on 127.0.0.1), modes hybrid, dense
and lexical at concurrency 1 and 8, plus "rerank on" against the fake Zhipu server (a second
service process whose reranker points at `tests.fakes.zhipu_server` over local HTTP; the
collection's embedder stays the local MiniLM). Also the same pipeline in-process
(`service.query.search.search`), to separate the HTTP layer.

Peers on the same queries: MiniLM query embedding (sentence-transformers), raw FAISS
`IndexFlatIP` over the collection's vectors (top-100), raw sqlite3 FTS5 top-100 with the same
MATCH expression, "raw FAISS + FTS5" (embed + both, sequentially, no fusion or fetch) and a
Chroma PersistentClient collection (cosine) queried by embedding (n_results=100).

Every configuration runs all queries once per round and rounds repeat (A, B, A, B ...), so
drift on a shared machine hits every configuration alike. Works on a copy of the collection:

    cp -r /tmp/rs-eval /tmp/rs-bench-search
    python scripts/bench_search.py [--queries N] [--rounds R] [--quick] [--json [PATH]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

DATASET = Path("/work/shared/datasets/scifact")
KEY = "bench-id.bench-secret"
TOP_K = 10
PEER_K = 100  # what each of our retrievers asks for (candidate_k)
STAGES = ("filter", "embed", "dense", "lexical", "fuse", "fetch", "rerank", "total")


# --- helpers -----------------------------------------------------------------------------


def load_queries(limit: int | None) -> list[str]:
    ids: list[str] = []
    with open(DATASET / "qrels" / "test.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid = line.split("\t", 1)[0]
            if qid not in ids:
                ids.append(qid)
    texts: dict[str, str] = {}
    with open(DATASET / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts[str(row["_id"])] = row["text"]
    queries = [texts[i] for i in ids]
    return queries[:limit] if limit else queries


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "ZHIPU" not in k.upper()}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


SERVER_CODE = """
import sys
from pathlib import Path
import uvicorn
from pydantic import SecretStr
from indexer.settings import Settings
from service.http.app import create_app
data_dir, port, base_url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
extra = {}
if base_url:
    extra = {"zhipu_api_key": SecretStr(sys.argv[4]), "zhipu_base_url": base_url}
app = create_app(Settings(data_dir=Path(data_dir), **extra))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


@contextlib.contextmanager
def service_process(data_dir: Path, zhipu_base_url: str = "") -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-c", SERVER_CODE, str(data_dir), str(port), zhipu_base_url, KEY]
    proc = subprocess.Popen(args, cwd=ROOT, env=clean_env())
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/docs", proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def fake_zhipu() -> Iterator[str]:
    """The fake Zhipu server in its own process (a remote service's CPU is not ours)."""
    port = free_port()
    args = [sys.executable, "-m", "tests.fakes.zhipu_server", "--port", str(port)]
    proc = subprocess.Popen([*args, "--api-key", KEY], cwd=ROOT, env=clean_env())
    base = f"http://127.0.0.1:{port}/api/paas/v4"
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Series:
    """Latencies (ms) of one configuration over every round, plus wall time per round."""

    def __init__(self, name: str, concurrency: int = 1) -> None:
        self.name = name
        self.concurrency = concurrency
        self.latencies: list[float] = []
        self.round_p50: list[float] = []
        self.requests = 0
        self.wall = 0.0
        self.timings: dict[str, list[float]] = {}
        self.warnings: dict[str, int] = {}

    def add_round(self, latencies: list[float], wall: float) -> None:
        self.latencies += latencies
        self.round_p50.append(statistics.median(latencies))
        self.requests += len(latencies)
        self.wall += wall

    def add_body(self, body: dict[str, Any]) -> None:
        for stage, ms in body.get("timings", {}).items():
            self.timings.setdefault(stage, []).append(float(ms))
        for warning in body.get("warnings", []):
            key = warning.split(":", 1)[0]
            self.warnings[key] = self.warnings.get(key, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "p50_ms": round(pct(self.latencies, 50), 3),
            "p95_ms": round(pct(self.latencies, 95), 3),
            "mean_ms": round(statistics.fmean(self.latencies), 3),
            "rps": round(self.requests / self.wall, 1) if self.wall else None,
            "round_p50_ms": [round(v, 3) for v in self.round_p50],
            "stage_p50_ms": {
                s: round(statistics.median(self.timings[s]), 3) for s in STAGES if s in self.timings
            },
            "stage_samples": {s: len(self.timings[s]) for s in STAGES if s in self.timings},
            "warnings": self.warnings,
        }


# --- ours over HTTP ----------------------------------------------------------------------


def body_for(query: str, collection: str, mode: str, rerank: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "collection": collection, "top_k": TOP_K, "mode": mode}
    if rerank is not None:
        body["rerank"] = rerank
    return body


def http_c1(
    client: httpx.Client,
    url: str,
    queries: list[str],
    collection: str,
    mode: str,
    rerank: bool | None,
    series: Series,
) -> None:
    latencies: list[float] = []
    started = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        response = client.post(url, json=body_for(q, collection, mode, rerank))
        latencies.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{mode}: HTTP {response.status_code}: {response.text[:300]}")
        series.add_body(response.json())
    series.add_round(latencies, time.perf_counter() - started)


async def _http_c8(
    url: str,
    queries: list[str],
    collection: str,
    mode: str,
    rerank: bool | None,
    workers: int,
    series: Series,
) -> None:
    latencies: list[float] = []
    pending = list(reversed(queries))
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def worker() -> None:
            while pending:
                q = pending.pop()
                t0 = time.perf_counter()
                response = await client.post(url, json=body_for(q, collection, mode, rerank))
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{mode}: HTTP {response.status_code}: {response.text[:300]}"
                    )
                series.add_body(response.json())

        # Open the connections before the clock starts.
        await asyncio.gather(
            *(client.get(url.rsplit("/v1", 1)[0] + "/docs") for _ in range(workers))
        )
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        series.add_round(latencies, time.perf_counter() - started)


# --- ours in-process ---------------------------------------------------------------------


class InProcess:
    def __init__(self, data_dir: Path) -> None:
        from indexer.settings import Settings
        from service.query.engine import Engine

        os.environ.pop("ZHIPUAI_API_KEY", None)
        os.environ.pop("RAGSEARCH_ZHIPU_API_KEY", None)
        self.loop = asyncio.new_event_loop()
        self.engine = Engine(Settings(data_dir=data_dir))

    def run(self, queries: list[str], collection: str, mode: str, series: Series) -> None:
        from service.query.records import SearchRequest
        from service.query.search import search

        async def go() -> None:
            latencies: list[float] = []
            started = time.perf_counter()
            for q in queries:
                t0 = time.perf_counter()
                result = await search(
                    self.engine.search_context,
                    SearchRequest(query=q, collection=collection, top_k=TOP_K, mode=mode),  # type: ignore[arg-type]
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                series.add_body({"timings": result.timings, "warnings": result.warnings})
            series.add_round(latencies, time.perf_counter() - started)

        self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.aclose())
        self.loop.close()


# --- peers -------------------------------------------------------------------------------


class Peers:
    """Hand-written baselines over the same vectors, chunk text and queries."""

    def __init__(self, data_dir: Path, collection: str, chroma_dir: Path) -> None:
        import faiss
        from sentence_transformers import SentenceTransformer

        from indexer.providers.local import MINILM, _minilm_path, _quiet_offline_hub

        _quiet_offline_hub()
        self.model = SentenceTransformer(_minilm_path(MINILM), device="cpu")
        catalog = data_dir / "catalog.sqlite3"
        self.db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, check_same_thread=False)
        row = self.db.execute("SELECT id FROM collections WHERE name = ?", (collection,)).fetchone()
        if row is None:
            raise SystemExit(f"collection {collection!r} not found in {catalog}")
        self.collection_id = int(row[0])
        self.fts = f"chunks_fts_{self.collection_id}"
        stored = faiss.read_index(
            str(data_dir / "vectors" / f"{self.collection_id}-{collection}.faiss")
        )
        self.ids = faiss.vector_to_array(stored.id_map).astype(np.int64)
        vectors = stored.index.reconstruct_n(0, stored.ntotal)
        self.flat = faiss.IndexFlatIP(vectors.shape[1])
        self.flat.add(vectors)
        self.chroma = self._chroma(chroma_dir, vectors)

    def _chroma(self, path: Path, vectors: np.ndarray) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
        name = "bench_scifact"
        existing = [c.name if hasattr(c, "name") else c for c in client.list_collections()]
        if name in existing:
            found = client.get_collection(name)
            if found.count() == len(self.ids):
                return found
            client.delete_collection(name)
        coll = client.create_collection(name, metadata={"hnsw:space": "cosine"})
        texts = dict(
            self.db.execute(
                "SELECT id, text FROM chunks WHERE collection_id = ?", (self.collection_id,)
            )
        )
        step = 2000
        for start in range(0, len(self.ids), step):
            ids = self.ids[start : start + step]
            coll.add(
                ids=[str(i) for i in ids],
                embeddings=vectors[start : start + step],
                documents=[texts[int(i)] for i in ids],
            )
        return coll

    def embed(self, query: str) -> np.ndarray:
        out = self.model.encode(
            [query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    def faiss_search(self, vector: np.ndarray) -> list[int]:
        _, rows = self.flat.search(vector, PEER_K)
        return [int(self.ids[r]) for r in rows[0] if r >= 0]

    def fts_search(self, query: str) -> list[tuple[int, float]]:
        from indexer.lexical import fts_match_expression, query_tokens

        expression = fts_match_expression(query_tokens(query))
        if not expression:
            return []
        sql = (
            f"SELECT rowid, bm25({self.fts}) AS score FROM {self.fts} "
            f"WHERE {self.fts} MATCH ? ORDER BY score LIMIT {PEER_K}"
        )
        return self.db.execute(sql, (expression,)).fetchall()

    def chroma_search(self, vector: np.ndarray, include: list[str]) -> Any:
        return self.chroma.query(query_embeddings=vector, n_results=PEER_K, include=include)


def timed_loop(items: list[Any], func: Callable[[Any], Any], series: Series) -> None:
    latencies: list[float] = []
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        func(item)
        latencies.append((time.perf_counter() - t0) * 1000)
    series.add_round(latencies, time.perf_counter() - started)


# --- the run -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rs-bench-search"))
    parser.add_argument("--collection", default="eval-scifact")
    parser.add_argument(
        "--queries", type=int, default=None, help="first N test queries (default all 300)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="40 queries, 2 rounds")
    parser.add_argument(
        "--no-rerank-server", action="store_true", help="skip the fake-Zhipu rerank run"
    )
    parser.add_argument("--chroma-dir", type=Path, default=None)
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="PATH",
        help="write results as JSON to PATH (or stdout)",
    )
    args = parser.parse_args()
    if args.quick:
        args.queries = args.queries or 40
        args.rounds = 2
    if args.data_dir.resolve() == Path("/tmp/rs-eval"):
        raise SystemExit("copy the collection first: cp -r /tmp/rs-eval /tmp/rs-bench-search")
    chroma_dir = args.chroma_dir or Path(str(args.data_dir) + "-chroma")
    queries = load_queries(args.queries)
    load_start = os.getloadavg()

    def log(*a):
        return print(*a, file=sys.stderr, flush=True)

    log(
        f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}; "
        f"{len(queries)} queries x {args.rounds} rounds; cpus {os.cpu_count()}"
    )

    coll = args.collection
    c = args.concurrency
    series: dict[str, Series] = {}

    def s(name: str, conc: int = 1) -> Series:
        return series.setdefault(name, Series(name, conc))

    with contextlib.ExitStack() as stack:
        log("starting the service (and the fake Zhipu + a second service for rerank) ...")
        base = stack.enter_context(service_process(args.data_dir))
        rr_base = None
        if not args.no_rerank_server:
            zhipu = stack.enter_context(fake_zhipu())
            rr_base = stack.enter_context(service_process(args.data_dir, zhipu))
        log(f"loading in-process engine and peers (chroma at {chroma_dir}) ...")
        inproc = InProcess(args.data_dir)
        stack.callback(inproc.close)
        peers = Peers(args.data_dir, coll, chroma_dir)
        client = stack.enter_context(httpx.Client(timeout=60.0))
        url = base + "/v1/search"
        rr_url = rr_base + "/v1/search" if rr_base else None

        # Warm-up: model loads, FAISS file load + reconcile, SQLite page cache, connections.
        log("warming up ...")
        warm = queries[:20]
        scratch = Series("warmup")
        for mode in ("hybrid", "dense", "lexical"):
            http_c1(client, url, warm, coll, mode, None, scratch)
            inproc.run(warm, coll, mode, scratch)
        http_c1(client, url, warm, coll, "hybrid", True, scratch)
        if rr_url:
            http_c1(client, rr_url, warm, coll, "hybrid", True, scratch)
        vectors = [peers.embed(q) for q in queries]
        for v, q in zip(vectors[:20], warm, strict=False):
            peers.faiss_search(v)
            peers.fts_search(q)
            peers.chroma_search(v, ["distances"])

        def hand_hybrid(q: str) -> None:
            v = peers.embed(q)
            peers.faiss_search(v)
            peers.fts_search(q)

        for r in range(args.rounds):
            log(f"round {r + 1}/{args.rounds} ...")
            for mode in ("hybrid", "dense", "lexical"):
                http_c1(client, url, queries, coll, mode, None, s(f"http {mode}"))
            http_c1(
                client,
                url,
                queries,
                coll,
                "hybrid",
                True,
                s("http hybrid rerank:true (no reranker)"),
            )
            if rr_url:
                http_c1(
                    client,
                    rr_url,
                    queries,
                    coll,
                    "hybrid",
                    True,
                    s("http hybrid rerank (fake Zhipu)"),
                )
            for mode in ("hybrid", "dense", "lexical"):
                inproc.run(queries, coll, mode, s(f"in-process {mode}"))
            timed_loop(queries, peers.embed, s("peer MiniLM query embed"))
            timed_loop(vectors, peers.faiss_search, s("peer FAISS flat top-100"))
            timed_loop(queries, peers.fts_search, s("peer FTS5 top-100"))
            timed_loop(queries, hand_hybrid, s("peer embed + FAISS + FTS5"))
            timed_loop(
                vectors,
                lambda v: peers.chroma_search(v, ["distances"]),
                s("peer Chroma dense (ids+distances)"),
            )
            timed_loop(
                vectors,
                lambda v: peers.chroma_search(v, ["documents", "metadatas", "distances"]),
                s("peer Chroma dense (+documents)"),
            )
            for mode in ("hybrid", "dense", "lexical"):
                asyncio.run(_http_c8(url, queries, coll, mode, None, c, s(f"http {mode} c={c}", c)))
            if rr_url:
                asyncio.run(
                    _http_c8(
                        rr_url,
                        queries,
                        coll,
                        "hybrid",
                        True,
                        c,
                        s(f"http hybrid rerank (fake Zhipu) c={c}", c),
                    )
                )

    load_end = os.getloadavg()
    out = {
        "collection": coll,
        "queries": len(queries),
        "rounds": args.rounds,
        "top_k": TOP_K,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "series": {name: ser.summary() for name, ser in series.items()},
    }
    p50 = {name: v["p50_ms"] for name, v in out["series"].items()}
    out["ratios"] = {
        "in-process hybrid / peer embed+FAISS+FTS5 (p50)": round(
            p50["in-process hybrid"] / p50["peer embed + FAISS + FTS5"], 2
        ),
        "http hybrid / peer embed+FAISS+FTS5 (p50)": round(
            p50["http hybrid"] / p50["peer embed + FAISS + FTS5"], 2
        ),
        "http hybrid - in-process hybrid (p50 ms)": round(
            p50["http hybrid"] - p50["in-process hybrid"], 2
        ),
        "in-process dense / (peer embed + peer FAISS) (p50)": round(
            p50["in-process dense"]
            / (p50["peer MiniLM query embed"] + p50["peer FAISS flat top-100"]),
            2,
        ),
        "in-process lexical / peer FTS5 (p50)": round(
            p50["in-process lexical"] / p50["peer FTS5 top-100"], 2
        ),
    }
    out["targets"] = {
        "http hybrid p50 <= 15 ms": p50["http hybrid"] <= 15.0,
        "in-process overhead over raw FAISS + FTS5 < 2x": out["ratios"][
            "in-process hybrid / peer embed+FAISS+FTS5 (p50)"
        ]
        < 2.0,
    }
    print_tables(out)
    if args.json:
        text = json.dumps(out, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")


def print_tables(out: dict[str, Any]) -> None:
    def p(*a):
        return print(*a, file=sys.stderr)

    la, lb = out["load_average_start"], out["load_average_end"]
    p(
        f"\n{out['queries']} queries x {out['rounds']} rounds, top_k {out['top_k']}; "
        f"load average start {la[0]} {la[1]} {la[2]}, end {lb[0]} {lb[1]} {lb[2]}\n"
    )
    p("| configuration | c | p50 ms | p95 ms | req/s | p50 per round |")
    p("|---|---:|---:|---:|---:|---|")
    for v in out["series"].values():
        rounds = " / ".join(f"{x:.2f}" for x in v["round_p50_ms"])
        cells = (v["name"], v["concurrency"], f"{v['p50_ms']:.2f}", f"{v['p95_ms']:.2f}", v["rps"])
        p("| " + " | ".join(str(c) for c in cells) + f" | {rounds} |")
    p("\nStage medians (ms, from `timings`):\n")
    p("| configuration | " + " | ".join(STAGES) + " | warnings |")
    p("|---|" + "---:|" * len(STAGES) + "---|")
    for v in out["series"].values():
        st = v["stage_p50_ms"]
        if not st:
            continue
        cells = " | ".join(f"{st[s]:.2f}" if s in st else "" for s in STAGES)
        warns = ", ".join(f"{k} ({n})" for k, n in v["warnings"].items()) or ""
        p(f"| {v['name']} | {cells} | {warns} |")
    p("\nRatios:")
    for k, v in out["ratios"].items():
        p(f"  {k}: {v}")
    p("Targets:")
    for k, v in out["targets"].items():
        p(f"  {k}: {'met' if v else 'NOT met'}")


if __name__ == "__main__":
    main()
